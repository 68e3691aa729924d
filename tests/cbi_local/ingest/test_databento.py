"""Databento ingest on the real ES samples (DBN v3, GLBX.MDP3, ESH1, 2020-12-28).

Every accepted row comes from the real DBN files, or from JSON/CSV transcodes of them made
here with `databento` itself. Bad-input tests corrupt copies of those real records.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import tempfile
import warnings
from datetime import date, datetime, timezone
from pathlib import Path

import databento as db
import pytest
import zstandard
from databento.common.symbology import InstrumentMap

from cbi_local import warehouse
from cbi_local.ingest.core import IngestRun
from cbi_local.ingest.databento import TARGETS, discover, ingest_databento, root_of

LINEAGE = ("source", "source_file", "file_sha256", "batch_id", "ingested_at")
LOADED = ("definition", "statistics", "ohlcv-1s", "ohlcv-1m", "ohlcv-1h", "ohlcv-1d")
UTC = timezone.utc


# --- fixtures and helpers (`con`, a fresh warehouse per test, is in tests/cbi_local/conftest.py) ---


@pytest.fixture(scope="session")
def glbx(sample_data: Path) -> Path:
    return sample_data / "databento" / "GLBX.MDP3"


def store(glbx: Path, schema: str) -> db.DBNStore:
    return db.DBNStore.from_file(glbx / f"test_data.{schema}.dbn.zst")


def ingest(con, paths) -> dict:
    run = IngestRun(con)
    messages: list[str] = []
    ingest_databento(con, [Path(p) for p in paths], run, progress=lambda message, *count: messages.append(message))
    summary = run.finish().as_dict()
    summary["messages"] = messages
    return summary


def rows(con, schema: str) -> list[tuple]:
    table = TARGETS[schema]
    return con.execute(f"SELECT * EXCLUDE ({', '.join(LINEAGE)}) FROM {table} ORDER BY ALL").fetchall()


def quarantine(con) -> list[tuple]:
    return con.execute(
        "SELECT source_file, record_number, rule, reason FROM monitoring.quarantine ORDER BY source_file, record_number"
    ).fetchall()


def assert_balanced(summary: dict) -> None:
    assert summary["balanced"], summary
    for path, c in summary["files"].items():
        assert c["rows_read"] == c["rows_loaded"] + c["rows_quarantined"] + c["rows_duplicate"], path
    t = summary["totals"]
    assert t["rows_read"] == t["rows_loaded"] + t["rows_quarantined"] + t["rows_duplicate"]


def symbology_json(glbx: Path) -> dict:
    """A batch symbology.json (the symbology.resolve layout databento's InstrumentMap reads), built
    from the real DBN metadata mappings."""
    m = store(glbx, "ohlcv-1h").metadata
    result = {
        sym: [{"d0": str(e["start_date"]), "d1": str(e["end_date"]), "s": str(e["symbol"])} for e in entries]
        for sym, entries in m.mappings.items()
    }
    return {
        "result": result, "symbols": list(m.symbols), "stype_in": str(m.stype_in), "stype_out": str(m.stype_out),
        "start_date": "2020-12-28", "end_date": "2020-12-29", "partial": [], "not_found": [], "message": "OK",
        "status": 0,
    }


def _record_date(ts: str) -> str:
    if ts.isdigit():
        return datetime.fromtimestamp(int(ts) / 1e9, UTC).strftime("%Y%m%d")
    return ts[:10].replace("-", "")


def transcode(glbx: Path, folder: Path, enc: str, pretty: bool, layout: str, schemas=LOADED) -> list[Path]:
    """Write the real samples as a Databento batch folder: one file per UTC day or one range file."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for schema in schemas:
        buf = folder / f"_tmp.{schema}.{enc}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = store(glbx, schema)
            kw = {"pretty_px": pretty, "pretty_ts": pretty, "map_symbols": pretty}
            s.to_json(buf, **kw) if enc == "json" else s.to_csv(buf, **kw)
        text = buf.read_text()
        buf.unlink()
        lines = text.splitlines()
        header, body = (lines[0], lines[1:]) if enc == "csv" else (None, lines)
        by_day: dict[str, list[str]] = {}
        for line in body:
            if enc == "json":
                ts = json.loads(line)["hd"]["ts_event"]
            else:
                ts = next(csv.DictReader(io.StringIO(header + "\n" + line)))["ts_event"]
            by_day.setdefault(_record_date(ts), []).append(line)
        if layout == "range":  # named by the request's range, as Databento names range files
            start = s.metadata.start // 1_000_000_000
            end = s.metadata.end // 1_000_000_000 - 1
            span = "-".join(datetime.fromtimestamp(t, UTC).strftime("%Y%m%d") for t in (start, end))
            by_day = {span: body}
        for day, chunk in by_day.items():
            p = folder / f"glbx-mdp3-{day}.{schema}.{enc}"
            p.write_text("\n".join(([header] if header else []) + chunk) + "\n")
            out.append(p)
    return out


def batch_folder(tmp_path: Path, glbx: Path, name: str = "GLBX-20251118-TAAH7VN45V", symbology: bool = True) -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True)
    for sidecar in ("manifest.json", "metadata.json", "condition.json"):
        (folder / sidecar).write_text("{}")
    if symbology:
        (folder / "symbology.json").write_text(json.dumps(symbology_json(glbx)))
    return folder


