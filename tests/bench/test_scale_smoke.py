"""bench/scale at a tiny size: the generated drive has the user's shape, and the bench runs end to end.

The drive is replicated from the real ES sample and is NOT market data: these tests check the
bench (its generator and its output), never that the product accepts replicated bars.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench._common import real_bars  # noqa: E402
from bench.scale.drive import NOT_REAL, Shape, add_new_day, generate  # noqa: E402
from cbi_local import calendars  # noqa: E402

TINY = 0.003  # ~12 ZL session dates, one MES range file


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("scale"), Shape.full().scaled(TINY))


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def symbology(folder: Path) -> dict[int, list[tuple[str, str, str]]]:
    doc = json.loads((folder / "symbology.json").read_text())
    out: dict[int, list] = {}
    for symbol, spans in doc["result"].items():
        for s in spans:
            out.setdefault(int(s["s"]), []).append((symbol, s["d0"], s["d1"]))
    return out


def test_drive_is_labelled_not_real_and_shaped_like_the_users(drive):
    assert all(NOT_REAL in f.name for f in drive.folders)
    zl = [f for f in drive.files_1h if "ZL1H" in f.parent.name]
    mes = [f for f in drive.files_1h if "MES1H" in f.parent.name]
    # ZL: one file per CME session date, ending on the drive's last date; MES: range files.
    names = [f.name for f in zl]
    assert all(re.fullmatch(r"glbx-mdp3-\d{8}\.ohlcv-1h\.json", n) for n in names)
    last = calendars.session_dates("ZL", "2025-11-01", "2025-11-18")[-1]
    assert names[-1] == f"glbx-mdp3-{last:%Y%m%d}.ohlcv-1h.json"
    assert all(re.fullmatch(r"glbx-mdp3-\d{8}-\d{8}\.ohlcv-1h\.json", f.name) for f in mes)
    assert [f.name for f in drive.files_1d] and re.fullmatch(r"glbx-mdp3-\d{8}-\d{8}\.ohlcv-1d\.json", drive.files_1d[0].name)
    assert drive.rows == sum(len(records(f)) for f in drive.files_1h + drive.files_1d)


def test_every_record_is_a_real_bar_with_a_mapped_id_and_spreads_outnumber_outrights(drive):
    real = {tuple(b[k] for k in ("open", "high", "low", "close")) for b in real_bars("ohlcv-1h")}
    for f in drive.files_1h:
        ids = symbology(f.parent)
        recs = records(f)
        assert {tuple(r[k] for k in ("open", "high", "low", "close")) for r in recs} <= real
        symbols = {i: next(s for s, _, _ in ids[i]) for i in {r["hd"]["instrument_id"] for r in recs}}
        assert all(symbols.values())
        for r in recs:  # each record's UTC date lies inside its id's symbology span (d1 exclusive)
            day = str(datetime.fromtimestamp(int(r["hd"]["ts_event"]) // 10**9, timezone.utc).date())
            assert any(d0 <= day < d1 for _, d0, d1 in ids[r["hd"]["instrument_id"]]), (f.name, r)
        kinds = Counter("-" in s for s in symbols.values())
        assert kinds[True] > kinds[False] > 0  # a parent-symbol request: more spreads than outrights


def test_daily_closes_vary_so_the_series_is_not_a_placeholder(drive):
    zl = [f for f in drive.files_1h if "ZL1H" in f.parent.name][:6]
    front = min(symbology(zl[0].parent))  # the first id handed out: the nearest outright
    closes = [[r["close"] for r in records(f) if r["hd"]["instrument_id"] == front][-1] for f in zl]
    assert len(set(closes)) > 1


def test_new_day_is_the_next_session_with_the_drives_ids(drive):
    before = dict(drive.last_session)
    files, rows = add_new_day(drive)
    assert len(files) == 2 and rows == sum(len(records(f)) for f in files)
    for f in files:
        root = "MES" if "MES1H" in f.parent.name else "ZL"
        nxt = calendars.session_dates(root, before[root] + timedelta(days=1), before[root] + timedelta(days=10))[0]
        assert f.name == f"glbx-mdp3-{nxt:%Y%m%d}.ohlcv-1h.json"
        old = symbology(drive.root / f"GLBX-20251118-{NOT_REAL}-{root}1H")
        new = symbology(f.parent)
        old_by_symbol = {s: i for i, spans in old.items() for s, _, _ in spans}
        assert all(old_by_symbol.get(s, i) == i for i, spans in new.items() for s, _, _ in spans)


def test_bench_runs_end_to_end_and_ends_with_the_scale_line():
    p = subprocess.run([sys.executable, str(REPO / "bench" / "scale" / "run.py"), "--fraction", str(TINY)],
                       capture_output=True, text=True, timeout=120)
    lines = p.stdout.strip().splitlines()
    assert p.returncode in (0, 1), p.stdout[-2000:] + p.stderr[-2000:]
    assert "NOT MARKET DATA" in p.stdout
    assert re.fullmatch(r"scale: ingest_vs_bare=[\d.]+ ingest_vs_dlt=[\d.]+ cycle_one_day_share=[\d.]+ .*", lines[-1]), lines[-1]
    assert "Traceback" not in p.stdout + p.stderr
