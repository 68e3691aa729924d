"""Sync fixtures: warehouses holding the real samples, one BigQuery project per test.

Each test gets its own project in the session's emulator, so tests never see each
other's tables or jobs. Warehouses are ingested once per session from the real sample data
(`sample_data`) and copied per test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from cbi_local import pipeline, warehouse
from cbi_local.config import Settings, settings

REPO = Path(__file__).resolve().parents[2]
CALENDAR_DAYS = 10613  # 2000-01-01 to 2029-01-20, the sample registry's last specific regime day
CALENDAR_MONTHS = 349  # its monthly partitions


def ingest_registry(home: Path, registry_src: Path) -> Path:
    """A warehouse in `home` with the regime registry (copied next to it) ingested."""
    home.mkdir(parents=True, exist_ok=True)
    reg = home.parent / f"{home.name}-registry"
    if not reg.exists():
        shutil.copytree(registry_src, reg)
    warehouse.init(home / "warehouse.duckdb")
    with warehouse.open_warehouse(home / "warehouse.duckdb") as con:
        report = pipeline.ingest_paths(con, [reg])
    assert report["ok"], report
    return reg


@pytest.fixture(scope="session")
def sample_template(tmp_path_factory, sample_data) -> Path:
    """A warehouse with every sample ingested: Databento, FRED, the registry, the legacy exports."""
    base = tmp_path_factory.mktemp("sync-sample")
    home = base / "home"
    reg = ingest_registry(home, sample_data / "registry")
    with warehouse.open_warehouse(home / "warehouse.duckdb") as con:
        first = pipeline.ingest_paths(con, [sample_data / "databento" / "GLBX.MDP3", sample_data / "fred", reg])
        legacy = pipeline.migrate_legacy_dir(con, sample_data / "legacy_bq")
    assert first["ok"] and legacy["ok"]
    return home / "warehouse.duckdb"


@pytest.fixture(scope="session")
def registry_template(tmp_path_factory, sample_data) -> Path:
    """A warehouse with only the regime registry: weights and the 10,613-day calendar."""
    base = tmp_path_factory.mktemp("sync-registry")
    ingest_registry(base / "home", sample_data / "registry")
    return base / "home" / "warehouse.duckdb"


def copy_home(template: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, dest / "warehouse.duckdb")
    warehouse.init(dest / "warehouse.duckdb")
    return dest


@pytest.fixture(scope="module")
def sync_bq(gcs_emulator):
    """A BigQuery emulator per test module (reads gs:// from the session's GCS emulator): the
    emulator slows down as its catalog grows, so sync tests do not share the session's."""
    from sync.emulator import BigQueryEmulator

    with BigQueryEmulator(storage_emulator_host=gcs_emulator.endpoint) as emulator:
        yield emulator


@pytest.fixture
def project(sync_bq):
    """A fresh BigQuery project for the test; its datasets are deleted afterwards (the emulator
    slows down as its catalog grows)."""
    name = "t" + uuid.uuid4().hex[:12]
    yield name
    c = sync_bq.client(project=name)
    try:
        for ds in c.list_datasets():
            c.delete_dataset(ds.reference, delete_contents=True, not_found_ok=True)
    finally:
        c.close()


@pytest.fixture
def make_settings(sync_bq, project):
    def make(home: Path, endpoint: str | None = None) -> Settings:
        return settings(home).model_copy(update={"bq_endpoint": endpoint or sync_bq.endpoint, "bq_project": project})

    return make


@pytest.fixture
def client(sync_bq, project):
    c = sync_bq.client(project=project)
    yield c
    c.close()


def cli_env(s: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CBI_SYNC_")}
    env.update(
        CBI_HOME=str(s.home), CBI_BQ_ENDPOINT=str(s.bq_endpoint), CBI_BQ_PROJECT=s.bq_project,
        CBI_SYNC_ATTEMPTS="3", CBI_SYNC_BACKOFF="0.2", CBI_SYNC_BACKOFF_CAP="1", CBI_SYNC_CALL_DEADLINE="5",
    )  # fmt: skip
    env.update(extra)
    return env


def run_cli(s: Settings, *args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """`cbi <args>` in a fresh process (so it can be SIGKILLed by the fault hook)."""
    return subprocess.run(
        [sys.executable, "-c", "from cbi_local.cli import main; main()", *args, "--home", str(s.home)],
        cwd=REPO, env=cli_env(s, **env), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def count(client, table: str) -> int:
    """SELECT COUNT(*) in BigQuery; 0 when the table (or its dataset) does not exist."""
    from google.api_core.exceptions import NotFound

    try:
        return list(client.query(f"SELECT COUNT(*) AS n FROM `{client.project}.{table}`").result())[0][0]
    except NotFound:
        return 0


def local_count(home: Path, table: str) -> int:
    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


_RANGE = re.compile(r"DATE '(\d{4}-\d{2}-\d{2})' AND T\.`date` < DATE '(\d{4}-\d{2}-\d{2})'")


def merge_days(sql: str) -> int:
    """Days a MERGE's literal filter on `date` covers (parsed here, independently of sync code)."""
    import datetime as dt

    ranges = set(_RANGE.findall(sql))
    return sum((dt.date.fromisoformat(b) - dt.date.fromisoformat(a)).days for a, b in ranges)


def jobs_of(client, run_id: str) -> list:
    return [j for j in client.list_jobs(max_results=100000) if j.job_id.startswith(run_id + "_")]


def all_jobs(client) -> list:
    return list(client.list_jobs(max_results=100000))
