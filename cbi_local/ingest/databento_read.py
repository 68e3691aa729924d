"""Databento readers: every encoding becomes one "typed" DuckDB table per record schema.

The typed table holds the record's raw values exactly as Databento defines them
(timestamps as ns since the epoch, prices as fixed-point integers scaled by 1e9, UNDEF
sentinels untouched) plus the bookkeeping the ingest core needs, so the three encodings
differ only here and share one conversion to warehouse rows (`databento_sql`).

* JSON and CSV: all files of a (schema, encoding) group are read in ONE DuckDB scan into
  numbered text lines (see "text" below), then parsed with `json_valid`/`from_json`
  (JSON) or a per-file header join (CSV), all in SQL. A bad line becomes a row with
  `_lrule` set; no line is skipped. `read_json(ignore_errors=true)` would drop bad lines
  without a trace, and read_json has no line numbers. Nor is it faster here: with
  explicit `columns` it re-parses the type strings for every file (measured 1.7-2x its
  auto-detect time on 2,000 daily files, auto-detect being about this whole scan + parse),
  and numbering its rows with row_number() OVER () doubles that again.
* DBN: one file at a time (there is no multi-file DBN scan), decoded by `databento`
  into columnar DataFrames of up to DBN_CHUNK records, each inserted in one statement:
  no per-record Python.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # ts (ns), int, px (fixed-point 1e-9), str
    required: bool = False
    in_header: bool = False  # JSON: lives under "hd"


_HD = (
    Field("ts_event", "ts", True, True),
    Field("rtype", "int", True, True),
    Field("publisher_id", "int", False, True),
    Field("instrument_id", "int", True, True),
)
BAR_FIELDS = _HD + (
    Field("open", "px", True), Field("high", "px", True), Field("low", "px", True), Field("close", "px", True),
    Field("volume", "int", True), Field("symbol", "str"),
)
STAT_FIELDS = (Field("ts_recv", "ts"),) + _HD + (
    Field("ts_ref", "ts"), Field("price", "px"), Field("quantity", "int"), Field("sequence", "int", True),
    Field("stat_type", "int", True), Field("update_action", "int"), Field("stat_flags", "int"), Field("symbol", "str"),
)
# A definition's ts_event may be UNDEF (pretty encodings write it as null): dim.instruments keeps
# ts_recv, so ts_event is not required there, and raw, pretty and DBN load the same record.
DEF_FIELDS = (Field("ts_recv", "ts"), Field("ts_event", "ts", False, True)) + _HD[1:] + (
    Field("raw_symbol", "str", True), Field("instrument_class", "str", True), Field("min_price_increment", "px"),
    Field("display_factor", "px"), Field("expiration", "ts"), Field("activation", "ts"),
    Field("unit_of_measure_qty", "px"), Field("currency", "str"), Field("exchange", "str"), Field("asset", "str"),
    Field("cfi", "str"), Field("security_type", "str"), Field("unit_of_measure", "str"), Field("symbol", "str"),
)


def fields_for(record_schema: str) -> tuple[Field, ...]:
    if record_schema.startswith("ohlcv-"):
        return BAR_FIELDS
    return {"statistics": STAT_FIELDS, "definition": DEF_FIELDS}[record_schema]


_SQL_TYPE = {"ts": "HUGEINT", "int": "HUGEINT", "px": "HUGEINT", "str": "VARCHAR"}
BOOKKEEPING_TYPES = {
    "source_file": "VARCHAR", "record_number": "BIGINT", "_lrule": "VARCHAR", "_lreason": "VARCHAR",
    "_ferr": "VARCHAR", "_line": "VARCHAR",
}
SHOW = 2000  # characters of an offending line kept in the quarantine reason


def typed_ddl(table: str, fields: tuple[Field, ...]) -> str:
    cols = [f"{n} {t}" for n, t in BOOKKEEPING_TYPES.items()] + [f"{f.name} {_SQL_TYPE[f.kind]}" for f in fields]
    return f"CREATE OR REPLACE TEMP TABLE {table} ({', '.join(cols)})"


# --- text (JSON, CSV) ---------------------------------------------------------------------
#
# Lines come from one of two scans, both keeping every line (blank ones too) with its
# 1-based number in its own file:
#   blob: read_text over all plain files, split on \n, numbered by list position. Fast and
#         exact. When a file is not valid UTF-8 read_text fails the whole scan, so it is run
#         again with read_blob, where such a file yields one `_undecodable` marker row and is
#         re-read by the csv scan, which flags its bad lines individually. read_text is the
#         first choice because read_blob + decode() copies every byte once more: on 2,000 daily
#         files that copy's fresh memory costs a third of the scan in page faults.
#   csv:  read_csv with one VARCHAR column (a 4-byte control delimiter Databento text never
#         holds), latin-1 so no byte can abort the scan; numbered by the streaming
#         row_number() OVER () (scan order is file order, line order) minus each file's
#         first number. Used for .zst (DuckDB decompresses), files too big for one string,
#         and undecodable files.

BLOB_MAX = 512 << 20  # larger plain files are streamed by the csv scan
MAX_LINE = 16 << 20  # bytes: the csv scan's max_line_size; no Databento text record comes near it

# The name filter runs on the lines, not on the files: a join on the files caches their whole
# text (one row per file) and so copies every byte once more, a third of the scan's fresh memory.
_SPLIT_LINES = """
    SELECT source_file, record_number, line, _undecodable FROM (
        SELECT source_file, unnest(l) AS line, generate_subscripts(l, 1) AS record_number, len(l) AS _n, _undecodable
        FROM (SELECT filename AS source_file, t IS NULL AS _undecodable,
                     CASE WHEN t IS NULL THEN [CAST(NULL AS VARCHAR)] ELSE string_split(t, chr(10)) END AS l
              FROM ({files})))
    WHERE (record_number < _n OR line <> '' OR _undecodable) AND source_file IN (SELECT unnest($paths))
