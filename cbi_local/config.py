"""Settings: every `CBI_*` variable, from the environment, then `<home>/cbi.toml`, then defaults.

Precedence: an explicit `--home` > the environment (`CBI_<FIELD>`, e.g. CBI_BQ_PROJECT) > the home's
optional `cbi.toml` (the field names as keys, e.g. `bq_project = "my-project"`) > the defaults below.
The home itself comes from `--home` or CBI_HOME (cbi.toml lives in it, so it cannot move it).

BigQuery credentials are never settings here: BigQuery uses Google's usual mechanisms (ADC,
GOOGLE_APPLICATION_CREDENTIALS). The FRED API key is one (FRED_API_KEY), held as a SecretStr so
that printing the settings never shows it; only the FRED request itself reads its value.

Not settings (process switches, read where they act): CBI_DEBUG (set by `cbi --debug`), the test
hooks CBI_SYNC_FAULT / CBI_INGEST_FAULT (+ `_GATE`), and CBI_BQ_EMULATOR_VENV (where the local
emulator is installed, for tests and `cbi demo`).

`settings(home)` is what a command builds once; `current()` is the same for code without one at
hand (the retry bounds of every BigQuery call, the calendar cache), re-read when the environment
or the cbi.toml changes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

REPO_ROOT = Path(__file__).resolve().parent.parent
WAREHOUSE_FILE = "warehouse.duckdb"
TOML_FILE = "cbi.toml"
DEFAULT_HOME = Path.home() / ".cbi"

_toml_path: Path | None = None  # the cbi.toml the Settings() being built in _load reads (None otherwise)


class ConfigError(ValueError):
    """A setting with a value it cannot take (the message names the field, the variable and the file)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CBI_", extra="ignore")

    home: Path = Field(default=DEFAULT_HOME, description="Warehouse home (the user's is on the external drive).")
    sample_data: Path = Field(default=REPO_ROOT.parent / "shared" / "data", description="Real sample data for demo and tests.")
    bq_project: str = Field(default="cbi-v14", description="BigQuery project (system of record).")
    bq_location: str = Field(default="us-central1", description="BigQuery dataset location.")
    bq_endpoint: str | None = Field(default=None, description="API endpoint override (the local emulator).")
    bq_storage_endpoint: str | None = Field(default=None, description="host:port of an emulator's Storage Read API (gRPC); a real project uses Google's.")
    gcs_bucket: str | None = Field(default=None, description="Bucket for staging large batches as Parquet.")
    gcs_threshold_bytes: int = Field(default=64 * 1024 * 1024, ge=0, description="Staged Parquet above this size loads from gs:// (with gcs_bucket).")
    bq_max_partitions_per_job: int = Field(default=4000, ge=1, le=4000, description="Partitions one push job (load + MERGE) may touch (CBI_BQ_MAX_PARTITIONS_PER_JOB; BigQuery's limit, 4,000, is the most).")
    bq_max_bytes_billed: int = Field(default=10 * 1024**3, description="maximum_bytes_billed of every query job the sync runs (CBI_BQ_MAX_BYTES_BILLED; 0: no cap).")
    sync_call_deadline: float = Field(default=60.0, gt=0, description="Seconds one BigQuery/GCS call may take, retries inside it included.")
    sync_attempts: int = Field(default=4, ge=1, description="Attempts of a sync step before it is reported offline.")
    sync_backoff: float = Field(default=1.0, ge=0, description="First wait between attempts, seconds (doubling).")
    sync_backoff_cap: float = Field(default=60.0, ge=0, description="Longest wait between attempts, seconds.")
    private_owners: str = Field(default="", description="IAM members who see private rows (comma-separated, e.g. user:me@example.com).")
    public_readers: str = Field(default="", description="IAM members who read the public rows (comma-separated).")
    push_members: str = Field(default="", description="The identities that run `cbi sync push` (comma-separated; default: the credentials' service account).")
    inbox: Path | None = Field(default=None, description="Folder the daemon ingests from (CBI_INBOX).")
    daemon_backoff_cap: float = Field(default=3600.0, gt=0, description="Longest wait of the daemon after failed cycles, seconds.")
    calendar_cache: str | None = Field(default=None, description="Folder of the CME calendar cache (`off`: none; default ~/.cache/cbi/calendars).")
    fred_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("FRED_API_KEY", "CBI_FRED_API_KEY", "fred_api_key"),
                                           description="FRED API key for `cbi fetch fred` (FRED_API_KEY).")
    fred_endpoint: str = Field(default="https://api.stlouisfed.org", description="FRED API base URL (CBI_FRED_ENDPOINT).")
    roll_adjustment: Literal["none", "ratio"] = Field(
        default="none",
        description="Returns and targets of `cbi features build` (and `cbi run`) across the continuous series' recorded "
                    "rolls (CBI_ROLL_ADJUSTMENT): none (raw front-month closes, the default) or ratio (back-adjusted).",
    )

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if _toml_path is not None and _toml_path.is_file():
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=_toml_path),)
        return sources

    @property
    def warehouse_path(self) -> Path:
        return self.home / WAREHOUSE_FILE

    @staticmethod
    def members(value: str) -> list[str]:
        return [m.strip() for m in value.split(",") if m.strip()]


# The home of the command running in this process (set by settings()), so that an unexpected
# error's traceback can be logged under <home>/logs/.
current_home: Path | None = None


def _home_of(home: Path | str | None) -> Path:
    chosen = Path(home) if home is not None else Path(os.environ.get("CBI_HOME") or DEFAULT_HOME)
    return chosen.expanduser().resolve()


def _load(home: Path) -> Settings:
    global _toml_path
    toml = home / TOML_FILE
    _toml_path = toml  # read by this one Settings() only: a Settings built elsewhere never sees a stale file
    try:
        s = Settings()
    except ValidationError as exc:
        bad = "; ".join(f"{'.'.join(map(str, e['loc']))} (CBI_{str(e['loc'][0]).upper()}): {e['msg']}" for e in exc.errors())
        where = f" or {toml}" if toml.is_file() else ""
        raise ConfigError(f"settings from the environment{where}: {bad}") from None
    finally:
        _toml_path = None
    return s.model_copy(update={"home": home, "sample_data": s.sample_data.expanduser().resolve()})


def settings(home: Path | str | None = None) -> Settings:
    """Settings from the environment and <home>/cbi.toml; an explicit --home wins over CBI_HOME."""
    global current_home, _current
    chosen = _home_of(home)
    s = _load(chosen)  # a ConfigError leaves the process's current settings as they were
    current_home, _current = chosen, (_key(chosen), s)
    return s


_current: tuple[tuple, Settings] | None = None


def _key(home: Path) -> tuple:
    toml = home / TOML_FILE
    try:
        mtime = toml.stat().st_mtime_ns
    except OSError:
        mtime = None
    return home, mtime, tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("CBI_") or k == "FRED_API_KEY"))


def current() -> Settings:
    """This process's settings (those of the last settings() call's home, else CBI_HOME's), read
    again when a CBI_* variable or the cbi.toml changed since."""
    global _current
    home = current_home or _home_of(None)
    key = _key(home)
    if _current is None or _current[0] != key:
        _current = (key, _load(home))
    return _current[1]
