"""FRED `date,value` CSVs into raw_intelligence.fred_economic, set-based.

One DuckDB `read_csv` reads every file at once (`filename = true`); no Python loop touches
the observations. Rules of the format:

* the series id is the file name (`DGS10.csv` -> DGS10);
* a blank value (or FRED's older "." marker) is FRED's missing observation: it loads as a row
  with value NULL, never dropped and never filled;
* `frequency` comes from `metadata.csv` in the same folder when the series is listed there
  (in the sample: CPIAUCSL, FEDFUNDS, USREC = M; DTWEXBGS, VIXCLS = D); otherwise it is NULL,
  not guessed;
* `record_number` is the line number in the file (the header is line 1);
* a file whose header is not `date,value` is recorded as a parse error and the others load;
  a value that is not a number or a date that is not a date is quarantined by the core (bad_type).

Idempotent through the core's file manifest: an unchanged file is skipped, a changed one replaces
its own rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

import data_contracts as dc
from data_contracts.to_duckdb import literal_list, table_ref

from .core import FileCounts, FileIdentity, IngestRun, identify

CONTRACT = dc.get("raw_intelligence.fred_economic")
RECORD_SCHEMA = "fred_csv"
METADATA = "metadata.csv"
HEADER = "date,value"
MISSING = ("", ".")  # FRED's missing observation: blank in fredgraph CSVs, "." in older downloads


@dataclass
class FredResult:
    files: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    counts: dict[str, FileCounts] = field(default_factory=dict)
    frequency: dict[str, str | None] = field(default_factory=dict)


def series_files(paths: Iterable[Path | str]) -> list[Path]:
    """The series CSVs under `paths` (files or folders), metadata.csv excluded, sorted, de-duplicated."""
    found: dict[Path, None] = {}
    for p in map(Path, paths):
        candidates = sorted(p.glob("*.csv")) if p.is_dir() else [p]
        for f in candidates:
            if f.name.lower() != METADATA:
                found[f.resolve()] = None
    return list(found)


def _header(path: Path) -> str:
    with path.open("r", encoding="utf-8-sig", errors="replace") as fh:
        return fh.readline().strip().replace(" ", "").lower()


def _metadata_rel(con: duckdb.DuckDBPyConnection, files: list[Path]) -> str:
    """SQL for (series_id, frequency) from the metadata.csv files beside the series, or an empty set."""
    metas = sorted({str(f.parent / METADATA) for f in files if (f.parent / METADATA).is_file()})
    if not metas:
        return "SELECT CAST(NULL AS VARCHAR) AS series_id, CAST(NULL AS VARCHAR) AS frequency WHERE false"
    # A series listed in two folders' metadata with different frequencies keeps neither (NULL, not a guess).
    return f"""
        SELECT series_id, CASE WHEN count(DISTINCT freq) = 1 THEN any_value(freq) END AS frequency
        FROM read_csv({literal_list(metas)}, header = true, all_varchar = true)
        WHERE series_id IS NOT NULL
        GROUP BY series_id
    """


def fred_relation(con: duckdb.DuckDBPyConnection, files: list[FileIdentity]) -> duckdb.DuckDBPyRelation:
    """All files in one read_csv, shaped for `run.stage(fred_economic, ...)`."""
    paths = [str(f.path) for f in files]
    nulls = literal_list(MISSING)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _fred_raw AS
        SELECT filename, date, value
        FROM read_csv({literal_list(paths)}, header = true, filename = true, nullstr = {nulls},
                      columns = {{'date': 'VARCHAR', 'value': 'VARCHAR'}}, auto_detect = false, delim = ',', quote = '"')
        """
    )
    # The temp table keeps the scan's order (insertion order is preserved), so rowid orders lines within a file.
    return con.sql(
        f"""
        SELECT regexp_extract(r.filename, '([^/\\\\]+)\\.[cC][sS][vV]$', 1) AS series_id,
               trim(r.date) AS date, trim(r.value) AS value, m.frequency,
               r.filename AS source_file,
               row_number() OVER (PARTITION BY r.filename ORDER BY r.rowid) + 1 AS record_number
        FROM _fred_raw r
        LEFT JOIN ({_metadata_rel(con, [f.path for f in files])}) m
               ON m.series_id = regexp_extract(r.filename, '([^/\\\\]+)\\.[cC][sS][vV]$', 1)
        """
    )


def ingest_fred(con: duckdb.DuckDBPyConnection, paths: Iterable[Path | str], run: IngestRun) -> FredResult:
    """Load FRED series CSVs (files or folders) into raw_intelligence.fred_economic within `run`.

    The caller owns the run (`IngestRun(con)` before, `run.finish()` after)."""
    files = series_files(paths)
    result = FredResult()
    if not files:
        return result
    todo, unchanged = run.plan([identify(p, RECORD_SCHEMA, "csv") for p in files])
    result.unchanged = [str(f.path) for f in unchanged]
    good: list[FileIdentity] = []
    for fid in todo:  # header check only (one line per file); the data is read set-based below
        header = _header(fid.path)
        if header != HEADER:
            reason = f"header is {header[:80]!r}, expected {HEADER!r}"
            run.file_error(fid, rule="parse_error", reason=reason, table=CONTRACT.fqn)
            result.errors[str(fid.path)] = reason
        else:
            good.append(fid)
    if not good:
        return result
    try:
        rel = fred_relation(con, good)  # the read runs here (materialised), so a malformed file raises here
    except duckdb.Error:
        # One malformed file must not block the others: find it, record it, load the rest.
        survivors = []
        for fid in good:
            try:
                fred_relation(con, [fid])
                survivors.append(fid)
            except duckdb.Error as exc:
                reason = str(exc).splitlines()[0][:300]
                run.file_error(fid, rule="parse_error", reason=reason, table=CONTRACT.fqn)
                result.errors[str(fid.path)] = reason
        good = survivors
        if not good:
            return result
        rel = fred_relation(con, good)
    result.counts.update(run.stage(CONTRACT, rel, good))
    con.execute("DROP TABLE IF EXISTS _fred_raw")
    result.files = [str(f.path) for f in good]
    result.frequency = dict(
        con.execute(
            f"SELECT series_id, any_value(frequency) FROM {table_ref(CONTRACT)} "
            "WHERE source_file IN (SELECT unnest(?)) GROUP BY series_id ORDER BY series_id",
            [result.files],
        ).fetchall()
    )
    return result
