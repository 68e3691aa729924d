"""Typed Databento records -> warehouse rows, as one SQL statement per record schema.

Shared by every encoding, so JSON, CSV and DBN load identical rows. Reader-level rules
are decided here, first failing rule wins:

  encoding / parse_error (line level) > wrong_rtype > wrong_dataset > parse_error (a field) >
  unmapped_symbol > no_spreads

wrong_dataset: the record's publisher_id is not CME Globex MDP 3.0 (GLBX.MDP3), the only
Databento dataset this warehouse holds (its contracts, calendars and roots are CME's): an ICE,
equities or options file dropped in the inbox never lands, nor can its instrument ids (which
other datasets reuse) resolve to a CME symbol.

Symbols come from the record (`symbol`, present when Databento mapped symbols) unless it is the
requested parent/continuous symbol (ZL.FUT, ZL.c.0: `carried`), else
from the batch folder's symbology (symbology.json or DBN metadata mappings: instrument_id
-> symbol per [d0, d1) UTC date), else from instrument definitions (this run's and
dim.instruments) whose activation..expiration covers the date. The date is that of
ts_recv when the record has one, else ts_event, as `databento` itself maps symbols.
`resolve_symbols` does these lookups once per distinct (folder, instrument, date) and
once per distinct symbol (root, spread) into two small tables; the per-record statement
only joins them.
"""

from __future__ import annotations

import duckdb

I64_MAX = 9223372036854775807  # UNDEF_PRICE, UNDEF_STAT_QUANTITY (DBN v2+)
I32_MAX = 2147483647  # UNDEF_STAT_QUANTITY in DBN v1
U64_MAX = 18446744073709551615  # UNDEF_TIMESTAMP
RTYPE = {"ohlcv-1s": 32, "ohlcv-1m": 33, "ohlcv-1h": 34, "ohlcv-1d": 35, "statistics": 24, "definition": 19}
RTYPE_NAME = {
    0: "mbp-0/trades", 1: "mbp-1", 10: "mbp-10", 17: "ohlcv (deprecated)", 18: "status", 19: "definition",
    20: "imbalance", 21: "error", 22: "symbol mapping", 23: "system", 24: "statistics", 32: "ohlcv-1s",
    33: "ohlcv-1m", 34: "ohlcv-1h", 35: "ohlcv-1d", 160: "mbo",
}
SPREAD_CLASSES = ("S", "T", "M")
# Product root of a contract symbol: strip the month code and year (ESH1 -> ES, MESZ5 -> MES,
# ZLF26 -> ZL). Spreads (ZLF6-ZLH6) take their first leg's root.
ROOT_RE = r"^([A-Z0-9]+?)[FGHJKMNQUVXZ][0-9]{1,2}$"


def root_sql(symbol: str) -> str:
    return f"nullif(regexp_extract(split_part({symbol}, '-', 1), '{ROOT_RE}', 1), '')"


def _in_range(ns: str) -> str:
    return f"({ns} >= 0 AND {ns} < 4102444800000000000)"


def ts_sql(ns: str) -> str:
    """ns since the epoch (HUGEINT) -> TIMESTAMPTZ (microseconds, UTC); UNDEF and absurd values -> NULL."""
    # In range the value fits a BIGINT: the division runs on 64 bits and make_timestamptz takes
    # epoch microseconds directly (no time-zone arithmetic).
    return f"CASE WHEN {_in_range(ns)} THEN make_timestamptz(CAST({ns} AS BIGINT) // 1000) END"


def date_sql(ns: str) -> str:
    """ns since the epoch (HUGEINT) -> its UTC DATE; NULL out of range."""
    return f"CAST(CASE WHEN {_in_range(ns)} THEN make_timestamp(CAST({ns} AS BIGINT) // 1000) END AS DATE)"


def px_sql(raw: str) -> str:
    return f"CASE WHEN {raw} <> {I64_MAX} THEN CAST({raw} AS DOUBLE) / 1e9 END"


def _ts_bad(ns: str) -> str:
    return f"({ns} IS NOT NULL AND {ns} <> {U64_MAX} AND NOT {_in_range(ns)})"


def _big_bad(v: str) -> str:
    return f"({v} IS NOT NULL AND NOT ({v} BETWEEN -{I64_MAX} - 1 AND {I64_MAX}))"


