"""The regime registry: registry/regime_weights.yaml -> regimes.regime_weights and the derived calendar.

`regime_weights.yaml` is the one source of truth. From it:

* `regimes.regime_weights` gets one row per regime (the `baseline` included);
* `regimes.regime_calendar` is DERIVED: one row per day from DEFAULT_START (2000-01-01: the price
  history starts 2000-11) through the last day a specific regime covers (with the sample registry,
  `trump_second_term`'s 2029-01-20), so the calendar grows when the registry does and live data
  after the legacy calendar's 2025-12-31 still has its regime. Monthly partitions (349 for
  2000-2029): BigQuery's 4,000-per-job and 10,000-per-table limits are far away. A day takes the
  specific regime covering it; `baseline` (1900-2099) only fills days no specific regime covers. Two
  specific regimes covering one day is an ERROR naming both and the overlapping dates, raised before
  anything is recorded, so a fixed file loads on the next run.
* `regime_weights.parquet` and the legacy `regime_calendar.parquet` are CHECKED against the YAML and
  the derived calendar and reported (differences, per-day disagreements with samples); they are never
  loaded.

Idempotent through the core's manifest: an unchanged YAML is skipped; a changed one replaces the rows
it produced (weights and calendar). The calendar rows are staged against the YAML file (record_number
= the regime that assigned the day), so the YAML's manifest counts include the derived days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import yaml

import data_contracts as dc

from .core import FileCounts, IngestRun, identify

WEIGHTS = dc.get("regimes.regime_weights")
CALENDAR = dc.get("regimes.regime_calendar")
YAML_NAME = "regime_weights.yaml"
LEGACY_WEIGHTS = "regime_weights.parquet"
LEGACY_CALENDAR = "regime_calendar.parquet"
BASELINE = "baseline"
DEFAULT_START = dt.date(2000, 1, 1)
SAMPLES = 5


class RegistryError(ValueError):
    """The registry cannot define a calendar (overlapping regimes, bad dates, uncovered days)."""


@dataclass(frozen=True)
class Regime:
    regime_name: str
    start_date: dt.date
    end_date: dt.date
    regime_weight: Any  # as written; the core casts and quarantines what is not an INT64 in range
    description: str | None
    record_number: int


@dataclass
class RegistryReport:
    yaml_path: str
    status: str = "loaded"  # loaded | unchanged
    regimes: int = 0
    calendar_start: str | None = None
    calendar_end: str | None = None
    calendar_days: int = 0
    baseline_days: int = 0
    counts: dict[str, FileCounts] = field(default_factory=dict)
    weights_vs_parquet: dict[str, Any] | None = None
    calendar_vs_legacy: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["counts"] = {p: asdict(c) for p, c in self.counts.items()}
        return d


def _as_date(value: Any, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise RegistryError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None


def read_regimes(path: Path) -> list[Regime]:
    """Parse and check the YAML; raises RegistryError on anything that would make the calendar wrong."""
    doc = yaml.safe_load(Path(path).read_text())
    entries = (doc or {}).get("regimes") if isinstance(doc, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise RegistryError(f"{path}: no 'regimes' mapping")
    regimes: list[Regime] = []
    for i, (key, body) in enumerate(entries.items(), start=1):
        if not isinstance(body, dict):
            raise RegistryError(f"{path}: regime {key!r} is not a mapping")
        name = str(body.get("name") or key)
        if name != str(key):
            raise RegistryError(f"{path}: regime key {key!r} names itself {name!r}; one regime, one name")
        start = _as_date(body.get("start_date"), f"{path}: {name}.start_date")
        end = _as_date(body.get("end_date"), f"{path}: {name}.end_date")
        if end < start:
            raise RegistryError(f"{path}: regime {name!r} ends ({end}) before it starts ({start})")
        regimes.append(Regime(name, start, end, body.get("weight"), body.get("description"), i))
    check_overlaps(regimes, path)
    return regimes


def check_overlaps(regimes: list[Regime], where: Path | str = "registry") -> None:
    specific = sorted((r for r in regimes if r.regime_name != BASELINE), key=lambda r: (r.start_date, r.end_date))
    problems = []
    for i, a in enumerate(specific):
        for b in specific[i + 1 :]:
            if b.start_date > a.end_date:
                break
            lo, hi = max(a.start_date, b.start_date), min(a.end_date, b.end_date)
            problems.append(
                f"regimes {a.regime_name!r} ({a.start_date}..{a.end_date}) and {b.regime_name!r} "
                f"({b.start_date}..{b.end_date}) overlap on {lo}..{hi} ({(hi - lo).days + 1} days)"
            )
    if problems:
        raise RegistryError(f"{where}: overlapping specific regimes: " + "; ".join(problems))


def _regimes_table(regimes: list[Regime], source_file: str) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "regime_name": r.regime_name,
                "start_date": r.start_date,
                "end_date": r.end_date,
                "regime_weight": None if r.regime_weight is None else str(r.regime_weight),
                "description": r.description,
                "source_file": source_file,
                "record_number": r.record_number,
            }
            for r in regimes
        ],
        schema=pa.schema(
            [("regime_name", pa.string()), ("start_date", pa.date32()), ("end_date", pa.date32()),
             ("regime_weight", pa.string()), ("description", pa.string()), ("source_file", pa.string()),
             ("record_number", pa.int64())]
        ),
    )


def derive_calendar(
    con: duckdb.DuckDBPyConnection, regimes: list[Regime], source_file: str, start: dt.date | None = None,
    end: dt.date | None = None,
) -> duckdb.DuckDBPyRelation:
    """The calendar as a relation (date, regime_name, regime_weight, source_file, record_number, is_baseline,
    _rule, _reason), set-based; record_number is the YAML record of the regime that assigned the day.

    `start` defaults to the earliest specific regime's start, `end` to the last day a specific regime
    covers. Raises RegistryError for days no regime covers."""
    check_overlaps(regimes, source_file)
    specific = [r for r in regimes if r.regime_name != BASELINE]
    if (start is None or end is None) and not specific:
        raise RegistryError(f"{source_file}: no specific regime, so no calendar span")
    if start is None:
        start = min(r.start_date for r in specific)
    if end is None:
        end = max(r.end_date for r in specific)
    if end < start:
        raise RegistryError(f"calendar end {end} is before its start {start}")
    con.register("_reg_src", _regimes_table(regimes, source_file))
    con.execute("CREATE OR REPLACE TEMP TABLE _reg AS SELECT * FROM _reg_src")
    con.unregister("_reg_src")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _reg_calendar AS
        WITH days AS (
            SELECT CAST(d AS DATE) AS date FROM generate_series(DATE '{start}', DATE '{end}', INTERVAL 1 DAY) t(d)
        ),
        spec AS (SELECT * FROM _reg WHERE regime_name <> '{BASELINE}'),
        base AS (SELECT * FROM _reg WHERE regime_name = '{BASELINE}')
        SELECT date, regime_name, TRY_CAST(weight AS BIGINT) AS regime_weight, source_file, record_number, is_baseline,
               CASE WHEN weight IS NOT NULL AND TRY_CAST(weight AS BIGINT) IS NULL THEN 'bad_type' END AS _rule,
               CASE WHEN weight IS NOT NULL AND TRY_CAST(weight AS BIGINT) IS NULL
                    THEN 'regime ' || regime_name || ' weight ' || weight || ' is not an INT64' END AS _reason
        FROM (
            SELECT d.date,
                   coalesce(s.regime_name, b.regime_name) AS regime_name,
                   coalesce(s.regime_weight, b.regime_weight) AS weight,
                   coalesce(s.source_file, b.source_file) AS source_file,
                   coalesce(s.record_number, b.record_number) AS record_number,
                   s.regime_name IS NULL AND b.regime_name IS NOT NULL AS is_baseline
            FROM days d
            LEFT JOIN spec s ON d.date BETWEEN s.start_date AND s.end_date
            LEFT JOIN base b ON d.date BETWEEN b.start_date AND b.end_date
        )
        """
    )
    uncovered = con.execute(
        "SELECT count(*), min(date), max(date) FROM _reg_calendar WHERE regime_name IS NULL"
    ).fetchall()[0]
    if uncovered[0]:
        raise RegistryError(
            f"{source_file}: {uncovered[0]} days between {uncovered[1]} and {uncovered[2]} have no regime "
            f"and there is no '{BASELINE}' covering them"
        )
    return con.sql("SELECT * FROM _reg_calendar")


