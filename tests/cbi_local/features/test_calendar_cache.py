"""The CME calendar cache (cbi_local.calendars): whole years kept in memory and on disk, so the
features build does not rebuild 25 years of holiday rules on every run. A cached answer must be
exactly what the library gives for the requested range itself.

(Here because the cache exists for `cbi features build`; the calendar rules are tested in
tests/cbi_local/test_calendars.py.)
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cbi_local import calendars

REPO = Path(__file__).resolve().parents[3]
# Around year ends, holidays (MLK, Juneteenth, Christmas) and a DST change.
RANGES = [("1999-12-31", "2000-01-10"), ("2020-12-21", "2021-01-20"), ("2023-06-12", "2023-06-23"),
          ("2021-03-10", "2021-03-16")]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(calendars.CACHE_ENV, str(tmp_path / "cache"))
    calendars.clear_cache()
    yield tmp_path / "cache"
    calendars.clear_cache()


def _library(root: str, start: str, end: str) -> tuple[pa.Table, pa.Table]:
    """What the library gives for exactly [start, end] (no cache, no whole years)."""
    group = calendars.product_group(root).name
    return calendars._compute(group, dt.date.fromisoformat(start), dt.date.fromisoformat(end))


def _unlabelled(tbl: pa.Table) -> pa.Table:
    return tbl.drop_columns([c for c in ("root", "product_group") if c in tbl.column_names])


def test_cached_years_give_exactly_the_library_answer_for_any_range(cache_dir):
    calendars.sessions(calendars.roots(), "1999-06-01", "2024-12-31")  # a wide span first: later ranges are slices
    for start, end in RANGES:
        for group in calendars.GROUPS:
            root = group.roots[-1]
            want_s, want_i = _library(root, start, end)
            got_s, got_i = calendars.sessions(root, start, end), calendars.trading_intervals(root, start, end)
            assert _unlabelled(got_s).equals(want_s), (root, start, end)
            assert _unlabelled(got_i).equals(want_i), (root, start, end)
            assert set(got_s.column("root").to_pylist()) <= {root}


def test_a_new_process_reads_the_disk_cache_without_the_library(cache_dir, tmp_path):
    start, end = RANGES[1]
    calendars.sessions(calendars.roots(), start, end)
    assert sorted(p.name for p in cache_dir.glob("*/*.arrow"))  # written, under a fingerprint folder
    out = tmp_path / "fresh.parquet"
    code = (
        "import sys; from cbi_local import calendars; import pyarrow.parquet as pq; "
        f"pq.write_table(calendars.sessions(calendars.roots(), {start!r}, {end!r}), {str(out)!r}); "
        "print('pandas_market_calendars' in sys.modules)"
    )
    env = {"PATH": "/usr/bin:/bin", calendars.CACHE_ENV: str(cache_dir)}
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"  # answered from the cache: the library was never imported
    assert pq.read_table(out).equals(calendars.sessions(calendars.roots(), start, end))


def test_a_damaged_cache_file_is_recomputed_and_replaced(cache_dir):
    start, end = RANGES[2]
    want = calendars.sessions(["ZL", "ES"], start, end)
    damaged = sorted(cache_dir.glob("*/grains.sessions.arrow"))
    assert damaged
    damaged[0].write_bytes(b"not an arrow file")
    calendars.clear_cache()
    assert calendars.sessions(["ZL", "ES"], start, end).equals(want)
    calendars.clear_cache()
    assert calendars._disk_read("grains") is not None  # rewritten whole


def test_the_disk_cache_can_be_switched_off(monkeypatch, tmp_path):
    monkeypatch.setenv(calendars.CACHE_ENV, "off")
    calendars.clear_cache()
    assert calendars._cache_dir() is None
    start, end = RANGES[0]
    want_s, _ = _library("CL", start, end)
    assert _unlabelled(calendars.sessions("CL", start, end)).equals(want_s)
    calendars.clear_cache()


def test_a_new_version_prunes_other_versions_unused_for_a_week(cache_dir):
    """Each code/library version caches into its own folder; upgrades must not pile them up."""

    def version_dir(name: str, age_days: float) -> Path:
        d = cache_dir / name
        d.mkdir(parents=True)
        f = d / "grains.sessions.arrow"
        f.write_bytes(b"old version's cache")
        t = time.time() - age_days * 86_400
        os.utime(f, (t, t))
        return d

    stale = version_dir("0123456789abcdef", calendars.STALE_AFTER_DAYS + 1)
    recent = version_dir("fedcba9876543210", 1)  # maybe a daemon still running the old version
    other = version_dir("my-notes", 365)  # not a version folder: never ours to delete
    calendars.sessions("ZL", *RANGES[0])
    assert (cache_dir / calendars._fingerprint() / "grains.sessions.arrow").is_file()
    assert not stale.exists()
    assert recent.is_dir() and other.is_dir()