# A parent or continuous request's symbol (ZL.FUT, ZL.OPT, ZL.c.0, ZL.n.1, ZL.v.0): with the symbol
# option on, Databento writes the REQUESTED symbol into every JSON/CSV record, which names no
# contract. Such a record is resolved like one that carries no symbol (symbology.json, DBN
# metadata, the definitions), never loaded under the parent symbol nor quarantined for it.
PARENT_SYMBOL = r"[A-Za-z0-9]+\.(FUT|OPT|SPOT|[cnv]\.[0-9]+)"


def carried(sym: str) -> str:
    """SQL: the contract symbol a record carries, NULL when it carries none or a parent/continuous one."""
    return f"CASE WHEN regexp_full_match({sym}, '{PARENT_SYMBOL}') THEN NULL ELSE nullif({sym}, '') END"


RESOLVED = "_dbn_resolved"  # (folder, instrument_id, _date) -> symbol, for records without one
SYMBOLS = "_dbn_symbols"  # symbol -> product root, spread flag


def create_lookup_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE _dbn_files (source_file VARCHAR, folder VARCHAR)")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _dbn_map (folder VARCHAR, instrument_id BIGINT, d0 DATE, d1 DATE, symbol VARCHAR)"
    )
    # Definitions known to this run: refreshed after the run's definitions are read.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _dbn_defs AS
        SELECT instrument_id, raw_symbol, instrument_class, coalesce(is_spread, false) AS is_spread,
               CAST(activation AS DATE) AS d_from, CAST(expiration AS DATE) AS d_to
        FROM dim.instruments
        """
    )


def add_run_definitions(con: duckdb.DuckDBPyConnection, rows: str) -> None:
    """Definitions read in this run (even ones the core will quarantine) inform spread and symbol lookups."""
    con.execute(
        f"""
        INSERT INTO _dbn_defs
        SELECT DISTINCT instrument_id, raw_symbol, instrument_class, is_spread,
               CAST(activation AS DATE), CAST(expiration AS DATE)
        FROM {rows} WHERE instrument_id IS NOT NULL AND raw_symbol IS NOT NULL AND _rule IS NULL
        """
    )


def drop_lookup_tables(con: duckdb.DuckDBPyConnection) -> None:
    for t in ("_dbn_files", "_dbn_map", "_dbn_defs", RESOLVED, SYMBOLS):
        con.execute(f"DROP TABLE IF EXISTS {t}")


def _publishers() -> tuple[list[int], str]:
    """(GLBX.MDP3's publisher ids, SQL CASE arms naming every publisher's dataset), from databento."""
    from databento.common.publishers import Publisher

    ours = [p.to_int() for p in Publisher if str(p.dataset) == DATASET]
    names = " ".join(f"WHEN {p.to_int()} THEN '{p.dataset}'" for p in Publisher)
    return ours, names


DATASET = "GLBX.MDP3"
_OURS, _PUBLISHER_DATASET = _publishers()


def _venue(x: str) -> tuple[str, str]:
    """(condition, reason) SQL of the wrong_dataset rule on the typed row alias `x`."""
    ids = ", ".join(map(str, _OURS))
    cond = f"({x}publisher_id IS NOT NULL AND {x}publisher_id NOT IN ({ids}))"
    reason = (
        f"'publisher_id ' || {x}publisher_id || ' (' || coalesce(CASE {x}publisher_id {_PUBLISHER_DATASET} END, "
        f"'unknown to databento') || ') is not {DATASET}, the only Databento dataset this warehouse holds'"
        f" || coalesce(': ' || left({x}_line, 2000), '')"
    )
    return cond, reason


def _t(typed: str, schema: str, date_ns: str) -> str:
    """CTE `t`: typed rows + folder, record date and the rule precedence so far."""
    expected = RTYPE[schema]
    names = " ".join(f"WHEN {k} THEN ' ({v})'" for k, v in RTYPE_NAME.items())
    venue, venue_reason = _venue("x.")
    return f"""
    t AS (
        SELECT x.*, f.folder, {date_sql(date_ns)} AS _date,
               CASE WHEN x._lrule IS NOT NULL THEN x._lrule
                    WHEN x.rtype IS NOT NULL AND x.rtype <> {expected} THEN 'wrong_rtype'
                    WHEN {venue} THEN 'wrong_dataset'
                    WHEN x._ferr IS NOT NULL THEN 'parse_error' END AS _rule0,
               CASE WHEN x._lrule IS NOT NULL THEN x._lreason
                    WHEN x.rtype IS NOT NULL AND x.rtype <> {expected} THEN
                         'rtype ' || x.rtype || coalesce(CASE x.rtype {names} END, '')
                         || ' in a {schema} file (expects rtype {expected})'
                         || coalesce(': ' || left(x._line, 2000), '')
                    WHEN {venue} THEN {venue_reason}
                    WHEN x._ferr IS NOT NULL THEN x._ferr || coalesce(': ' || left(x._line, 2000), '')
               END AS _reason0
        FROM {typed} x LEFT JOIN _dbn_files f USING (source_file)
    )"""


def _date_ns(schema: str) -> str:
    # Symbols are mapped on the date of ts_recv when the record has one, as `databento` does.
    return f"coalesce(nullif(ts_recv, {U64_MAX}), ts_event)" if schema == "statistics" else "ts_event"


def resolve_symbols(con: duckdb.DuckDBPyConnection, typed: str, schema: str) -> None:
    """Symbol lookups as two small tables, so the per-record statement only joins them.

    RESOLVED: one row per distinct (folder, instrument_id, date) of records that carry no
    symbol. SYMBOLS: one row per distinct symbol (carried or resolved) with its product root
    and spread flag, so the root regex runs once per symbol, not once per record.
    """
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {RESOLVED} AS
        WITH {_t(typed, schema, _date_ns(schema))},
        k AS (SELECT DISTINCT folder, TRY_CAST(instrument_id AS BIGINT) AS instrument_id, _date FROM t
              WHERE {carried("symbol")} IS NULL AND _rule0 IS NULL AND _date IS NOT NULL),
        by_map AS (
            SELECT k.folder, k.instrument_id, k._date, arg_max(m.symbol, m.d0) AS sym
            FROM k JOIN _dbn_map m ON m.folder = k.folder AND m.instrument_id = k.instrument_id
                 AND k._date >= m.d0 AND k._date < m.d1
            WHERE NOT contains(m.symbol, '.')  -- parent/continuous symbols (ES.FUT, ES.c.0) name no contract
            GROUP BY ALL
        ),
        by_def AS (
            SELECT k.folder, k.instrument_id, k._date, arg_max(d.raw_symbol, d.d_from) AS sym
            FROM k JOIN _dbn_defs d ON d.instrument_id = k.instrument_id
                 AND k._date BETWEEN coalesce(d.d_from, DATE '1900-01-01') AND coalesce(d.d_to, DATE '2999-12-31')
            GROUP BY ALL
        )
        SELECT k.folder, k.instrument_id, k._date, coalesce(m.sym, d.sym) AS sym,
               (SELECT min(symbol) FROM _dbn_map c WHERE c.folder = k.folder AND c.instrument_id = k.instrument_id
                    AND k._date >= c.d0 AND k._date < c.d1) AS _any_map
        FROM k LEFT JOIN by_map m USING (folder, instrument_id, _date)
               LEFT JOIN by_def d USING (folder, instrument_id, _date)
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {SYMBOLS} AS
        SELECT _sym, {root_sql('_sym')} AS _root,
               (contains(_sym, '-') OR _sym IN (SELECT raw_symbol FROM _dbn_defs WHERE is_spread)) AS _spread
        FROM (SELECT {carried("symbol")} AS _sym FROM {typed} UNION SELECT sym FROM {RESOLVED})
        WHERE _sym IS NOT NULL
        """
    )