def compare_weights(con: duckdb.DuckDBPyConnection, parquet: Path) -> dict[str, Any]:
    """YAML (in _reg) vs the legacy regime_weights.parquet, regime by regime."""
    rows = con.execute(
        f"""
        SELECT coalesce(y.regime_name, p.regime) AS regime,
               y.regime_name IS NOT NULL AS in_yaml, p.regime IS NOT NULL AS in_parquet,
               y.start_date AS yaml_start, CAST(p.start_date AS DATE) AS parquet_start,
               y.end_date AS yaml_end, CAST(p.end_date AS DATE) AS parquet_end,
               TRY_CAST(y.regime_weight AS BIGINT) AS yaml_weight, p.weight AS parquet_weight,
               y.description AS yaml_description, p.description AS parquet_description
        FROM _reg y FULL OUTER JOIN read_parquet('{parquet}') p ON p.regime = y.regime_name
        ORDER BY coalesce(y.start_date, CAST(p.start_date AS DATE)), 1
        """
    ).fetchall()
    only_yaml, only_parquet, changed = [], [], []
    for (name, in_y, in_p, ys, ps, ye, pe, yw, pw, yd, pd) in rows:
        if not in_p:
            only_yaml.append({"regime": name, "start": str(ys), "end": str(ye), "weight": yw})
        elif not in_y:
            only_parquet.append({"regime": name, "start": str(ps), "end": str(pe), "weight": pw})
        else:
            diff = {
                k: {"yaml": str(a), "parquet": str(b)}
                for k, a, b in (("start_date", ys, ps), ("end_date", ye, pe), ("weight", yw, pw), ("description", yd, pd))
                if a != b
            }
            if diff:
                changed.append({"regime": name, **diff})
    return {
        "parquet": str(parquet),
        "identical": not (only_yaml or only_parquet or changed),
        "only_in_yaml": only_yaml,
        "only_in_parquet": only_parquet,
        "changed": changed,
    }


