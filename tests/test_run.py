"""`cbi run`: the main job on a user's configuration (an inbox, a BigQuery project), twice.

The inbox holds copies of the real samples as a user's downloads would land; BigQuery is the
local emulator (CBI_BQ_ENDPOINT), reached through the real google-cloud-bigquery client.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from cbi_local import warehouse

CBI = str(Path(sys.executable).parent / "cbi")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CBI_", "GOOGLE_"))}
    env.update(HOME=str(tmp_path), NO_GCE_CHECK="True", **extra)  # no metadata-server probe (no network here)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([CBI, "run", *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture
def inbox(tmp_path: Path, sample_data: Path) -> Path:
    box = tmp_path / "inbox"
    for part in ("databento/GLBX.MDP3", "fred", "registry"):
        shutil.copytree(sample_data / part, box / Path(part).name)
    return box


def test_run_closes_the_loop_and_is_idempotent(tmp_path: Path, inbox: Path, bq_emulator):
    project = "run" + uuid.uuid4().hex[:10]
    env = _env(tmp_path, CBI_HOME=str(tmp_path / "home"), CBI_INBOX=str(inbox), CBI_BQ_PROJECT=project,
               CBI_BQ_ENDPOINT=bq_emulator.endpoint)
    out = _run(["--json"], env)
    assert out.returncode == 0, out.stderr[-3000:]
    first = json.loads(out.stdout)
    steps = first["steps"]
    assert first["ok"] and first["bigquery"] == project and len(first["inputs"]) == 3
    ingest = steps["ingest"]
    assert ingest["status"] == "validated" and ingest["read"] == ingest["loaded"] + ingest["quarantined"] + ingest["duplicate"]
    assert ingest["loaded"] > 80_000
    assert steps["health"]["failed"] == 0
    assert steps["features"]["symbols"] == ["ES"] and steps["features"]["changed"] > 0  # ES: the Databento sample
    # One session of ES cannot train (1 regime); that is reported, not a failure.
    assert steps["training"]["models_trained"] == 0 and "regime" in steps["training"]["skipped"]["ES"]
    assert steps["push"]["batches_pushed"] >= 2 and steps["push"]["ok"]
    assert steps["parity"]["differ"] == 0 and steps["parity"]["equal"] == steps["parity"]["tables"] > 10
    client = bq_emulator.client(project=project)
    try:
        rows = list(client.query(f"SELECT COUNT(*) FROM `{project}.raw_intelligence.fred_economic`").result())[0][0]
    finally:
        client.close()
    with warehouse.open_warehouse(tmp_path / "home" / "warehouse.duckdb", read_only=True) as con:
        assert rows == con.execute("SELECT count(*) FROM raw_intelligence.fred_economic").fetchall()[0][0] > 0

    again = _run(["--json"], env)
    assert again.returncode == 0, again.stderr[-3000:]
    second = json.loads(again.stdout)
    assert second["ok"] and not second["changed"], second["changes"]
    assert second["steps"]["ingest"]["unchanged"] == ingest["files"] and second["steps"]["push"]["jobs"] == 0
    assert "Nothing changed" in again.stderr
    # Parity covers what the run pushed: the second run pushed nothing, so it scanned nothing in BigQuery.
    assert second["steps"]["parity"]["tables"] == 0 and "nothing scanned" in second["steps"]["parity"]["note"]


def test_run_without_credentials_says_what_to_do(tmp_path: Path, inbox: Path):
    env = _env(tmp_path, CBI_HOME=str(tmp_path / "home"), CBI_BQ_PROJECT="no-such-project")
    out = _run([str(inbox / "fred")], env)
    assert out.returncode == 2
    assert "gcloud auth application-default login" in out.stdout + out.stderr
    assert "cbi run --no-push" in out.stderr  # the one command that has it
    # The local part ran before BigQuery was needed: the FRED rows are in the warehouse.
    with warehouse.open_warehouse(tmp_path / "home" / "warehouse.duckdb", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw_intelligence.fred_economic").fetchall()[0][0] > 0

    local = _run(["--no-push", "--no-train", "--json", str(inbox / "fred")], env)
    assert local.returncode == 0, local.stderr[-2000:]
    summary = json.loads(local.stdout)
    assert summary["bigquery"] is None and "push" not in summary["steps"] and "training" not in summary["steps"]
    assert summary["steps"]["ingest"]["files"] == 0  # already loaded by the first call


def test_run_names_a_missing_inbox(tmp_path: Path):
    out = _run([], _env(tmp_path, CBI_HOME=str(tmp_path / "home"), CBI_INBOX=str(tmp_path / "nowhere")))
    assert out.returncode == 2 and "nowhere" in out.stderr and "CBI_INBOX" in out.stderr