def _common(typed: str, schema: str) -> str:
    """CTEs `t` (typed + rule precedence so far) and `u` (+ symbol, root, spread); needs resolve_symbols()."""
    return f"""{_t(typed, schema, _date_ns(schema))},
    u AS (
        SELECT t.*, y._sym, r._any_map, y._root, y._spread
        FROM t LEFT JOIN {RESOLVED} r ON r.folder = t.folder
               AND r.instrument_id = TRY_CAST(t.instrument_id AS BIGINT) AND r._date = t._date
             LEFT JOIN {SYMBOLS} y ON y._sym = coalesce({carried("t.symbol")}, r.sym)
    )"""


def _symbol_rules() -> tuple[str, str]:
    rule = (
        "CASE WHEN _rule0 IS NOT NULL THEN _rule0 "
        "WHEN _sym IS NULL THEN 'unmapped_symbol' "
        "WHEN _spread THEN 'no_spreads' "
        "WHEN _root IS NULL THEN 'unmapped_symbol' END"
    )
    reason = (
        "CASE WHEN _rule0 IS NOT NULL THEN _reason0 "
        "WHEN _sym IS NULL THEN 'instrument_id ' || coalesce(CAST(instrument_id AS VARCHAR), 'NULL') || ' on ' "
        "|| coalesce(CAST(_date AS VARCHAR), 'an unknown date') || ' has no symbol: the record carries '"
        " || CASE WHEN nullif(symbol, '') IS NULL THEN 'none' ELSE 'only the requested parent/continuous symbol ' || symbol"
        " || ' (include the definition schema in the request, or its symbology.json)' END || ' and '"
        " || CASE WHEN _any_map IS NOT NULL THEN 'the batch symbology maps it only to ' || _any_map"
        " || ' (a parent/continuous symbol, not a contract)' "
        "ELSE 'neither symbology.json, DBN metadata nor an instrument definition maps it' END "
        "WHEN _spread THEN 'spread ' || _sym || ' never reaches a price table' "
        "WHEN _root IS NULL THEN 'symbol ' || _sym || ' has no recognisable product root' END"
    )
    return rule, reason