def json_lines(glbx: Path, schema: str, pretty: bool) -> list[str]:
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = Path(d) / "x.json"
        store(glbx, schema).to_json(out, pretty_px=pretty, pretty_ts=pretty, map_symbols=pretty)
        return out.read_text().splitlines()


def raw_json_lines(glbx: Path, schema: str) -> list[str]:
    return json_lines(glbx, schema, pretty=False)


def pretty_json_lines(glbx: Path, schema: str) -> list[str]:
    return json_lines(glbx, schema, pretty=True)


# --- naming, symbology, roots --------------------------------------------------------------------


def test_discover_classifies_batch_files_by_name(tmp_path: Path):
    folder = tmp_path / "GLBX-20251118-TAAH7VN45V"
    names = [
        "glbx-mdp3-20100606.ohlcv-1h.json", "glbx-mdp3-20100606-20251117.ohlcv-1d.json",
        "glbx-mdp3-20100606.statistics.csv.zst", "test_data.definition.dbn.zst", "glbx-mdp3-20100606.trades.dbn",
        "manifest.json", "metadata.json", "symbology.json", "condition.json", "._glbx-mdp3-20100606.ohlcv-1h.json",
        "notes.txt",
    ]
    (folder / "sub").mkdir(parents=True)
    for n in names:
        (folder / n).write_text("x")
    (folder / "sub" / "glbx-mdp3-20100607.ohlcv-1m.csv").write_text("x")
    found = {f.path.name: (f.record_schema, f.encoding, f.compressed) for f in discover([folder])}
    assert found == {
        "glbx-mdp3-20100606.ohlcv-1h.json": ("ohlcv-1h", "json", False),
        "glbx-mdp3-20100606-20251117.ohlcv-1d.json": ("ohlcv-1d", "json", False),
        "glbx-mdp3-20100606.statistics.csv.zst": ("statistics", "csv", True),
        "test_data.definition.dbn.zst": ("definition", "dbn", True),
        "glbx-mdp3-20100606.trades.dbn": ("trades", "dbn", False),
        "glbx-mdp3-20100607.ohlcv-1m.csv": ("ohlcv-1m", "csv", False),
        "notes.txt": (None, None, False),  # inside a folder: returned unclassified, ingest records it as skipped
    }
    # Named explicitly, a non-Databento file is returned unclassified (ingest reports it as an error).
    [notes] = discover([folder / "notes.txt"])
    assert notes.record_schema is None and notes.encoding is None


def test_symbology_fixture_is_the_layout_databento_reads(glbx: Path):
    imap = InstrumentMap()
    imap.insert_json(symbology_json(glbx))
    assert imap.resolve(5482, date(2020, 12, 28)) == "ESH1"
    assert imap.resolve(5482, date(2020, 12, 29)) is None  # d1 is exclusive


@pytest.mark.parametrize(
    "symbol, root",
    [("ESH1", "ES"), ("ZLF6", "ZL"), ("MESZ5", "MES"), ("ZLF6-ZLH6", "ZL"), ("6EH1", "6E"), ("ZLF26", "ZL"),
     ("ES.c.0", None), ("", None)],
)
def test_root_of(symbol, root):
    assert root_of(symbol) == root


# --- the real DBN samples -----------------------------------------------------------------------


def test_dbn_samples_load(con, glbx: Path, tmp_path: Path):
    summary = ingest(con, [glbx])
    assert_balanced(summary)
    bars = con.execute(
        "SELECT ts_event, symbol, root, instrument_id, publisher_id, open, high, low, close, volume, source "
        "FROM market_data.databento_futures_ohlcv_1h ORDER BY ts_event"
    ).fetchall()
    assert len(bars) == 4
    assert bars[0] == (
        datetime(2020, 12, 28, tzinfo=UTC), "ESH1", "ES", 5482, 1, 3702.75, 3707.0, 3697.25, 3705.75, 11891, "databento"
    )
    assert [b[0].hour for b in bars] == [0, 1, 2, 3]
    counts = {s: len(rows(con, s)) for s in LOADED}
    assert counts == {"definition": 1, "statistics": 4, "ohlcv-1s": 4, "ohlcv-1m": 4, "ohlcv-1h": 4, "ohlcv-1d": 1}
    assert con.execute("SELECT open, high, low, close, volume FROM market_data.databento_futures_ohlcv_1d").fetchall() == [
        (3702.75, 3735.0, 3697.25, 3735.0, 718174)
    ]
    # status and trades have no table: recorded as skipped (not errors, not silently ignored).
    assert not any(c["status"] == "error" for c in summary["files"].values())
    skipped = {Path(p).name: c for p, c in summary["files"].items() if c["status"] == "skipped"}
    assert set(skipped) == {"test_data.status.dbn.zst", "test_data.trades.dbn.zst"}
    assert all(c["rows_read"] == 0 and "has no warehouse table" in c["error"] for c in skipped.values())
    # A file that is not Databento data at all, named explicitly, is an error.
    notes = tmp_path / "notes.txt"
    notes.write_text("not market data\n")
    [(_, c)] = ingest(con, [notes])["files"].items()
    assert c["status"] == "error" and c["error"].startswith("unsupported_schema")