"""
TEXT_LINES = _SPLIT_LINES.format(files="SELECT filename, content AS t FROM read_text($paths)")
BLOB_LINES = _SPLIT_LINES.format(files="SELECT filename, try(decode(content)) AS t FROM read_blob($paths)")

CSV_LINES = (
    "SELECT source_file, CAST(_rn - min(_rn) OVER (PARTITION BY source_file) + 1 AS BIGINT) AS record_number, "
    "line, false AS _undecodable FROM (SELECT filename AS source_file, row_number() OVER () AS _rn, line FROM "
    "read_csv($paths, columns={'line': 'VARCHAR'}, delim='\x01\x02\x03\x04', quote='', escape='', "
    "header=false, filename=true, auto_detect=false, strict_mode=false, "
    f"encoding='latin-1', new_line='\\r\\n', max_line_size={MAX_LINE + 1})) "
    # A name holding a glob character (* ?) must not pull in the files it happens to match.
    "WHERE source_file IN (SELECT unnest($paths))"
)


# A UTF-8 byte-order mark (Windows editors write one) is not part of the first record: as text
# it is U+FEFF, as latin-1 (the csv scan) its three bytes.
_BOM = {"blob": "chr(65279)", "csv": "'\xef\xbb\xbf'"}


def scan_lines(con: duckdb.DuckDBPyConnection, table: str, paths: list[str], how: str = "csv") -> None:
    """Numbered lines of all `paths` in one scan -> `table(source_file, record_number, line, _undecodable)`."""
    def scan(sql: str) -> None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {sql}", {"paths": paths})

    if how != "blob":
        scan(CSV_LINES)
    else:
        try:
            scan(TEXT_LINES)
        except duckdb.InvalidInputException as exc:
            if "UTF-8" not in str(exc):
                raise
            scan(BLOB_LINES)
    bom = _BOM["blob" if how == "blob" else "csv"]
    con.execute(
        f"UPDATE {table} SET line = substr(line, length({bom}) + 1) "
        f"WHERE record_number = 1 AND starts_with(line, {bom})"
    )


def _line_problem(line: str, check_ascii: bool) -> tuple[str, str]:
    """(rule, reason) SQL for problems a text line can have before parsing: NULL when none.

    A line over MAX_LINE bytes is a parse_error in either scan (the csv scan cannot hold one:
    its file becomes a file-level error). The blob scan only yields lines of files that
    decoded as UTF-8 (others are re-read), so only the csv scan (latin-1) needs the non-ASCII
    test; there any non-ASCII byte is flagged.
    """
    too_long = f"strlen({line}) > {MAX_LINE}"
    long_reason = (
        f"'line of ' || strlen({line}) || ' bytes is over the {MAX_LINE >> 20} MB limit of a text record: ' "
        f"|| left({line}, 200)"
    )
    if not check_ascii:
        return (f"CASE WHEN {too_long} THEN 'parse_error' END", f"CASE WHEN {too_long} THEN {long_reason} END")
    return (
        f"CASE WHEN {too_long} THEN 'parse_error' WHEN strlen({line}) <> length({line}) THEN 'encoding' END",
        f"CASE WHEN {too_long} THEN {long_reason} WHEN strlen({line}) <> length({line}) THEN "
        f"'line is not ASCII text (invalid UTF-8 or non-ASCII bytes, shown as latin-1): ' || left({line}, {SHOW}) END",
    )


def _blank(line: str) -> str:
    return f"({line} IS NULL OR trim({line}, ' \t\r') = '')"


def _json_struct(fields: tuple[Field, ...]) -> str:
    hd = ", ".join(f'"{f.name}": "VARCHAR"' for f in fields if f.in_header)
    top = ", ".join(f'"{f.name}": "VARCHAR"' for f in fields if not f.in_header)
    return "{" + f'"hd": {{{hd}}}, {top}' + "}"


def json_text_sql(lines: str, fields: tuple[Field, ...], check_ascii: bool) -> str:
    """NDJSON lines (a lines table) -> one VARCHAR column per field (s_<name>) + line-level rule."""
    rule, reason = _line_problem("line", check_ascii)
    struct = _json_struct(fields).replace("'", "''")
    cols = ", ".join(
        f"j.hd.{f.name} AS s_{f.name}" if f.in_header else f"j.{f.name} AS s_{f.name}" for f in fields
    )
    # Good lines are nearly all lines: every test on them is a flag, the reason strings (and the
    # blank-line trim) are only built behind `_bad`.
    return f"""
        WITH p AS (SELECT source_file, record_number, line, _undecodable, {rule} AS _r0 FROM {lines}),
        v AS (SELECT *, _r0 IS NULL AND coalesce(json_valid(line), false) AS _ok FROM p),
        j AS (SELECT *, CASE WHEN _ok THEN from_json(line, '{struct}') END AS j FROM v),
        b AS (SELECT *, _undecodable OR NOT _ok OR j.hd IS NULL AS _bad FROM j)
        SELECT source_file, record_number, line AS _line,
               CASE WHEN _bad THEN CASE WHEN _undecodable THEN '_reread' WHEN _r0 IS NOT NULL THEN _r0
                                        ELSE 'parse_error' END END AS _lrule,
               CASE WHEN _bad THEN
                   CASE WHEN _undecodable THEN NULL
                        WHEN _r0 IS NOT NULL THEN {reason}
                        WHEN {_blank("line")} THEN 'blank line'
                        WHEN NOT _ok THEN 'invalid JSON (truncated or corrupt line): ' || left(line, {SHOW})
                        ELSE 'not a Databento record (no "hd" header): ' || left(line, {SHOW})
                   END END AS _lreason,
               {cols}
        FROM b
    """


def csv_headers(con: duckdb.DuckDBPyConnection, lines: str) -> list[tuple[str, str]]:
    """Files whose first line is not a Databento CSV header: [(source_file, first line)]."""
    return con.execute(
        f"""
        SELECT source_file, coalesce(left(line, 200), '') FROM {lines}
        WHERE record_number = 1 AND NOT _undecodable
          AND (line IS NULL OR NOT list_contains(string_split(rtrim(line, chr(13)), ','), 'ts_event'))
        """
    ).fetchall()


def csv_text_sql(lines: str, fields: tuple[Field, ...], check_ascii: bool) -> str:
    """Databento CSV lines (a lines table) -> one VARCHAR column per field, located by each file's own header."""
    rule, reason = _line_problem("n.line", check_ascii)
    cols = ", ".join(f"nullif(_parts[list_position(_hdr, '{f.name}')], '') AS s_{f.name}" for f in fields)
    return f"""
        WITH h AS (SELECT source_file, string_split(rtrim(line, chr(13)), ',') AS _hdr FROM {lines}
                   WHERE record_number = 1),
        n AS (SELECT n.source_file, n.record_number, n.line, n._undecodable, h._hdr,
                     string_split(rtrim(n.line, chr(13)), ',') AS _parts, {rule} AS _r0, {reason} AS _why0
              FROM {lines} n LEFT JOIN h USING (source_file)
              WHERE n.record_number > 1 OR n._undecodable)
        SELECT source_file, record_number, line AS _line,
               CASE WHEN _undecodable THEN '_reread'
                    WHEN _r0 IS NOT NULL THEN _r0
                    WHEN {_blank("line")} OR contains(line, '"') OR len(_parts) <> len(_hdr) THEN 'parse_error' END AS _lrule,
               CASE WHEN _undecodable THEN NULL
                    WHEN _r0 IS NOT NULL THEN _why0
                    WHEN {_blank("line")} THEN 'blank line'
                    WHEN contains(line, '"') THEN 'quoted CSV fields are not Databento CSV: ' || left(line, {SHOW})
                    WHEN len(_parts) <> len(_hdr) THEN
                        'expected ' || len(_hdr) || ' comma-separated fields (header), found ' || len(_parts)
                        || ': ' || left(line, {SHOW})
               END AS _lreason,
               {cols}
        FROM n
    """