def bars_sql(typed: str, schema: str) -> str:
    rule, reason = _symbol_rules()
    extra_bad = " OR ".join(
        [_ts_bad("ts_event"), _big_bad("volume"), _big_bad("instrument_id"), _big_bad("publisher_id")]
        + [_big_bad(p) for p in ("open", "high", "low", "close")]
    )  # an UNDEF price (I64_MAX) is no parse error: it becomes NULL (px_sql) and the contract's not_null rejects it
    return f"""
    WITH {_common(typed, schema)},
    v AS (
        SELECT u.*,
               CASE WHEN _rule0 IS NULL AND ({extra_bad}) THEN 'parse_error' END AS _rule1
        FROM u
    )
    SELECT {ts_sql("ts_event")} AS ts_event, _sym AS symbol, _root AS root,
           CASE WHEN NOT {_big_bad("instrument_id")} THEN TRY_CAST(instrument_id AS BIGINT) END AS instrument_id,
           CASE WHEN NOT {_big_bad("publisher_id")} THEN TRY_CAST(publisher_id AS BIGINT) END AS publisher_id,
           {px_sql("open")} AS open, {px_sql("high")} AS high, {px_sql("low")} AS low, {px_sql("close")} AS close,
           CASE WHEN NOT {_big_bad("volume")} THEN TRY_CAST(volume AS BIGINT) END AS volume,
           source_file, record_number,
           coalesce(_rule1, {rule}) AS _rule,
           CASE WHEN _rule1 IS NOT NULL THEN 'value out of range (ts_event, volume, ids, prices): ts_event='
                || coalesce(CAST(ts_event AS VARCHAR), 'NULL') || ' volume=' || coalesce(CAST(volume AS VARCHAR), 'NULL')
                || ' open=' || coalesce(CAST(open AS VARCHAR), 'NULL')
                || coalesce(': ' || left(_line, 2000), '')
                ELSE {reason} END AS _reason
    FROM v
    """


def statistics_sql(typed: str) -> str:
    rule, reason = _symbol_rules()
    extra_bad = " OR ".join(
        [_ts_bad("ts_event"), _ts_bad("ts_recv"), _ts_bad("ts_ref"), _big_bad("quantity"), _big_bad("sequence"),
         _big_bad("instrument_id"), _big_bad("stat_type"), _big_bad("update_action"), _big_bad("stat_flags")]
    )
    big = lambda c: f"TRY_CAST({c} AS BIGINT)"  # noqa: E731
    return f"""
    WITH {_common(typed, "statistics")},
    v AS (SELECT u.*, CASE WHEN _rule0 IS NULL AND ({extra_bad}) THEN 'parse_error' END AS _rule1 FROM u)
    SELECT {ts_sql("ts_event")} AS ts_event, {ts_sql("ts_recv")} AS ts_recv, {ts_sql("ts_ref")} AS ts_ref,
           _sym AS symbol, _root AS root, {big("instrument_id")} AS instrument_id,
           {big("publisher_id")} AS publisher_id, {big("stat_type")} AS stat_type,
           {px_sql("price")} AS price,
           CASE WHEN quantity NOT IN ({I64_MAX}, {I32_MAX}) AND NOT {_big_bad("quantity")}
                THEN TRY_CAST(quantity AS BIGINT) END AS quantity,
           {big("sequence")} AS sequence, {big("update_action")} AS update_action, {big("stat_flags")} AS stat_flags,
           source_file, record_number,
           coalesce(_rule1, {rule}) AS _rule,
           CASE WHEN _rule1 IS NOT NULL THEN 'timestamp or integer out of range' || coalesce(': ' || left(_line, 2000), '')
                ELSE {reason} END AS _reason
    FROM v
    """