def test_definition_lands_in_dim_instruments(con, glbx: Path):
    ingest(con, [glbx / "test_data.definition.dbn.zst"])
    got = con.execute(
        "SELECT instrument_id, raw_symbol, root, instrument_class, is_spread, exchange, currency, security_type, cfi, "
        "min_price_increment, display_factor, unit_of_measure, unit_of_measure_qty, expiration, activation, ts_recv "
        "FROM dim.instruments"
    ).fetchall()
    assert got == [
        (5482, "ESH1", "ES", "F", False, "XCME", "USD", "FUT", "FFIXSX", 0.25, 0.01, "IPNT", 50.0,
         datetime(2021, 3, 19, 13, 30, tzinfo=UTC), datetime(2019, 12, 20, 14, 30, tzinfo=UTC),
         datetime(2020, 12, 28, tzinfo=UTC))
    ]


def test_statistics_undef_sentinels_become_null(con, glbx: Path, tmp_path: Path):
    folder = batch_folder(tmp_path, glbx)
    lines = raw_json_lines(glbx, "statistics")
    assert all('"quantity":"9223372036854775807"' in l and '"ts_ref":"18446744073709551615"' in l for l in lines)
    # One record with an UNDEF price too (i64::MAX), as settlement-less statistics carry.
    rec = json.loads(lines[0])
    rec["price"], rec["sequence"] = "9223372036854775807", 1
    (folder / "glbx-mdp3-20201228.statistics.json").write_text("\n".join(lines + [json.dumps(rec)]) + "\n")
    assert_balanced(ingest(con, [folder]))
    got = con.execute(
        "SELECT symbol, root, stat_type, price, quantity, ts_ref, ts_recv IS NOT NULL, sequence "
        "FROM market_data.databento_futures_statistics ORDER BY sequence"
    ).fetchall()
    assert len(got) == 5
    assert got[0] == ("ESH1", "ES", 8, None, None, None, True, 1)
    assert [g[3] for g in got[1:]] == [3707.75, 3708.0, 3708.25, 3708.25]
    assert all(g[4] is None and g[5] is None for g in got)
    assert 9223372036854775807 not in {g[4] for g in got}


# --- every encoding loads identical rows ----------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory, glbx: Path) -> dict[str, list[tuple]]:
    path = tmp_path_factory.mktemp("ref") / "w.duckdb"
    warehouse.init(path)
    c = warehouse.connect(path)
    ingest(c, [glbx])
    ref = {s: rows(c, s) for s in LOADED}
    c.close()
    return ref


@pytest.mark.parametrize("symbology", [True, False], ids=["symbology", "no-symbology"])
@pytest.mark.parametrize("layout", ["daily", "range"])
@pytest.mark.parametrize("pretty", [False, True], ids=["raw", "pretty"])
@pytest.mark.parametrize("enc", ["json", "csv"])
def test_every_encoding_loads_identical_rows(con, glbx, tmp_path, reference, enc, pretty, layout, symbology):
    folder = batch_folder(tmp_path, glbx, symbology=symbology)
    files = transcode(glbx, folder, enc, pretty, layout)
    if layout == "range":
        assert all("glbx-mdp3-20201228-20201228." in f.name for f in files)
    summary = ingest(con, [folder])
    assert_balanced(summary)
    assert quarantine(con) == []
    for schema in LOADED:
        assert rows(con, schema) == reference[schema], schema
    # Raw records carry no symbol: without symbology.json they resolve through the folder's definition.
    assert con.execute("SELECT DISTINCT symbol, root FROM market_data.databento_futures_ohlcv_1h").fetchall() == [
        ("ESH1", "ES")
    ]


def test_all_encodings_in_one_folder_are_duplicates_of_each_other(con, glbx, tmp_path):
    folder = batch_folder(tmp_path, glbx)
    for enc in ("json", "csv"):
        for pretty in (False, True):
            transcode(glbx, folder / f"{enc}-{pretty}", enc, pretty, "daily")
    for schema in LOADED:
        shutil.copy(glbx / f"test_data.{schema}.dbn.zst", folder / f"glbx-mdp3-20201228.{schema}.dbn.zst")
    # Sub-folders share the top folder's symbology only if they have their own; give them one.
    for sub in folder.iterdir():
        if sub.is_dir():
            shutil.copy(folder / "symbology.json", sub / "symbology.json")
    summary = ingest(con, [folder])
    assert_balanced(summary)
    t = summary["totals"]
    # 18 distinct records, 5 encodings of each: anything not byte-for-byte equal after
    # conversion would be a unique_key conflict in quarantine instead of a duplicate.
    assert (t["rows_read"], t["rows_loaded"], t["rows_quarantined"], t["rows_duplicate"]) == (90, 18, 0, 72)


def test_ingest_twice_loads_nothing_new(con, glbx, tmp_path):
    folder = batch_folder(tmp_path, glbx)
    transcode(glbx, folder, "json", False, "daily")
    first = ingest(con, [folder])
    assert_balanced(first)
    assert first["totals"] == {"rows_read": 18, "rows_loaded": 18, "rows_quarantined": 0, "rows_duplicate": 0}
    for path, c in first["files"].items():
        assert c["rows_loaded"] == c["rows_read"] > 0, path
    before = {s: rows(con, s) for s in LOADED}
    second = ingest(con, [folder])
    assert second["totals"] == {"rows_read": 0, "rows_loaded": 0, "rows_quarantined": 0, "rows_duplicate": 0}
    assert len(second["unchanged_files"]) == len(first["files"])
    assert {s: rows(con, s) for s in LOADED} == before
    manifest = con.execute("SELECT sum(rows_read), sum(rows_loaded) FROM ops.file_manifest").fetchone()
    assert manifest == (18, 18)