def _typed_expr(f: Field) -> str:
    s = f"s_{f.name}"
    # Cheap shape tests (contains) pick the parse; TRY_CAST yields NULL on anything malformed.
    if f.kind == "str":
        return s
    if f.kind == "int":
        return f"CASE WHEN NOT contains({s}, '.') THEN TRY_CAST({s} AS HUGEINT) END"
    if f.kind == "px":
        # Raw: an integer of 1e-9 units. Pretty: a decimal, converted exactly (digits, no float).
        return (
            f"CASE WHEN NOT contains({s}, '.') THEN TRY_CAST({s} AS HUGEINT) "
            f"WHEN regexp_full_match({s}, '-?[0-9]*\\.[0-9]+') THEN "
            f"TRY_CAST(split_part({s}, '.', 1) || rpad(split_part({s}, '.', 2), 9, '0') AS HUGEINT) END"
        )
    # ts: raw ns since the epoch, or ISO 8601 (pretty_ts writes UTC with 'Z'); kept to the ns.
    return (
        f"CASE WHEN NOT contains({s}, '-') AND NOT contains({s}, ':') THEN TRY_CAST({s} AS HUGEINT) "
        f"WHEN regexp_matches({s}, '[+-][0-9]{{2}}:?[0-9]{{2}}$') THEN "
        f"CAST(epoch_us(TRY_CAST({s} AS TIMESTAMPTZ)) AS HUGEINT) * 1000 "
        f"ELSE CAST(epoch_ns(TRY_CAST(rtrim({s}, 'Z') AS TIMESTAMP_NS)) AS HUGEINT) END"
    )