def definitions_sql(typed: str) -> str:
    """Definitions -> dim.instruments rows.

    Databento re-sends every definition daily with a new ts_recv. ts_recv is kept as the
    FIRST time this exact definition was seen (the warehouse's row, else the earliest in
    the input), so a re-sent, unchanged definition is a duplicate, not a conflict; a
    definition whose content changed is a unique_key conflict the core quarantines.
    """
    expected = RTYPE["definition"]
    content = (
        "root", "instrument_class", "is_spread", "exchange", "currency", "security_type", "cfi",
        "min_price_increment", "display_factor", "unit_of_measure", "unit_of_measure_qty", "expiration", "activation",
    )
    same = " AND ".join(f"d.{c} IS NOT DISTINCT FROM f.{c}" for c in content)
    part = ", ".join(f"f.{c}" for c in content)
    names = " ".join(f"WHEN {k} THEN ' ({v})'" for k, v in RTYPE_NAME.items())
    venue, venue_reason = _venue("")
    return f"""
    WITH f AS (
        SELECT CASE WHEN NOT {_big_bad("instrument_id")} THEN TRY_CAST(instrument_id AS BIGINT) END AS instrument_id,
               nullif(raw_symbol, '') AS raw_symbol,
               coalesce({root_sql("raw_symbol")}, nullif(asset, '')) AS root,
               nullif(instrument_class, '') AS instrument_class,
               (instrument_class IN {SPREAD_CLASSES} OR contains(raw_symbol, '-')) AS is_spread,
               nullif(exchange, '') AS exchange, nullif(currency, '') AS currency,
               nullif(security_type, '') AS security_type, nullif(cfi, '') AS cfi,
               {px_sql("min_price_increment")} AS min_price_increment, {px_sql("display_factor")} AS display_factor,
               nullif(unit_of_measure, '') AS unit_of_measure, {px_sql("unit_of_measure_qty")} AS unit_of_measure_qty,
               {ts_sql("expiration")} AS expiration, {ts_sql("activation")} AS activation,
               {ts_sql("ts_recv")} AS _ts_recv,
               source_file, record_number,
               CASE WHEN _lrule IS NOT NULL THEN _lrule
                    WHEN rtype IS NOT NULL AND rtype <> {expected} THEN 'wrong_rtype'
                    WHEN {venue} THEN 'wrong_dataset'
                    WHEN _ferr IS NOT NULL OR {_ts_bad("ts_recv")} OR {_ts_bad("expiration")}
                         OR {_ts_bad("activation")} OR {_big_bad("instrument_id")} THEN 'parse_error' END AS _rule,
               CASE WHEN _lrule IS NOT NULL THEN _lreason
                    WHEN rtype IS NOT NULL AND rtype <> {expected} THEN
                         'rtype ' || rtype || coalesce(CASE rtype {names} END, '')
                         || ' in a definition file (expects rtype {expected})' || coalesce(': ' || left(_line, 2000), '')
                    WHEN {venue} THEN {venue_reason}
                    WHEN _ferr IS NOT NULL THEN _ferr || coalesce(': ' || left(_line, 2000), '')
                    WHEN _rule IS NOT NULL THEN 'timestamp or instrument_id out of range'
                         || coalesce(': ' || left(_line, 2000), '')
               END AS _reason
        FROM {typed}
    )
    SELECT f.* EXCLUDE (_ts_recv),
           CASE WHEN f._rule IS NULL THEN coalesce(d.ts_recv, min(f._ts_recv) OVER (
                PARTITION BY f._rule IS NULL, f.instrument_id, f.raw_symbol, {part}))
                ELSE f._ts_recv END AS ts_recv
    FROM f LEFT JOIN dim.instruments d
         ON f._rule IS NULL AND d.instrument_id = f.instrument_id AND d.raw_symbol = f.raw_symbol AND {same}
    """