def test_unmapped_symbol_is_quarantined_not_dropped(con, glbx, tmp_path):
    folder = batch_folder(tmp_path, glbx, symbology=False)
    transcode(glbx, folder, "json", False, "daily", schemas=("ohlcv-1h",))  # no definition, no symbology
    summary = ingest(con, [folder])
    assert_balanced(summary)
    assert summary["totals"]["rows_quarantined"] == 4
    q = quarantine(con)
    assert [(r[1], r[2]) for r in q] == [(1, "unmapped_symbol"), (2, "unmapped_symbol"), (3, "unmapped_symbol"), (4, "unmapped_symbol")]
    assert "instrument_id 5482 on 2020-12-28" in q[0][3]


def test_a_symlinked_file_loads_with_its_batch_folder(con, glbx, tmp_path):
    """A data file linked into a batch folder is loaded (known by its real path, with the
    symbology of the folder it was found in) and skipped as unchanged on a re-run."""
    store_dir = tmp_path / "store"
    [real] = transcode(glbx, store_dir, "json", False, "daily", schemas=("ohlcv-1h",))
    folder = batch_folder(tmp_path, glbx)
    (folder / real.name).symlink_to(real)
    first = ingest(con, [folder])
    assert_balanced(first)
    assert list(first["files"]) == [str(real.resolve())]
    assert first["totals"]["rows_loaded"] == 4 and quarantine(con) == []
    sha = con.execute("SELECT file_sha256 FROM ops.file_manifest").fetchall()
    assert sha == [(hashlib.sha256(real.read_bytes()).hexdigest(),)]
    second = ingest(con, [folder])
    assert second["unchanged_files"] == [str(real.resolve())] and second["totals"]["rows_read"] == 0


# --- bad input -----------------------------------------------------------------------------------------


