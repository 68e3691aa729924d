"""Crash tests of the ingest, like the push's: a `cbi ingest` / `cbi migrate-legacy` killed at every
step (the CBI_INGEST_FAULT hook) or at a random moment (a timed SIGKILL), then rerun, ends with
exactly the warehouse an uninterrupted run gives: rows and content of every table, file manifest,
quarantine, dedup log, health results and batches. A push after it makes BigQuery equal.

Inputs are the real samples; each run is a real `cbi` process, so the kill is a real SIGKILL.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import data_contracts as dc
from cbi_local import warehouse
from data_contracts.to_duckdb import quote, table_ref

CBI = str(Path(sys.executable).parent / "cbi")
# Columns a rerun cannot reproduce (ids, clocks; a health result's sample rows, which any two runs
# pick differently and which carry their ingested_at); batch ids inside texts are masked too. A
# freshness result's measured value is a clock reading as well (days from today to the newest row:
# the reference and a rerun after midnight differ by one), so it is masked for that rule alone.
VOLATILE = {"batch_id", "ingested_at", "quarantine_id", "quarantined_at", "resolved_at", "created_at", "conflict_id",
            "check_id", "checked_at", "sample_keys"}
BATCH_ID = r"(ingest|migrate|release)-[0-9]{8}T[0-9]{6}-[0-9a-f]{8}"
SNAPSHOT = [c for c in dc.CONTRACTS if c.fqn not in ("ops.batches", "ops.sync_log", "ops.daemon_heartbeat")]
CLOCK_READINGS = {"monitoring.health_checks": {"measured_value": "CASE WHEN rule = 'freshness' THEN NULL ELSE measured_value END"}}
LISTED = 1000  # a table this small is kept row by row, so a failing comparison shows the rows that differ


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CBI_", "GOOGLE_"))}
    env.update(NO_GCE_CHECK="True", **extra)
    return env


def cbi(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([CBI, *args, "--home", str(home)], capture_output=True, text=True, env=_env(**env), timeout=300)


def snapshot(home: Path) -> dict[str, object]:
    """Per table: row count and an order-free hash of its rows (volatile columns left out); the
    batches as (kind, status, counts), aside from those holding no rows: rolled back, or `empty`
    (a rerun after a kill that came once the batch had closed finds every file loaded)."""
    out: dict[str, object] = {}
    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        for c in SNAPSHOT:
            masked = CLOCK_READINGS.get(c.fqn, {})
            cols = [(quote(n), masked.get(n, quote(n))) for n in c.column_names if n not in VOLATILE]
            row = f"regexp_replace(CAST(to_json(struct_pack({', '.join(f'{x} := {e}' for x, e in cols)})) AS VARCHAR), '{BATCH_ID}', '<batch>', 'g')"
            n, h = con.execute(f"SELECT count(*), coalesce(sum(hash({row})), 0) FROM {table_ref(c)}").fetchone()
            rows = [r for (r,) in con.execute(f"SELECT {row} FROM {table_ref(c)} ORDER BY 1").fetchall()] if n <= LISTED else None
            out[c.fqn] = Rows(n, h, rows)
        out["batches"] = sorted(con.execute(
            "SELECT kind, status, rows_read, rows_loaded, rows_quarantined, rows_duplicate, list_sort(table_names) "
            "FROM ops.batches WHERE status NOT IN ('rolled_back', 'empty')"
        ).fetchall())
        out["open"] = con.execute("SELECT count(*) FROM ops.batches WHERE status = 'open'").fetchone()[0]
    return out


class Rows(tuple):
    """(count, hash) of a table, and for a small one its rows, so a diff can name them."""

    def __new__(cls, n: int, h: int, rows: list[str] | None):
        self = super().__new__(cls, (n, h))
        self.rows = rows
        return self


def diff(a: dict, b: dict) -> dict:
    """What differs, per key; for a listed table the rows only one side has."""
    out = {}
    for k in a:
        if a[k] == b.get(k):
            continue
        x, y = a[k], b.get(k)
        if isinstance(x, Rows) and isinstance(y, Rows) and x.rows is not None and y.rows is not None:
            only_a, only_b = sorted(set(x.rows) - set(y.rows)), sorted(set(y.rows) - set(x.rows))
            out[k] = {"counts": (x[0], y[0]), "only_in_reference": only_a[:5], "only_in_rerun": only_b[:5]}
        else:
            out[k] = (x, y)
    return out


def ingest_args(sample: Path) -> list[str]:
    return ["ingest", str(sample / "databento" / "GLBX.MDP3"), str(sample / "fred"), str(sample / "registry")]


def migrate_args(sample: Path) -> list[str]:
    return ["migrate-legacy", str(sample / "legacy_bq")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, sample_data: Path) -> dict[str, object]:
    """Uninterrupted runs: the ingest into a fresh warehouse, then the migration on top."""
    base = tmp_path_factory.mktemp("crash-reference")
    home = base / "home"
    assert cbi(home, "init").returncode == 0
    assert cbi(home, *ingest_args(sample_data)).returncode == 0
    after_ingest = snapshot(home)
    shutil.copytree(home, base / "ingested")
    first = cbi(home, *migrate_args(sample_data))
    assert first.returncode == 0, first.stderr[-2000:]
    return {"ingest": after_ingest, "migrate": snapshot(home), "ingested_home": base / "ingested"}


def _fresh(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    assert cbi(home, "init").returncode == 0
    return home


# Every step of the ingest where a kill can land (stage:n = after the n-th table's rows committed).
INGEST_FAULTS = ["open", "stage:1", "finish", "gate", "continuous", "close"]
MIGRATE_FAULTS = ["open", "stage:1", "stage:6", "finish", "gate", "continuous", "close"]  # 6 stages: the first and the last


@pytest.mark.parametrize("fault", INGEST_FAULTS)
def test_ingest_killed_at_each_step_then_rerun_is_exact(fault, reference, sample_data, tmp_path):
    home = _fresh(tmp_path)
    killed = cbi(home, *ingest_args(sample_data), CBI_INGEST_FAULT=f"after:{fault}")
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    rerun = cbi(home, *ingest_args(sample_data))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "rolled back 1 unfinished batch" in rerun.stderr
    got = snapshot(home)
    assert got["open"] == 0
    assert not diff(reference["ingest"], got)


@pytest.mark.parametrize("fault", MIGRATE_FAULTS)
def test_migration_killed_at_each_step_then_rerun_is_exact(fault, reference, sample_data, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(reference["ingested_home"], home)
    killed = cbi(home, *migrate_args(sample_data), CBI_INGEST_FAULT=f"after:{fault}")
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    rerun = cbi(home, *migrate_args(sample_data))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert not diff(reference["migrate"], snapshot(home))


def test_a_kill_after_the_close_committed_leaves_nothing_to_redo(reference, sample_data, tmp_path):
    """Killed once the batch is closed (the output not yet printed): the rerun finds every file
    loaded, rolls nothing back and changes nothing."""
    home = _fresh(tmp_path)
    env = {"CBI_INGEST_FAULT": "wait:close", "CBI_INGEST_FAULT_GATE": str(tmp_path / "gate")}
    proc = subprocess.Popen([CBI, *ingest_args(sample_data), "--home", str(home)], env=_env(**env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "gate").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        # Standing just before the close's COMMIT: a kill here loses the whole close, never half of it.
        proc.kill()
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    rerun = cbi(home, *ingest_args(sample_data), "--json")
    assert rerun.returncode == 0 and not diff(reference["ingest"], snapshot(home))
    again = cbi(home, *ingest_args(sample_data), "--json")
    report = json.loads(again.stdout)
    assert again.returncode == 0 and report["batch"]["totals"]["rows_read"] == 0
    assert "rolled back" not in again.stderr


@pytest.mark.parametrize("after", [1.5, 3.0])
def test_timed_kills_of_ingest_then_migration_end_as_an_uninterrupted_run(after, reference, sample_data, tmp_path):
    home = _fresh(tmp_path)
    for args in (ingest_args(sample_data), migrate_args(sample_data)):
        proc = subprocess.Popen([CBI, *args, "--home", str(home)], env=_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        rerun = cbi(home, *args)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert not diff(reference["migrate"], snapshot(home))


def test_after_a_killed_ingest_a_push_makes_bigquery_equal(reference, sample_data, tmp_path, bq_emulator):
    """The stranded-rows case of the issue: before, a killed ingest's rows sat in the tables under an
    open batch, the rerun counted them duplicates and `sync push` said "nothing to push"."""
    home = _fresh(tmp_path)
    killed = cbi(home, "ingest", str(sample_data / "fred"), CBI_INGEST_FAULT="after:stage")
    assert killed.returncode == -signal.SIGKILL
    rerun = cbi(home, "ingest", str(sample_data / "fred"), "--json")
    assert rerun.returncode == 0
    assert json.loads(rerun.stdout)["batch"]["totals"]["rows_loaded"] > 0  # loaded again, not "duplicates"
    bq = {"CBI_BQ_ENDPOINT": bq_emulator.endpoint, "CBI_BQ_PROJECT": "crash" + uuid.uuid4().hex[:10]}
    push = cbi(home, "sync", "push", **bq)
    assert push.returncode == 0, push.stderr[-2000:]
    parity = cbi(home, "sync", "diff", "--all", "--json", **bq)
    assert parity.returncode == 0, parity.stdout[-2000:]