def compare_calendar(con: duckdb.DuckDBPyConnection, legacy: Path) -> dict[str, Any]:
    """Derived calendar (in _reg_calendar) vs the legacy regime_calendar.parquet, day by day."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _reg_cmp AS
        SELECT coalesce(d.date, l.date) AS date,
               d.regime_name AS derived_regime, d.regime_weight AS derived_weight,
               l.regime AS legacy_regime, l.training_weight AS legacy_weight,
               CASE WHEN d.date IS NULL THEN 'only_legacy' WHEN l.date IS NULL THEN 'only_derived'
                    WHEN d.regime_name IS DISTINCT FROM l.regime OR d.regime_weight IS DISTINCT FROM l.training_weight
                    THEN 'disagree'
                    ELSE 'agree' END AS verdict
        FROM _reg_calendar d
        FULL OUTER JOIN (SELECT CAST(date AS DATE) AS date, regime, training_weight
                         FROM read_parquet('{legacy}')) l ON l.date = d.date
        """
    )
    counts = dict(con.execute("SELECT verdict, count(*) FROM _reg_cmp GROUP BY 1").fetchall())
    legacy_days, lo, hi = con.execute(
        "SELECT count(*), min(date), max(date) FROM _reg_cmp WHERE verdict <> 'only_derived'"
    ).fetchall()[0]
    groups = con.execute(
        """
        SELECT legacy_regime, legacy_weight, derived_regime, derived_weight, count(*), min(date), max(date)
        FROM _reg_cmp WHERE verdict = 'disagree' GROUP BY ALL ORDER BY min(date)
        """
    ).fetchall()
    samples = con.execute(
        f"""
        SELECT date, legacy_regime, legacy_weight, derived_regime, derived_weight
        FROM _reg_cmp WHERE verdict = 'disagree' ORDER BY date LIMIT {SAMPLES}
        """
    ).fetchall()
    only_derived = con.execute(
        "SELECT count(*), min(date), max(date) FROM _reg_cmp WHERE verdict = 'only_derived'"
    ).fetchall()[0]
    con.execute("DROP TABLE _reg_cmp")
    return {
        "legacy": str(legacy),
        "legacy_days": legacy_days,
        "legacy_span": [str(lo), str(hi)],
        "agree": counts.get("agree", 0),
        "disagree": counts.get("disagree", 0),
        "only_legacy": counts.get("only_legacy", 0),
        "only_derived": {"days": only_derived[0], "span": [str(only_derived[1]), str(only_derived[2])]},
        "disagreements": [
            {"legacy": [g[0], g[1]], "derived": [g[2], g[3]], "days": g[4], "span": [str(g[5]), str(g[6])]}
            for g in groups
        ],
        "samples": [
            {"date": str(s[0]), "legacy": [s[1], s[2]], "derived": [s[3], s[4]]} for s in samples
        ],
    }