def test_bad_input_is_quarantined_with_file_line_and_rule(con, glbx, tmp_path):
    folder = batch_folder(tmp_path, glbx)
    raw = raw_json_lines(glbx, "ohlcv-1h")
    pretty = pretty_json_lines(glbx, "ohlcv-1h")
    m1 = raw_json_lines(glbx, "ohlcv-1m")

    def bar(line: str, **changes) -> str:
        rec = json.loads(line)
        for k, v in changes.items():
            if k == "ts":
                rec["hd"]["ts_event"] = v
            elif k == "iid":
                rec["hd"]["instrument_id"] = v
            else:
                rec[k] = v
        return json.dumps(rec, separators=(",", ":"))

    day = "glbx-mdp3-2020122{}.ohlcv-1h.json"
    # A file of good records with one of each line-level defect in between.
    bad_lines = [
        raw[0],
        raw[1][:70],  # 2: truncated line
        raw[2].replace('"rtype"', '"rt\xff\xfepe"'),  # 3: non-UTF-8 bytes (written as latin-1 below)
        m1[1],  # 4: an ohlcv-1m record (rtype 33) in an ohlcv-1h file
        "",  # 5: blank line
        raw[3],
    ]
    (folder / day.format(8)).write_bytes("\n".join(bad_lines).encode("latin-1") + b"\n")
    # Values the core's contract rules catch, on otherwise valid records (other hours, same day).
    h = 3_600_000_000_000
    t0 = int(json.loads(raw[0])["hd"]["ts_event"])
    rules_file = [
        bar(raw[0], ts=str(t0 + 4 * h), high="3690000000000"),  # high < low
        bar(raw[0], ts=str(t0 + 5 * h), open="0"),  # zero price
        bar(pretty[0], ts="2020-12-28T06:00:00.000000000Z", close="NaN"),  # NaN price
        bar(raw[0], ts=str(t0 + 7 * h), volume="-5"),  # negative volume
        bar(pretty[0], ts="2020-12-28T08:00:00.000000000Z", symbol="ZLF6-ZLH6"),  # calendar spread
        bar(raw[0], ts=str(t0 + 9 * h), iid=4242),  # instrument with no symbol anywhere
        raw[1],  # a valid record
    ]
    (folder / day.format(9)).write_text("\n".join(rules_file) + "\n")
    # File-level: empty file, truncated zstd, DBN of another schema, CSV without header.
    (folder / "glbx-mdp3-20201230.ohlcv-1h.json").write_bytes(b"")
    whole = zstandard.ZstdCompressor().compress(("\n".join(raw) + "\n").encode() * 50)
    (folder / "glbx-mdp3-20201231.ohlcv-1h.json.zst").write_bytes(whole[: len(whole) // 2])
    shutil.copy(glbx / "test_data.ohlcv-1m.dbn.zst", folder / "glbx-mdp3-20210101.ohlcv-1h.dbn.zst")
    (folder / "glbx-mdp3-20210102.ohlcv-1h.csv").write_text("1609113600000000000,34,1,5482,1,2,1,1,5\n")
    # The same file copied under another name: its rows are duplicates, nothing new.
    shutil.copy(folder / day.format(8), folder / "copy of glbx-mdp3-20201228.ohlcv-1h.json")

    summary = ingest(con, [folder])
    assert_balanced(summary)
    q = {(Path(f).name, n): (rule, reason) for f, n, rule, reason in quarantine(con)}
    d8, d9 = day.format(8), day.format(9)
    assert q[(d8, 2)][0] == "parse_error" and "invalid JSON" in q[(d8, 2)][1]
    assert q[(d8, 3)][0] == "encoding"
    assert q[(d8, 4)][0] == "wrong_rtype" and "rtype 33 (ohlcv-1m)" in q[(d8, 4)][1]
    assert q[(d8, 5)][0] == "parse_error" and "blank line" in q[(d8, 5)][1]
    assert q[(d9, 1)][0] == "ohlc_sane"
    assert q[(d9, 2)][0] == "ohlc_sane"
    assert q[(d9, 3)][0] == "parse_error" and "close=NaN" in q[(d9, 3)][1]
    assert q[(d9, 4)][0] == "non_negative"
    assert q[(d9, 5)][0] == "no_spreads" and "ZLF6-ZLH6" in q[(d9, 5)][1]
    assert q[(d9, 6)][0] == "unmapped_symbol" and "instrument_id 4242" in q[(d9, 6)][1]
    # Every reason names the file and the line.
    for (name, n), (_, reason) in q.items():
        if n is not None:
            assert f"{name}:{n} " in reason
    # Whole files that cannot be read are file-level errors naming the file.
    files = {Path(p).name: c for p, c in summary["files"].items()}
    # A 0-byte JSON file is how Databento writes an empty range: recorded as empty, no error.
    assert files["glbx-mdp3-20201230.ohlcv-1h.json"]["status"] == "empty"
    assert files["glbx-mdp3-20201231.ohlcv-1h.json.zst"]["error"].startswith("parse_error: zstd stream is truncated")
    assert files["glbx-mdp3-20210102.ohlcv-1h.csv"]["error"].startswith("parse_error: line 1 is not a Databento CSV header")
    assert (files["glbx-mdp3-20210102.ohlcv-1h.csv"]["rows_read"], files["glbx-mdp3-20201230.ohlcv-1h.json"]["rows_read"]) == (0, 0)
    dbn = files["glbx-mdp3-20210101.ohlcv-1h.dbn.zst"]
    assert (dbn["rows_read"], dbn["rows_quarantined"]) == (4, 4)
    assert {q[("glbx-mdp3-20210101.ohlcv-1h.dbn.zst", n)][0] for n in (1, 2, 3, 4)} == {"wrong_rtype"}
    copy, original = files["copy of glbx-mdp3-20201228.ohlcv-1h.json"], files[d8]
    # One of the two loads the 2 valid records, the other counts them as duplicates; both
    # quarantine the 4 bad lines under their own name.
    assert copy["rows_read"] == original["rows_read"] == 6
    assert copy["rows_quarantined"] == original["rows_quarantined"] == 4
    assert sorted([copy["rows_loaded"], original["rows_loaded"]]) == [0, 2]
    assert copy["rows_loaded"] + copy["rows_duplicate"] == 2
    # The valid rest loaded: bars 00:00, 01:00 (file 9) and 03:00 (file 8), each once.
    got = con.execute("SELECT hour(ts_event), symbol, open FROM market_data.databento_futures_ohlcv_1h ORDER BY 1").fetchall()
    assert got == [(0, "ESH1", 3702.75), (1, "ESH1", 3705.75), (3, "ESH1", 3715.25)]


def test_spread_by_instrument_class_from_definition(con, glbx, tmp_path):
    """A spread whose symbol has no '-' is known by its definition's instrument_class (S/T/M)."""
    folder = batch_folder(tmp_path, glbx, symbology=False)
    d = json.loads(raw_json_lines(glbx, "definition")[0])
    d["hd"]["instrument_id"], d["raw_symbol"], d["instrument_class"] = 777, "UD:1V: VT 0512", "S"
    (folder / "glbx-mdp3-20201228.definition.json").write_text(json.dumps(d) + "\n")
    b = json.loads(raw_json_lines(glbx, "ohlcv-1h")[0])
    b["hd"]["instrument_id"] = 777
    (folder / "glbx-mdp3-20201228.ohlcv-1h.json").write_text(json.dumps(b) + "\n")
    summary = ingest(con, [folder])
    assert_balanced(summary)
    assert con.execute("SELECT raw_symbol, is_spread FROM dim.instruments").fetchall() == [("UD:1V: VT 0512", True)]
    [(f, n, rule, reason)] = quarantine(con)
    assert (Path(f).name, n, rule) == ("glbx-mdp3-20201228.ohlcv-1h.json", 1, "no_spreads")
    assert "UD:1V: VT 0512" in reason
    # Later runs know the spread from dim.instruments alone.
    later = tmp_path / "later"
    later.mkdir()
    b["hd"]["ts_event"] = str(int(b["hd"]["ts_event"]) + 3_600_000_000_000)
    (later / "glbx-mdp3-20201228.ohlcv-1h.json").write_text(json.dumps(b) + "\n")
    ingest(con, [later])
    assert [r[2] for r in quarantine(con)] == ["no_spreads", "no_spreads"]


def _zstd(path: Path) -> Path:
    out = path.with_name(path.name + ".zst")
    out.write_bytes(zstandard.ZstdCompressor().compress(path.read_bytes()))
    path.unlink()
    return out


@pytest.mark.parametrize("enc", ["json", "csv"])
def test_zstd_compressed_text_loads_identical_rows(con, glbx, tmp_path, reference, enc):
    """Batch downloads are usually zstd-compressed: .json.zst / .csv.zst take the streaming scan."""
    folder = batch_folder(tmp_path, glbx)
    for f in transcode(glbx, folder, enc, False, "daily"):
        _zstd(f)
    assert all(p.name.endswith(".zst") for p in folder.glob("glbx-*"))
    summary = ingest(con, [folder])
    assert_balanced(summary)
    assert quarantine(con) == []
    for schema in LOADED:
        assert rows(con, schema) == reference[schema], schema


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "zst"])
def test_line_numbers_survive_one_scan_over_many_files(con, glbx, tmp_path, compressed):
    """One DuckDB scan reads all files; each bad line is reported at its own file's line number."""
    folder = batch_folder(tmp_path, glbx)
    raw = raw_json_lines(glbx, "ohlcv-1h")
    t0 = int(json.loads(raw[0])["hd"]["ts_event"])
    expected = {}
    for i in range(60):
        lines = []
        for k in range(1 + i % 7):
            rec = json.loads(raw[k % 4])
            rec["hd"]["ts_event"] = str(t0 + (i * 10 + k) * 60_000_000_000)
            lines.append(json.dumps(rec))
        bad_at = i % len(lines)
        lines[bad_at] = lines[bad_at][:50]
        path = folder / f"glbx-mdp3-{20200000 + i}.ohlcv-1h.json"
        path.write_text("\n".join(lines) + "\n")
        expected[(_zstd(path) if compressed else path).name] = bad_at + 1
    summary = ingest(con, [folder])
    assert_balanced(summary)
    got = {Path(f).name: n for f, n, rule, _ in quarantine(con) if rule == "parse_error"}
    assert got == expected
    assert summary["totals"]["rows_loaded"] == sum(1 + i % 7 for i in range(60)) - 60


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "zst"])
def test_bad_csv_lines(con, glbx, tmp_path, compressed):
    folder = batch_folder(tmp_path, glbx)
    [path] = transcode(glbx, folder, "csv", False, "daily", schemas=("ohlcv-1h",))
    header, *body = path.read_text().splitlines()
    lines = [
        header,
        body[0],
        body[1].rsplit(",", 1)[0],  # 3: a field short
        "",  # 4: blank
        body[2].replace(",34,", ',"34",'),  # 5: quoted field
        body[3].replace("5482", "54\xe982"),  # 6: non-ASCII byte
        body[3].replace(",34,", ",33,"),  # 7: wrong rtype
    ]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))  # CRLF, as an editor might save it
    if compressed:
        path = _zstd(path)
    summary = ingest(con, [folder])
    assert_balanced(summary)
    got = [(n, rule) for _, n, rule, _ in quarantine(con)]
    assert got == [(3, "parse_error"), (4, "parse_error"), (5, "parse_error"), (6, "encoding"), (7, "wrong_rtype")]
    assert con.execute("SELECT open, volume FROM market_data.databento_futures_ohlcv_1h").fetchall() == [(3702.75, 11891)]


