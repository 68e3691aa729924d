"""`cbi fetch fred`: refresh FRED series through the FRED API, written as the `date,value` CSVs
`cbi ingest` reads, into the inbox's `fred/` folder.

Protocol:
* Client: plain HTTPS with `requests` and urllib3's `Retry` (back-off on 429/5xx and connection
  errors, bounded). Not `fredapi`: it adds pandas round-trips and no retry, and the two endpoints
  used here are one GET each: `fred/series/observations` (every observation of a series, `.` for
  FRED's missing value) and `fred/series` (its frequency, for `metadata.csv`).
* Key: FRED_API_KEY (Settings.fred_api_key, a SecretStr). It travels only as a query parameter of
  the request (FRED takes it no other way) and never appears in output, logs or errors: every error
  is rebuilt from the status code and FRED's own message, without the URL, and urllib3's request
  log lines are masked while a fetch runs.
* Files: `<inbox>/fred/<SERIES>.csv` (header `date,value`, blank for missing) written to a temp
  file and renamed, so a killed fetch never leaves half a CSV; `metadata.csv` beside them is
  merged (series_id, freq). A series whose content did not change is not rewritten, so the ingest
  sees it unchanged; a revised series is rewritten whole and the ingest replaces its rows.
* Default series: those the warehouse already holds, else the ones named in the sample's
  `metadata.csv` that the features use (cbi_local.features.macro).
* Endpoint: https://api.stlouisfed.org, or CBI_FRED_ENDPOINT (the tests' replay server).
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULT_ENDPOINT = "https://api.stlouisfed.org"
TIMEOUT = (5, 60)  # connect, read seconds
METADATA = "metadata.csv"


class FetchError(RuntimeError):
    """The fetch could not run (no key, FRED refused or unreachable): exit 2. Never holds the key."""


@dataclass
class FredFetch:
    folder: Path
    written: list[str] = field(default_factory=list)  # series whose CSV changed
    unchanged: list[str] = field(default_factory=list)
    observations: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"folder": str(self.folder), "written": self.written, "unchanged": self.unchanged,
                "observations": self.observations}


class _RedactKey(logging.Filter):
    """urllib3 logs each request line, query string included, at DEBUG: the key is masked there too."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if self.key and self.key in text:
            record.msg, record.args = text.replace(self.key, "[redacted]"), ()
        return True


@contextlib.contextmanager
def _key_masked_in_logs(key: str) -> Iterator[None]:
    log, f = logging.getLogger("urllib3.connectionpool"), _RedactKey(key)
    log.addFilter(f)
    try:
        yield
    finally:
        log.removeFilter(f)


def session(attempts: int = 4) -> requests.Session:
    s = requests.Session()
    retry = Retry(total=attempts - 1, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=("GET",), raise_on_status=False)
    s.mount("https://", HTTPAdapter(max_retries=retry))
    s.mount("http://", HTTPAdapter(max_retries=retry))
    return s


def _get(http: requests.Session, endpoint: str, path: str, params: dict[str, str], key: str) -> dict:
    try:
        r = http.get(f"{endpoint.rstrip('/')}/fred/{path}", params={**params, "api_key": key, "file_type": "json"},
                     timeout=TIMEOUT)
    except requests.RequestException as exc:
        # The exception text carries the URL, and so the key: only its kind is said.
        raise FetchError(f"FRED unreachable at {endpoint} ({type(exc).__name__}); nothing was written") from None
    if r.status_code != 200:
        try:
            why = str(r.json().get("error_message") or "")
        except ValueError:
            why = ""
        why = why.replace(key, "[redacted]")[:300]
        if r.status_code in (400, 403) and "api_key" in why.lower():
            raise FetchError(f"FRED refused the API key (HTTP {r.status_code}): {why}; check FRED_API_KEY")
        raise FetchError(f"FRED answered HTTP {r.status_code} for {path} {params.get('series_id', '')}: {why or 'no message'}")
    return r.json()


def _csv_text(observations: list[dict]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["date", "value"])
    for o in observations:
        value = o.get("value")
        w.writerow([o["date"], "" if value in (None, ".") else value])
    return out.getvalue()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _merge_metadata(folder: Path, freqs: dict[str, str]) -> None:
    path = folder / METADATA
    rows: dict[str, dict[str, str]] = {}
    if path.is_file():
        with path.open(newline="") as fh:
            rows = {r["series_id"]: r for r in csv.DictReader(fh) if r.get("series_id")}
    for sid, freq in freqs.items():
        rows.setdefault(sid, {"series_id": sid})["freq"] = freq
    fields = ["series_id", "freq"] + sorted({k for r in rows.values() for k in r} - {"series_id", "freq"})
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for sid in sorted(rows):
        w.writerow({k: rows[sid].get(k, "") for k in fields})
    _write_atomic(path, out.getvalue())


def fetch_fred(series: list[str], folder: Path, key: str, endpoint: str = DEFAULT_ENDPOINT,
               http: requests.Session | None = None, progress=None) -> FredFetch:
    """Fetch every observation of each series into `folder`/<SERIES>.csv (see the module doc)."""
    if not key:
        raise FetchError("no FRED API key: set FRED_API_KEY (free at https://fred.stlouisfed.org/docs/api/api_key.html)")
    folder.mkdir(parents=True, exist_ok=True)
    http = http or session()
    say = progress or (lambda *_: None)
    with _key_masked_in_logs(key):
        return _fetch_all(series, folder, key, endpoint, http, say)


def _fetch_all(series: list[str], folder: Path, key: str, endpoint: str, http: requests.Session, say) -> FredFetch:
    result, freqs = FredFetch(folder), {}
    for i, sid in enumerate(series):
        say(f"fred {sid}", i, len(series))
        obs = _get(http, endpoint, "series/observations", {"series_id": sid}, key).get("observations") or []
        info = (_get(http, endpoint, "series", {"series_id": sid}, key).get("seriess") or [{}])[0]
        if info.get("frequency_short"):
            freqs[sid] = str(info["frequency_short"])
        text, path = _csv_text(obs), folder / f"{sid}.csv"
        result.observations[sid] = len(obs)
        if path.is_file() and path.read_text() == text:
            result.unchanged.append(sid)
            continue
        _write_atomic(path, text)
        result.written.append(sid)
    if freqs:
        _merge_metadata(folder, freqs)
    say("fred", len(series), len(series))
    return result


def series_to_refresh(con, series: list[str] | None = None) -> list[str]:
    """The series named (upper-cased), else those the warehouse holds, else the features' own."""
    if series:
        return [x.upper() for x in series]
    import data_contracts as dc
    from data_contracts.to_duckdb import table_ref

    from ..features.macro import SERIES_IDS

    held = [r[0] for r in con.execute(
        f"SELECT DISTINCT series_id FROM {table_ref(dc.get('raw_intelligence.fred_economic'))} ORDER BY 1").fetchall()]
    return held or list(SERIES_IDS)


def refresh(settings, inbox: Path, series: list[str], progress=None) -> FredFetch:
    """`cbi fetch fred` and the daemon's `--fetch fred`: `series` into <inbox>/fred/, with the key
    and endpoint of `settings` (FRED_API_KEY, CBI_FRED_ENDPOINT)."""
    key = settings.fred_api_key.get_secret_value() if settings.fred_api_key else ""
    return fetch_fred(series, inbox.expanduser() / "fred", key, settings.fred_endpoint, progress=progress)