def text_to_typed(
    con: duckdb.DuckDBPyConnection, text_sql: str, params: list, fields: tuple[Field, ...], table: str,
    rtype: int,
) -> None:
    """VARCHAR fields -> typed raw values, inserted into `table`; values that do not parse go to `_ferr`.

    The line text is kept only on rows with a problem (for the quarantine reason)."""
    typed = ", ".join(f"{_typed_expr(f)} AS {f.name}" for f in fields)
    flags, problems = [], []
    for f in fields:
        if f.required:
            flags.append(f"s_{f.name} IS NULL")
            problems.append(f"CASE WHEN s_{f.name} IS NULL THEN '{f.name} is missing' END")
        if f.kind != "str":
            what = {"ts": "timestamp", "int": "integer", "px": "price"}[f.kind]
            flags.append(f"(s_{f.name} IS NOT NULL AND t.{f.name} IS NULL)")
            problems.append(
                f"CASE WHEN s_{f.name} IS NOT NULL AND t.{f.name} IS NULL "
                f"THEN '{f.name}=' || left(s_{f.name}, 60) || ' is not a valid {what}' END"
            )
    # The field problems are one flag per row; their text is only built for flagged rows.
    con.execute(
        f"""
        INSERT INTO {table} BY NAME
        SELECT source_file, record_number, _lrule, _lreason,
               CASE WHEN _fbad THEN concat_ws('; ', {", ".join(problems)}) END AS _ferr,
               CASE WHEN _lrule IS NOT NULL OR _fbad OR rtype IS DISTINCT FROM {rtype} THEN _line END AS _line,
               {", ".join(f.name for f in fields)}
        FROM (SELECT *, _lrule IS NULL AND ({" OR ".join(flags)}) AS _fbad
              FROM (SELECT *, {typed} FROM ({text_sql})) t) t
        """,
        params,
    )