def test_truncated_dbn_record_is_quarantined(con, glbx, tmp_path):
    folder = batch_folder(tmp_path, glbx, symbology=False)
    data = zstandard.ZstdDecompressor().decompressobj().decompress((glbx / "test_data.ohlcv-1h.dbn.zst").read_bytes())
    (folder / "glbx-mdp3-20201228.ohlcv-1h.dbn").write_bytes(data[:-10])  # last record cut short
    summary = ingest(con, [folder])
    assert_balanced(summary)
    assert summary["totals"] == {"rows_read": 4, "rows_loaded": 3, "rows_quarantined": 1, "rows_duplicate": 0}
    [(_, n, rule, reason)] = quarantine(con)
    assert (n, rule) == (4, "parse_error") and "incomplete last record" in reason


def test_a_copy_loaded_later_is_all_duplicates(con, glbx, tmp_path):
    folder = batch_folder(tmp_path, glbx)
    transcode(glbx, folder, "json", True, "daily", schemas=("ohlcv-1h",))
    ingest(con, [folder])
    later = tmp_path / "elsewhere"
    later.mkdir()
    shutil.copy(folder / "glbx-mdp3-20201228.ohlcv-1h.json", later / "glbx-mdp3-20201228 (1).ohlcv-1h.json")
    summary = ingest(con, [later])
    assert summary["totals"] == {"rows_read": 4, "rows_loaded": 0, "rows_quarantined": 0, "rows_duplicate": 4}


