"""features: the denormalised daily matrix (STRUCTs, no JOINs at query time)."""

from .. import columns as c
from .. import rules as r
from ..sources import CBI
from ..model import Contract, FlatView, Partition

# --- placeholder checks (no_placeholders) on every numeric field of the matrix's STRUCTs ----------------
# Every numeric field is checked: every value a sentinel (0.5, 1.0) and zero variance (one value on every
# row) fail, and so does a run of `window` equal values in one (symbol, matrix_source) series (rows are
# sessions, one per date). The window is one more than the field's longest legitimate run, by cadence;
# `min_rows` is the fewest values over which the whole-column checks judge: a batch (the gate checks only
# the rows a build changed, often a handful) proves nothing about a field that may hold one value longer.
# A field not named in PLACEHOLDER_CADENCE takes _SESSION_DAILY: a new field is checked as a daily market
# feature until it declares its own cadence here. Longest runs seen in the real sample build (ZL,
# 2000-2025, both matrix sources) are quoted.
_SESSION_DAILY = {"window": 20, "min_rows": 2}  # prices, volume, returns, indicators, pivots, cross-asset:
# move every session (longest real run: volume, 11 sessions of Yahoo's placeholder volume 1 in 2002)
_FRED_DAILY = {"window": 20, "min_rows": 20}  # daily FRED series, 2-decimal values forward-filled over
# FRED's missing days: repeat for a few sessions (longest real run 10: WTI/Brent); 20 = a stale feed
_QUARTER = {"window": 63, "min_rows": 63}  # a rank or a sign that pins while its input trends
PLACEHOLDER_CADENCE: dict[str, dict] = {
    # pivots.is_above_p: a BOOL, one side of the pivot for as long as a trend lasts (longest real run 20).
    "pivots.is_above_p": _QUARTER,
    # regime.weight: holds for the regime's whole span, set by the registry (up to 3.75 years, 902 sessions
    # in the sample; adjacent regimes may share a weight): no run length marks a placeholder, so no run
    # check; one weight over 5 years of rows (1260) is longer than any regime (regimes.regime_calendar
    # checks the weights themselves).
    "regime.weight": {"window": None, "min_rows": 1260},
    # regime.vol_percentile: rank of volatility_21d in its trailing 252 sessions; sits at 100 while
    # volatility sets new highs (longest real run 7). A quarter at one rank is a placeholder.
    "regime.vol_percentile": _QUARTER,
    **{f"macro.{f}": _FRED_DAILY for f in ("dollar_index", "dgs10", "t10y2y", "vix", "wti", "dgs2", "brent", "t10yie")},
    # macro.fed_funds: monthly FEDFUNDS forward-filled to sessions; the Fed can hold the rate for over a
    # year (5.33 for 13 monthly observations from 2023-08, 272 sessions; 13 is the longest since 1980):
    # two years of sessions (504) at one value means the series stopped updating.
    "macro.fed_funds": {"window": 504, "min_rows": 504},
    # positioning: one weekly COT report is used from the Tuesday after for up to 21 more days, at most 16
    # sessions (the 2025 shutdown shows 16); a run of 20 needs repeated reports (a re-sent report).
    **{f"positioning.{f}": {"window": 20, "min_rows": 20}
       for f in ("commercial_net_pct_oi", "managed_money_net_pct_oi", "commercial_net_change_1w")},
    # positioning.commercial_net_pctile_3y: a rank among 156 reports, ties high; pins at 1.0 while
    # positions set new 3-year highs (longest real run 19 sessions, 4 reports). A quarter is a placeholder.
    "positioning.commercial_net_pctile_3y": _QUARTER,
    # calendar: computed from the date (cbi_local/features/seasonal.py), so the longest legitimate run is
    # fixed by the calendar, counted in dates (a series has at most one row per date): a month has <= 31
    # dates, an ISO week 7; days_to_planting is 0 inside planting (1 May - 15 June: 46 dates),
    # days_to_harvest inside harvest (20 September - 10 November: 52); in_planting is false for up to
    # 366 - 46 = 320 dates, in_harvest for up to 366 - 52 = 314. Window = that + 1: it fails only when
    # the computation is broken (tests/cbi_local/test_health.py recomputes these from seasonal.py).
    "calendar.month": {"window": 32, "min_rows": 32},
    "calendar.week_of_year": {"window": 8, "min_rows": 8},
    "calendar.days_to_planting": {"window": 47, "min_rows": 47},
    "calendar.days_to_harvest": {"window": 53, "min_rows": 53},
    "calendar.in_planting": {"window": 321, "min_rows": 321},
    "calendar.in_harvest": {"window": 315, "min_rows": 315},
    # term_structure.is_roll_day: false between the continuous series' rolls; the widest contract cycle of
    # the universe is quarterly (ES, MES; ZC/ZW December to March), about 63 sessions between rolls: half a
    # year of sessions without a roll (127) means the flag is broken.
    "term_structure.is_roll_day": {"window": 127, "min_rows": 127},
}
_COLUMNS = (
    c.date.required(), c.symbol.required(), c.matrix_source.required(), c.regime_name,
    c.market_data, c.pivots, c.regime, c.macro, c.cross_asset, c.positioning, c.calendar, c.term_structure,
    *c.TARGETS, *c.FORWARD_CLOSES, c.roll_adjustment, c.batch_id, c.created_at,
)
# The matrix's STRUCTs, from its columns: a STRUCT (or a field) added to them is checked too.
MATRIX_STRUCTS = tuple(col for col in _COLUMNS if col.type == "STRUCT" and col.mode != "REPEATED")

daily_ml_matrix = Contract(
    dataset="features",
    table="daily_ml_matrix",
    description="One row per (date, symbol): market, pivots, regime, macro, cross-asset, positioning and calendar STRUCTs plus forward targets per horizon.",
    columns=_COLUMNS,
    primary_key=("date", "symbol", "matrix_source"),
    partition=Partition("date", "MONTH"),
    clustering=("symbol", "regime_name"),
    sources=(CBI,),
    rules=(
        r.not_null("date", "symbol", "matrix_source"),
        r.unique_key(),
        *r.no_placeholders_by_field(MATRIX_STRUCTS, PLACEHOLDER_CADENCE, _SESSION_DAILY),
        r.forbidden_values("regime_name", "allhistory"),
    ),
    # Research (yahoo_historical) rows never reach the canonical BigQuery table.
    push_only_where="matrix_source = 'canonical'",
)

CONTRACTS = (daily_ml_matrix,)

vw_daily_ml_flat = FlatView(
    dataset="features",
    name="vw_daily_ml_flat",
    source=daily_ml_matrix.fqn,
    description="features.daily_ml_matrix with one column per STRUCT field (<struct>__<field>), "
                "for training and export.",
)

VIEWS = (vw_daily_ml_flat,)
