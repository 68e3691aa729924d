"""The training frame: one symbol's rows of features.daily_ml_matrix, flattened, in date order.

Features are derived from the contract, never listed by hand: every numeric or boolean field
of the market_data, pivots, regime, macro, cross_asset, positioning, calendar and term_structure
STRUCTs, except
  * price-level fields (open, high, low, close, vwap, moving averages, pivot levels): a tree
    cannot extrapolate a level it never saw, so they enter as ratios to the close instead
    (`rel__<field>` = field / close - 1);
  * regime.weight (the sample weight, not a feature) and regime.name (a label of the era);
  * macro.vix_regime (a bucketing of macro.vix, which is a feature);
  * term_structure.front_minus_second (a price difference in display units: it enters scale-free as
    term_structure.front_minus_second_rel).
Targets (target_h) and forward closes (fwd_close_h) are labels, never features.
`Frame.vol21` is market_data.volatility_21d (annualised 21-session volatility, also a feature):
the vol-band baseline reads it (metrics.vol_band). `Frame.volume` is market_data.volume (also a
feature): the forecast's as-of row must have a real one (publish.as_of).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl

import data_contracts as dc
from data_contracts.columns import HORIZONS
from data_contracts.to_duckdb import quote

from ..features.export import SEP, flat_columns, flat_select_sql

MATRIX = dc.get("features.daily_ml_matrix")
STRUCTS = ("market_data", "pivots", "regime", "macro", "cross_asset", "positioning", "calendar", "term_structure")
LEVEL_FIELDS = {
    "market_data": ("open", "high", "low", "close", "vwap", "ma_5", "ma_21", "ma_63"),
    "pivots": ("p", "r1", "r2", "s1", "s2"),
}
NOT_FEATURES = {
    ("regime", "weight"): "the sample weight",
    ("regime", "name"): "a label of the era (top-level regime_name)",
    ("macro", "vix_regime"): "a bucketing of macro.vix",
    ("term_structure", "front_minus_second"): "a price difference in display units (enters as front_minus_second_rel)",
}
CLOSE = f"market_data{SEP}close"
WEIGHT = f"regime{SEP}weight"
VOL21 = f"market_data{SEP}volatility_21d"
VOLUME = f"market_data{SEP}volume"
_NUMERIC = ("FLOAT64", "INT64", "NUMERIC", "BOOL")


class DataError(ValueError):
    pass


def feature_spec() -> tuple[list[str], list[str], dict[str, str]]:
    """(direct flat columns, level flat columns turned into ratios, excluded -> reason)."""
    by_struct = {c.name: c for c in MATRIX.columns if c.name in STRUCTS}
    direct, levels, excluded = [], [], {}
    for path, flat in flat_columns():
        if len(path) != 2 or path[0] not in STRUCTS:
            continue
        fld = next(f for f in by_struct[path[0]].fields if f.name == path[1])
        if path in NOT_FEATURES:
            excluded[flat] = NOT_FEATURES[path]
        elif path[1] in LEVEL_FIELDS.get(path[0], ()):
            levels.append(flat)
        elif fld.type in _NUMERIC:
            direct.append(flat)
        else:
            excluded[flat] = f"{fld.type} field"
    return direct, levels, excluded


@dataclass
class Frame:
    symbol: str
    matrix_source: str
    dates: np.ndarray  # datetime64[D], ascending, one per session
    regimes: np.ndarray  # object (str or None)
    weights: np.ndarray  # float (NaN where the calendar has no regime)
    close: np.ndarray
    X: np.ndarray  # float64 [rows, features], NaN = missing
    feature_names: list[str]
    targets: dict[str, np.ndarray] = field(default_factory=dict)  # horizon -> log return (NaN unknown)
    fwd_close: dict[str, np.ndarray] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)
    vol21: np.ndarray = field(default_factory=lambda: np.empty(0))  # annualised, NaN until 21 returns exist
    volume: np.ndarray = field(default_factory=lambda: np.empty(0))  # the session's volume, NaN where NULL
    roll_adjustment: list[str] = field(default_factory=list)  # the matrix rows' setting(s) (features.rolls)

    @property
    def rows(self) -> int:
        return int(self.dates.size)

    def labelled(self, horizon: str) -> np.ndarray:
        y, fc = self.targets[horizon], self.fwd_close[horizon]
        return np.flatnonzero(np.isfinite(y) & np.isfinite(fc) & np.isfinite(self.close) & (self.close > 0))

    def fingerprint(self) -> str:
        """sha256 over every value the run reads (dates, features, weights, labels), in a fixed order."""
        h = hashlib.sha256()
        h.update(f"{self.symbol}|{self.matrix_source}|{','.join(self.feature_names)}".encode())
        for arr in (self.dates.astype("int64"), self.weights, self.close, self.X,
                    *(self.targets[k] for k in sorted(self.targets)), *(self.fwd_close[k] for k in sorted(self.fwd_close))):
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update("|".join("" if r is None else str(r) for r in self.regimes).encode())
        return h.hexdigest()


def load_frame(
    con: duckdb.DuckDBPyConnection, symbol: str, matrix_source: str, start=None, end=None
) -> Frame:
    """Read one (symbol, matrix_source) slice in one query; [start, end] bounds the data window."""
    direct, levels, excluded = feature_spec()
    targets = [f"target_{h}" for h in HORIZONS]
    fwd = [f"fwd_close_{h}" for h in HORIZONS]
    cols = ["date", "regime_name", "roll_adjustment", CLOSE, WEIGHT, VOL21, VOLUME, *direct, *levels, *targets, *fwd]
    sql = (
        f"SELECT {', '.join(quote(c) for c in dict.fromkeys(cols))} FROM ({flat_select_sql()}) "
        "WHERE symbol = $symbol AND matrix_source = $src "
        "AND ($start IS NULL OR date >= $start) AND ($end IS NULL OR date <= $end) ORDER BY date"
    )
    df = pl.from_arrow(
        con.sql(sql, params={"symbol": symbol, "src": matrix_source, "start": start, "end": end}).to_arrow_table()
    )
    assert isinstance(df, pl.DataFrame)
    if df.height == 0:
        have = con.execute(
            "SELECT matrix_source, count(*), min(date), max(date) FROM features.daily_ml_matrix WHERE symbol = ? GROUP BY 1",
            [symbol],
        ).fetchall()
        hint = "; ".join(f"{s}: {n:,} rows {a}..{b}" for s, n, a, b in have) or "none"
        raise DataError(
            f"features.daily_ml_matrix has no {symbol} rows with matrix_source={matrix_source!r}"
            + (f" in {start or '...'}..{end or '...'}" if start or end else "")
            + f" (rows present for {symbol}: {hint}); build them with `cbi features build --source {matrix_source}`"
        )
    close = df[CLOSE].cast(pl.Float64).to_numpy()
    ratio = [
        (df[c].cast(pl.Float64) / df[CLOSE] - 1.0).alias(f"rel{SEP}{c.split(SEP, 1)[1]}") for c in levels if c != CLOSE
    ]
    feats = df.select([pl.col(c).cast(pl.Float64) for c in direct]).with_columns(ratio)
    X = feats.to_numpy().astype(np.float64)
    X[~np.isfinite(X)] = np.nan
    return Frame(
        symbol=symbol,
        matrix_source=matrix_source,
        dates=df["date"].to_numpy().astype("datetime64[D]"),
        regimes=np.array(df["regime_name"].to_list(), dtype=object),
        weights=df[WEIGHT].cast(pl.Float64).fill_null(np.nan).to_numpy(),
        close=close,
        X=X,
        feature_names=feats.columns,
        targets={h: df[f"target_{h}"].cast(pl.Float64).fill_null(np.nan).to_numpy() for h in HORIZONS},
        fwd_close={h: df[f"fwd_close_{h}"].cast(pl.Float64).fill_null(np.nan).to_numpy() for h in HORIZONS},
        excluded={**excluded, CLOSE: "price level (enters through the rel__ ratios)"},
        vol21=df[VOL21].cast(pl.Float64).fill_null(np.nan).to_numpy(),
        volume=df[VOLUME].cast(pl.Float64).fill_null(np.nan).to_numpy(),
        roll_adjustment=sorted({v for v in df["roll_adjustment"].to_list() if v is not None}),
    )