def test_chunked_folders_load_the_same_rows(con, glbx, tmp_path, reference, monkeypatch):
    """A folder too big for one scan is read in chunks of files; the rows are the same."""
    from cbi_local.ingest import databento

    monkeypatch.setattr(databento, "CHUNK_BYTES", 1)  # every file its own chunk
    folder = batch_folder(tmp_path, glbx, symbology=False)
    transcode(glbx, folder / "json", "json", False, "daily")
    transcode(glbx, folder / "csv", "csv", True, "daily")
    summary = ingest(con, [folder])
    assert_balanced(summary)
    assert quarantine(con) == []
    for schema in LOADED:
        assert rows(con, schema) == reference[schema], schema
    assert summary["totals"]["rows_duplicate"] == 18


def test_out_of_range_numbers_are_parse_errors_not_crashes(con, glbx, tmp_path):
    folder = batch_folder(tmp_path, glbx)
    raw = raw_json_lines(glbx, "ohlcv-1h")
    huge = "9" * 30
    recs = [json.loads(line) for line in raw]
    recs[0]["hd"]["instrument_id"] = huge
    recs[1]["volume"] = huge
    recs[2]["hd"]["ts_event"] = huge
    (folder / "glbx-mdp3-20201228.ohlcv-1h.json").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    stats = [json.loads(line) for line in raw_json_lines(glbx, "statistics")]
    stats[0]["quantity"], stats[1]["sequence"] = huge, "x"
    (folder / "glbx-mdp3-20201228.statistics.json").write_text("\n".join(json.dumps(r) for r in stats) + "\n")
    summary = ingest(con, [folder])
    assert_balanced(summary)
    assert [(Path(f).name.split(".")[1], n, rule) for f, n, rule, _ in quarantine(con)] == [
        ("ohlcv-1h", 1, "parse_error"), ("ohlcv-1h", 2, "parse_error"), ("ohlcv-1h", 3, "parse_error"),
        ("statistics", 1, "parse_error"), ("statistics", 2, "parse_error"),
    ]
    assert summary["totals"]["rows_loaded"] == 1 + 2


