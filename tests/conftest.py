"""Shared fixtures: local BigQuery/GCS API emulators and the sample data."""

from __future__ import annotations

import os
from pathlib import Path

# pytest-xdist's workers inherit COLUMNS=80 and LINES=24; Rich freezes them when the CLI's Console is
# created (at import), so a test's own COLUMNS would be ignored. Without them Rich reads COLUMNS per
# call, as in a serial run and as a user's shell gives it.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)

import pytest  # noqa: E402

from sync.emulator import (
    BigQueryEmulator,
    EmulatorNotInstalled,
    StorageEmulator,
    find_emulator,
    find_storage_emulator,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def _require_emulators() -> None:
    """Fail (never skip) when the emulator venv is missing."""
    problem = None
    try:
        find_emulator()
        find_storage_emulator()
    except EmulatorNotInstalled as error:
        problem = str(error)
    if problem:
        pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def gcs_emulator():
    """One gcp-storage-emulator for the session (STORAGE_EMULATOR_HOST set)."""
    _require_emulators()
    with StorageEmulator() as emulator:
        previous = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ.update(emulator.env)
        try:
            yield emulator
        finally:
            if previous is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = previous


@pytest.fixture(scope="session")
def bq_emulator(gcs_emulator):
    """One local-bigquery emulator for the session; reads gs:// from gcs_emulator."""
    _require_emulators()
    with BigQueryEmulator(storage_emulator_host=gcs_emulator.endpoint) as emulator:
        yield emulator


@pytest.fixture
def bq_client(bq_emulator):
    """A real google.cloud.bigquery.Client pointed at the emulator."""
    client = bq_emulator.client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def sample_data() -> Path:
    path = Path(
        os.environ.get("CBI_SAMPLE_DATA") or REPO_ROOT.parent / "shared" / "data"
    ).resolve()
    if not path.is_dir():
        pytest.fail(
            f"sample data not found at {path}; set CBI_SAMPLE_DATA to the "
            "shared data directory",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def load_yahoo_zl_bridge(sample_data: Path):
    """load(con): the real legacy Yahoo ZL rows before 2010-06-06 (the bridge), one per date, into
    market_data.yahoo_historical, loaded directly (ingest proper is tested on its own)."""
    legacy = sample_data / "legacy_bq" / "forecasting_data_warehouse.soybean_oil_prices.parquet"

    def load(con) -> None:
        con.execute(
            f"""
            INSERT INTO market_data.yahoo_historical (date, symbol, open, high, low, close, volume, source, source_name, batch_id)
            SELECT CAST("time" AS DATE), 'ZL', open, high, low, close, volume, 'yahoo', source_name, 'b-real'
            FROM read_parquet('{legacy}')
            WHERE CAST("time" AS DATE) < DATE '2010-06-06'
            QUALIFY row_number() OVER (PARTITION BY CAST("time" AS DATE) ORDER BY "time") = 1
            """
        )

    return load


@pytest.fixture(scope="session")
def load_cftc_cot(sample_data: Path):
    """load(con): the real legacy CFTC export, one row per (contract, report date), into
    raw_intelligence.cftc_cot, loaded directly."""
    legacy = sample_data / "legacy_bq" / "forecasting_data_warehouse.cftc_cot.parquet"

    def load(con) -> None:
        con.execute(
            f"""
            INSERT INTO raw_intelligence.cftc_cot BY NAME
            SELECT report_date, contract_code, CAST(managed_money_long AS BIGINT) AS managed_money_long,
                   CAST(managed_money_short AS BIGINT) AS managed_money_short,
                   CAST(commercial_long AS BIGINT) AS commercial_long, CAST(commercial_short AS BIGINT) AS commercial_short,
                   CAST(open_interest AS BIGINT) AS open_interest, 'cftc' AS source
            FROM read_parquet('{legacy}')
            QUALIFY row_number() OVER (PARTITION BY contract_code, report_date) = 1
            """
        )

    return load
