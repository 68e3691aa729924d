"""Settings from the environment (CBI_*) with sensible defaults.

BigQuery credentials are never settings here: BigQuery uses Google's usual mechanisms (ADC,
GOOGLE_APPLICATION_CREDENTIALS). The FRED API key is one (FRED_API_KEY), held as a SecretStr so
that printing the settings never shows it; only the FRED request itself reads its value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
WAREHOUSE_FILE = "warehouse.duckdb"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CBI_", extra="ignore")

    home: Path = Field(default=Path.home() / ".cbi", description="Warehouse home (the user's is on the external drive).")
    sample_data: Path = Field(default=REPO_ROOT.parent / "shared" / "data", description="Real sample data for demo and tests.")
    bq_project: str = Field(default="cbi-v14", description="BigQuery project (system of record).")
    bq_location: str = Field(default="us-central1", description="BigQuery dataset location.")
    bq_endpoint: str | None = Field(default=None, description="API endpoint override (the local emulator).")
    gcs_bucket: str | None = Field(default=None, description="Bucket for staging large batches as Parquet.")
    bq_max_partitions_per_job: int = Field(default=4000, ge=1, le=4000, description="Partitions one push job (load + MERGE) may touch (CBI_BQ_MAX_PARTITIONS_PER_JOB; BigQuery's limit, 4,000, is the most).")
    bq_max_bytes_billed: int = Field(default=10 * 1024**3, description="maximum_bytes_billed of every query job the sync runs (CBI_BQ_MAX_BYTES_BILLED; 0: no cap).")
    inbox: Path | None = Field(default=None, description="Folder the daemon ingests from (CBI_INBOX).")
    fred_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("FRED_API_KEY", "CBI_FRED_API_KEY"),
                                           description="FRED API key for `cbi fetch fred` (FRED_API_KEY).")
    fred_endpoint: str = Field(default="https://api.stlouisfed.org", description="FRED API base URL (CBI_FRED_ENDPOINT).")
    roll_adjustment: Literal["none", "ratio"] = Field(
        default="none",
        description="Returns and targets of `cbi features build` (and `cbi run`) across the continuous series' recorded "
                    "rolls (CBI_ROLL_ADJUSTMENT): none (raw front-month closes, the default) or ratio (back-adjusted).",
    )

    @property
    def warehouse_path(self) -> Path:
        return self.home / WAREHOUSE_FILE


# The home of the command running in this process (set by settings()), so that an unexpected
# error's traceback can be logged under <home>/logs/.
current_home: Path | None = None


def settings(home: Path | str | None = None) -> Settings:
    """Settings from the environment; an explicit --home wins over CBI_HOME."""
    global current_home
    s = Settings()
    chosen = Path(home) if home is not None else s.home
    current_home = chosen.expanduser().resolve()
    return s.model_copy(update={"home": current_home, "sample_data": s.sample_data.expanduser().resolve()})