def test_bom_and_crlf_lose_no_line(con, glbx, tmp_path):
    """A file saved by a Windows editor (UTF-8 byte-order mark, CRLF line ends) loads every record,
    plain and zstd-compressed alike (the two text scans)."""
    raw = raw_json_lines(glbx, "ohlcv-1h")
    data = b"\xef\xbb\xbf" + "\r\n".join(raw).encode() + b"\r\n"
    folder = batch_folder(tmp_path, glbx)
    (folder / "glbx-mdp3-20201228.ohlcv-1h.json").write_bytes(data)
    (folder / "glbx-mdp3-20201229.ohlcv-1h.json.zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    summary = ingest(con, [folder])
    assert_balanced(summary)
    assert quarantine(con) == []
    t = summary["totals"]
    assert (t["rows_read"], t["rows_loaded"], t["rows_duplicate"]) == (2 * len(raw), len(raw), len(raw))
    assert len(rows(con, "ohlcv-1h")) == len(raw)


def test_undef_price_becomes_null_and_fails_not_null(con, glbx, tmp_path):
    """Databento's UNDEF_PRICE (i64::MAX) means "no price": it becomes NULL, not a parse error; a bar
    without a close or high then fails the contract's not_null, by rule."""
    folder = batch_folder(tmp_path, glbx)
    recs = [json.loads(line) for line in raw_json_lines(glbx, "ohlcv-1h")]
    recs[0]["close"] = recs[1]["high"] = "9223372036854775807"
    (folder / "glbx-mdp3-20201228.ohlcv-1h.json").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    summary = ingest(con, [folder])
    assert_balanced(summary)
    got = [(n, rule) for _, n, rule, _ in quarantine(con)]
    assert got == [(1, "not_null"), (2, "not_null")]
    reasons = [r for *_, r in quarantine(con)]
    assert "close is missing" in reasons[0] and "high is missing" in reasons[1]
    assert summary["totals"]["rows_loaded"] == len(recs) - 2


def test_a_line_over_16_mb_is_a_parse_error_with_its_size(con, glbx, tmp_path):
    folder = batch_folder(tmp_path, glbx)
    raw = raw_json_lines(glbx, "ohlcv-1h")
    rec = json.loads(raw[0])
    rec["padding"] = "x" * (17 << 20)  # still valid JSON and a valid record otherwise
    (folder / "glbx-mdp3-20201228.ohlcv-1h.json").write_text(json.dumps(rec) + "\n" + "\n".join(raw[1:]) + "\n")
    summary = ingest(con, [folder])
    assert_balanced(summary)
    [(_, n, rule, reason)] = quarantine(con)
    assert (n, rule) == (1, "parse_error") and "over the 16 MB limit" in reason and f"{len(json.dumps(rec))} bytes" in reason
    assert summary["totals"]["rows_loaded"] == len(raw) - 1


@pytest.mark.parametrize("requested", ["ES.FUT", "ES.c.0"])
@pytest.mark.parametrize("enc", ["json", "csv"])
def test_a_parent_or_continuous_request_in_pretty_encodings_loads_like_raw(con, glbx, tmp_path, reference, enc, requested):
    """With the symbol option on, Databento writes the REQUESTED symbol (ES.FUT, ES.c.0) into every
    pretty record. The contract comes from the folder's definitions then, as for raw records."""
    folder = batch_folder(tmp_path, glbx, symbology=False)
    for f in transcode(glbx, folder, enc, pretty=True, layout="daily"):
        if enc == "json":
            recs = [json.loads(line) for line in f.read_text().splitlines()]
            for r in recs:
                r["symbol"] = requested
            f.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
        else:
            lines = f.read_text().splitlines()
            col = lines[0].split(",").index("symbol")
            f.write_text("\n".join([lines[0]] + [",".join(v if i != col else requested for i, v in enumerate(line.split(",")))
                                                 for line in lines[1:]]) + "\n")
    summary = ingest(con, [folder])
    assert_balanced(summary)
    assert quarantine(con) == []
    for schema in LOADED:
        assert rows(con, schema) == reference[schema], schema


def test_a_parent_symbol_with_nothing_to_resolve_it_says_what_to_request(con, glbx, tmp_path):
    folder = batch_folder(tmp_path, glbx, symbology=False)
    [f] = transcode(glbx, folder, "json", pretty=True, layout="range", schemas=("ohlcv-1h",))
    recs = [json.loads(line) for line in f.read_text().splitlines()]
    for r in recs:
        r["symbol"] = "ES.FUT"
    f.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    summary = ingest(con, [folder])
    assert_balanced(summary)
    got = quarantine(con)
    assert len(got) == len(recs) and {rule for *_, rule, _ in got} == {"unmapped_symbol"}
    assert "carries only the requested parent/continuous symbol ES.FUT (include the definition schema" in got[0][3]


def test_records_of_another_dataset_never_land(con, glbx, tmp_path):
    """publisher_id 2 is XNAS.ITCH (Nasdaq equities): its bars and definitions are quarantined as
    wrong_dataset, so an instrument id other venues reuse can never put their prices under a CME symbol."""
    folder = batch_folder(tmp_path, glbx)  # the other bars resolve through symbology.json
    for schema in ("ohlcv-1h", "definition"):
        recs = [json.loads(line) for line in raw_json_lines(glbx, schema)]
        recs[0]["hd"]["publisher_id"] = 2
        (folder / f"glbx-mdp3-20201228.{schema}.json").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    summary = ingest(con, [folder])
    assert_balanced(summary)
    got = {(Path(f).name.split(".")[1], n): (rule, reason) for f, n, rule, reason in quarantine(con)}
    assert set(got) == {("ohlcv-1h", 1), ("definition", 1)}
    for rule, reason in got.values():
        assert rule == "wrong_dataset" and "publisher_id 2 (XNAS.ITCH) is not GLBX.MDP3" in reason
    assert con.execute("SELECT count(*) FROM market_data.databento_futures_ohlcv_1h").fetchone()[0] == len(raw_json_lines(glbx, "ohlcv-1h")) - 1


def test_empty_ranges_are_empty_not_errors(con, glbx, tmp_path):
    """What Databento writes for a range with no data: a 0-byte JSON file, a header-only CSV, a DBN file
    with its metadata header and no records. Each is recorded as `empty` with the reason; nothing fails."""
    folder = batch_folder(tmp_path, glbx)
    (folder / "glbx-mdp3-20201226.ohlcv-1h.json").write_bytes(b"")
    header = transcode(glbx, tmp_path / "csv", "csv", False, "range", schemas=("ohlcv-1h",))[0].read_text().splitlines()[0]
    (folder / "glbx-mdp3-20201226.ohlcv-1h.csv").write_text(header + "\n")
    raw = zstandard.ZstdDecompressor().stream_reader((glbx / "test_data.ohlcv-1d.dbn.zst").open("rb")).read()
    header_len = 8 + int.from_bytes(raw[4:8], "little")  # b"DBN" + version, u32 length, metadata
    (folder / "glbx-mdp3-20201226.ohlcv-1d.dbn").write_bytes(raw[:header_len])
    summary = ingest(con, [folder])
    assert_balanced(summary)
    files = {Path(p).name: c for p, c in summary["files"].items()}
    assert {n: (c["status"], c["rows_read"]) for n, c in files.items()} == {
        "glbx-mdp3-20201226.ohlcv-1h.json": ("empty", 0),
        "glbx-mdp3-20201226.ohlcv-1h.csv": ("empty", 0),
        "glbx-mdp3-20201226.ohlcv-1d.dbn": ("empty", 0),
    }
    assert all("empty range" in c["error"] for c in files.values())
    assert quarantine(con) == []


def test_a_definition_with_undef_ts_event_loads_the_same_from_every_encoding(con, glbx, tmp_path):
    """UNDEF ts_event: raw JSON writes the sentinel, pretty JSON writes null; both are the real record."""
    rec = json.loads(raw_json_lines(glbx, "definition")[0])
    rec["hd"]["ts_event"] = "18446744073709551615"
    pretty = json.loads(pretty_json_lines(glbx, "definition")[0])
    pretty["hd"]["ts_event"] = None
    got = []
    for name, r in (("raw", rec), ("pretty", pretty)):
        folder = batch_folder(tmp_path / name, glbx)
        (folder / "glbx-mdp3-20201228.definition.json").write_text(json.dumps(r) + "\n")
        summary = ingest(con, [folder])
        assert_balanced(summary)
        got.append(summary["totals"])
    assert quarantine(con) == []
    # the second is a duplicate of the first: the same instrument, the same content
    assert got[0]["rows_loaded"] == 1 and got[1]["rows_duplicate"] == 1