def ingest_registry(
    con: duckdb.DuckDBPyConnection, registry_dir: Path | str, run: IngestRun, start: dt.date | None = DEFAULT_START,
    end: dt.date | None = None,
) -> RegistryReport:
    """Load regime_weights.yaml and its derived calendar within `run`; check the legacy parquet copies.

    Raises RegistryError (before recording anything) when the YAML cannot define a calendar. The caller
    owns the run (`IngestRun(con)` before, `run.finish()` after)."""
    registry_dir = Path(registry_dir)
    yaml_path = (registry_dir / YAML_NAME).resolve()
    if not yaml_path.is_file():
        raise RegistryError(f"no {YAML_NAME} in {registry_dir}")
    regimes = read_regimes(yaml_path)
    calendar = derive_calendar(con, regimes, str(yaml_path), start, end)
    report = RegistryReport(str(yaml_path), regimes=len(regimes))
    span = con.execute(
        "SELECT min(date), max(date), count(*), count(*) FILTER (WHERE is_baseline) FROM _reg_calendar"
    ).fetchall()[0]
    report.calendar_start, report.calendar_end = str(span[0]), str(span[1])
    report.calendar_days, report.baseline_days = span[2], span[3]

    todo, _ = run.plan([identify(yaml_path, "regime_weights", "yaml")])
    if todo:
        weights = con.sql(
            "SELECT regime_name, start_date, end_date, regime_weight, description, source_file, record_number FROM _reg"
        )
        for contract, rel in (
            (WEIGHTS, weights),
            (CALENDAR, calendar.select("date, regime_name, regime_weight, source_file, record_number, _rule, _reason")),
        ):
            for path, c in run.stage(contract, rel, todo).items():
                report.counts[f"{path} -> {contract.fqn}"] = c
    else:
        report.status = "unchanged"

    if (registry_dir / LEGACY_WEIGHTS).is_file():
        report.weights_vs_parquet = compare_weights(con, (registry_dir / LEGACY_WEIGHTS).resolve())
    if (registry_dir / LEGACY_CALENDAR).is_file():
        report.calendar_vs_legacy = compare_calendar(con, (registry_dir / LEGACY_CALENDAR).resolve())
    con.execute("DROP TABLE IF EXISTS _reg_calendar")
    con.execute("DROP TABLE IF EXISTS _reg")
    return report