# --- DBN ------------------------------------------------------------------------------------


class DbnUnreadable(Exception):
    """The DBN file cannot be decoded at all (file-level error)."""


DBN_CHUNK = 1_000_000  # records decoded per DataFrame: bounded memory on large range files


def open_dbn(path: Path):
    """Open a DBN file; DbnUnreadable when its metadata cannot be decoded or it mixes schemas."""
    import databento as db

    try:
        store = db.DBNStore.from_file(path)
        store.metadata  # noqa: B018 - decodes the header
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a file-level error
        raise DbnUnreadable(f"cannot decode DBN: {exc}") from exc
    if store.schema is None:
        raise DbnUnreadable("DBN stream mixes record schemas (no schema in its metadata; a live capture?): batch "
                            "files never do; split it per schema first (databento: DBNStore.to_df(schema=...))")
    return store


def dbn_to_typed(con: duckdb.DuckDBPyConnection, store, source_file: str, fields: tuple[Field, ...], table: str) -> int:
    """Insert a DBN file's records into the typed table, DBN_CHUNK records per statement.

    Records of another schema keep their own rtype (the shared conversion quarantines them
    as wrong_rtype); an incomplete last record becomes a parse_error row. Returns the row count.
    """
    n = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            for frame in store.to_df(price_type="fixed", pretty_ts=False, map_symbols=False, count=DBN_CHUNK):
                n += _insert_frame(con, frame.reset_index(), source_file, n, fields, table)
        except Exception as exc:  # noqa: BLE001
            raise DbnUnreadable(f"cannot decode DBN records after record {n}: {exc}") from exc
    truncated = next((str(w.message) for w in caught if "truncated" in str(w.message)), None)
    if truncated:
        # The partial record at the end is a row too: quarantined, never dropped.
        con.execute(
            f"INSERT INTO {table} (source_file, record_number, _lrule, _lreason) VALUES (?, ?, 'parse_error', ?)",
            [source_file, n + 1, f"incomplete last record: {truncated}"],
        )
        n += 1
    return n


def _insert_frame(con, frame: pd.DataFrame, source_file: str, offset: int, fields, table: str) -> int:
    n = len(frame)
    data: dict[str, object] = {"record_number": np.arange(offset + 1, offset + n + 1, dtype=np.int64)}
    for f in fields:
        if f.name in frame.columns:
            data[f.name] = frame[f.name].astype("string") if f.kind == "str" else frame[f.name].to_numpy()
    out = pd.DataFrame(data, index=pd.RangeIndex(n))
    casts = ", ".join(f"CAST({f.name} AS {_SQL_TYPE[f.kind]}) AS {f.name}" for f in fields if f.name in out.columns)
    con.register("_dbn_frame", out)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT ? AS source_file, record_number, {casts} FROM _dbn_frame", [source_file])
    finally:
        con.unregister("_dbn_frame")
    return n


def zstd_problem(path: Path) -> str | None:
    """Why a .zst file is not a complete zstd stream (DuckDB reads a truncated one as empty)."""
    import zstandard

    dctx = zstandard.ZstdDecompressor()
    obj, pending = dctx.decompressobj(), False
    try:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                data = chunk
                while data:
                    obj.decompress(data)  # output discarded: only completeness matters here
                    if obj.eof:  # a frame ended; the next one (if any) starts in unused_data
                        data, obj, pending = obj.unused_data, dctx.decompressobj(), False
                    else:
                        data, pending = b"", True
    except zstandard.ZstdError as exc:
        return f"corrupt zstd stream: {exc}"
    return "zstd stream is truncated (its last frame never ends)" if pending else None
