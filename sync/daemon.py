"""`cbi daemon`: `cbi run`'s cycle (inbox -> ingest + gate -> features -> training -> push -> pull) + heartbeat, in a loop.

* Single instance: a file lock `<home>/daemon.lock` (released when the process dies).
* SIGTERM/SIGINT: the current step finishes, then the loop exits (exit code 0).
* Offline / 429 / 5xx / timeouts: each call already retries with capped backoff
  (sync.retry); a cycle that still fails leaves its batches pending (status 'validated')
  and the next cycle waits min(cap, interval * 2^(failures-1)).
* The warehouse is opened per cycle and closed while sleeping, so `cbi` commands and the
  TUI can use it between cycles; a cycle that finds it held by another process is skipped
  (and backed off), never a crash.
* Inbox: CBI_INBOX (a folder). Its top-level entries are ingested with
  `cbi_local.pipeline.ingest_paths` whenever their names, sizes or mtimes change (ingest itself
  skips files already loaded, by sha256).
* `--fetch fred` (off by default): every `--fetch-every` hours (the first cycle always) the FRED
  series the warehouse holds are refreshed into `<inbox>/fred/` before the inbox is read
  (cbi_local/fetch/fred.py; FRED_API_KEY), so the same cycle ingests what changed. FRED costs
  nothing; a Databento fetch (which does) is not run by the daemon. A failed fetch fails the cycle's
  result (heartbeat `error`, backoff) but not its other steps.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cbi_local.config import Settings, current
from cbi_local.warehouse import transaction

from .journal import now, redact, sync_lock

INBOX_ENV = "CBI_INBOX"
DEFAULT_INTERVAL = 300
DEFAULT_FETCH_EVERY = 6 * 3600  # FRED publishes daily at most; four looks a day catch a release within hours
FETCHERS = ("fred",)  # what `--fetch` may name (a Databento fetch spends money: never the daemon's)
LAUNCHD_LABEL = "com.cbi-local.daemon"


def inbox_dir(settings: Settings, override: Path | None = None) -> Path | None:
    if override is not None:
        return override
    value = getattr(settings, "inbox", None) or os.environ.get(INBOX_ENV)
    return Path(value).expanduser().resolve() if value else None


def _signature(inbox: Path) -> tuple:
    entries = []
    for p in sorted(inbox.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not f.name.startswith("."):
                    st = f.stat()
                    entries.append((str(f), st.st_size, st.st_mtime_ns))
        elif p.is_file():
            st = p.stat()
            entries.append((str(p), st.st_size, st.st_mtime_ns))
    return tuple(entries)


@dataclass
class CycleResult:
    ok: bool = True
    offline: bool = False
    ingested: dict[str, Any] | None = None
    pushed: list[str] = field(default_factory=list)
    pulled: dict[str, list[str]] = field(default_factory=dict)
    fetched: dict[str, Any] | None = None  # `--fetch fred`: series rewritten / unchanged this cycle
    error: str | None = None

    def message(self) -> str:
        parts = []
        if self.fetched:
            parts.append(f"fetched FRED: {len(self.fetched['written'])} series changed, {len(self.fetched['unchanged'])} unchanged")
        if self.ingested:
            parts.append(f"ingested batch {self.ingested.get('batch_id')}")
        parts.append(f"pushed {len(self.pushed)} batches")
        pulled = sum(len(v) for v in self.pulled.values())
        parts.append(f"pulled {pulled} partitions")
        return "; ".join(parts)


class Daemon:
    def __init__(self, settings: Settings, interval: float = DEFAULT_INTERVAL, inbox: Path | None = None, client_factory=None,
                 fetch: tuple[str, ...] = (), fetch_every: float = DEFAULT_FETCH_EVERY) -> None:
        self.settings = settings
        self.fetch, self.fetch_every = tuple(fetch), fetch_every
        self._last_fetch: float | None = None  # monotonic time of the last successful fetch
        self.interval = interval
        self.inbox = inbox_dir(settings, inbox)
        self.stop = threading.Event()
        self.cycles = 0
        self.failures = 0
        self.started_at = now()
        self._last_signature: tuple | None = None
        self._client = None
        self._client_factory = client_factory

    # -- signals --------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        def handler(signum, _frame):
            self.stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def client(self):
        if self._client is None:
            if self._client_factory is not None:
                self._client = self._client_factory()
            else:
                from sync.bigquery.client import make_client

                self._client = make_client(self.settings)
        return self._client

    # -- one cycle ------------------------------------------------------------------------
    def cycle(self) -> CycleResult:
        """One cycle: `cbi run`'s CYCLE steps (ingest -> features -> training -> push -> pull)."""
        from cbi_local import job, warehouse
        from cbi_local.run import cycle_steps, inbox_inputs

        result = CycleResult()
        fetch_error = self.fetch_step(result)  # before the write connection: the download holds no lock
        try:
            con = warehouse.connect(self.settings.warehouse_path)
        except warehouse.WarehouseError as exc:
            # Another process (a long `cbi run`, a stuck shell) holds the file: skip this cycle and
            # back off; there is no connection to write a heartbeat with.
            self.cycles += 1
            return CycleResult(ok=False, error=redact(f"warehouse busy, cycle skipped: {exc}"))
        with contextlib.closing(con):
            ctx = job.JobContext(settings=self.settings, con=con, bq_factory=self.client)
            sig = None
            try:
                if self.inbox and self.inbox.is_dir():
                    sig = _signature(self.inbox)
                    if sig and sig != self._last_signature:
                        ctx.inputs = inbox_inputs(self.inbox)
                job.run_steps(ctx, cycle_steps(), should_stop=self.stop.is_set)
                steps = ctx.results
                ingest = steps.get("ingest", {})
                if ingest.get("batch_id"):
                    result.ingested = {"batch_id": ingest["batch_id"], "ok": ingest["ok"], "status": ingest["status"]}
                if sig and "ingest" in steps and ingest.get("error") is None:
                    self._last_signature = sig
                result.pushed = list(steps.get("push", {}).get("pushed_ids", []))
                result.pulled = dict(steps.get("pull", {}).get("partitions", {}))
                if ctx.error is not None:
                    exc = ctx.error
                    result.ok = False
                    result.offline = job.is_offline(exc)
                    result.error = redact(str(exc) if isinstance(exc, job.StepFailed) else f"{type(exc).__name__}: {exc}")
                if fetch_error:
                    result.ok = False
                    result.error = "; ".join(e for e in (fetch_error, result.error) if e)
            finally:
                self.cycles += 1
                self.heartbeat(con, result)
        return result

    def fetch_step(self, result: CycleResult) -> str | None:
        """`--fetch fred`, when due (every `fetch_every` seconds; the first cycle always): the series
        refreshed into <inbox>/fred/, before the inbox is read, so this cycle ingests what changed.
        The series list is read on a short read-only connection, closed before the download.
        Returns the error to report (the cycle goes on: FRED being down stops nothing else)."""
        if "fred" not in self.fetch or self.inbox is None:
            return None
        if self._last_fetch is not None and time.monotonic() - self._last_fetch < self.fetch_every:
            return None
        from cbi_local import warehouse
        from cbi_local.fetch.fred import FetchError, refresh, series_to_refresh

        try:
            with warehouse.open_warehouse(self.settings.warehouse_path, read_only=True) as ro:
                series = series_to_refresh(ro)
        except warehouse.WarehouseError:
            return None  # held by a writer: this cycle is skipped as busy anyway; the next one fetches
        try:
            got = refresh(self.settings, self.inbox, series)
        except FetchError as exc:  # its text never holds the key (cbi_local/fetch/fred.py)
            return f"fetch fred: {exc}"
        self._last_fetch = time.monotonic()
        result.fetched = {"written": got.written, "unchanged": got.unchanged}
        return None

    def heartbeat(self, con, result: CycleResult) -> None:
        host, pid = socket.gethostname(), os.getpid()
        status = "ok" if result.ok else ("offline" if result.offline else "error")
        with transaction(con):
            con.execute("DELETE FROM ops.daemon_heartbeat WHERE hostname = ? AND process_id = ?", [host, pid])
            con.execute(
                "INSERT INTO ops.daemon_heartbeat (hostname, process_id, started_at, heartbeat_at, cycle_count, status, message, error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [host, pid, self.started_at, now(), self.cycles, status, result.message(), result.error],
            )

    def next_wait(self, result: CycleResult) -> float:
        if result.ok:
            self.failures = 0
            return self.interval
        self.failures += 1
        return min(current().daemon_backoff_cap, self.interval * 2 ** (self.failures - 1))

    # -- the loop -------------------------------------------------------------------------
    def run(self, max_cycles: int | None = None, log=None) -> int:
        """Cycle until stopped; the exit code. A bounded run (`--cycles N`, a script's or a test's) exits 1
        when any of its cycles failed; a service stopped by SIGTERM/SIGINT exits 0 (a clean stop: launchd and
        systemd restart only a failed process), its failures being in the log and the heartbeat."""
        say = log or (lambda m: print(m, file=sys.stderr, flush=True))
        failed = 0
        with sync_lock(self.settings.home, "daemon"):
            say(f"cbi daemon: home {self.settings.home}, inbox {self.inbox or '(none: set CBI_INBOX)'}, every {self.interval:g}s")
            while not self.stop.is_set():
                result = self.cycle()
                failed += not result.ok
                wait = self.next_wait(result)
                say(f"cycle {self.cycles}: {'ok' if result.ok else 'FAILED'}: {result.message()}" + (f"; {result.error}" if result.error else "") + f"; next in {wait:g}s")
                if max_cycles is not None and self.cycles >= max_cycles:
                    break
                self.stop.wait(wait)
            say(f"cbi daemon: stopped after {self.cycles} cycles, {failed} failed")
        return 1 if failed and max_cycles is not None else 0


# --- service files ---------------------------------------------------------------------------

def _cbi_executable() -> str:
    exe = Path(sys.executable).parent / "cbi"
    return str(exe if exe.exists() else "cbi")


def service_env(settings: Settings, inbox: Path | None) -> dict[str, str]:
    """The settings a service must carry: a launchd/systemd job does not see the shell's exports.
    Never a secret: ADC is found in the user's home by the Google client itself, and
    GOOGLE_APPLICATION_CREDENTIALS, when set, is the *path* of a key file (its content is never read
    here); FRED_API_KEY is not written into the file (see the README: `launchctl setenv`)."""
    env = {"CBI_HOME": str(settings.home)}
    if inbox:
        env[INBOX_ENV] = str(inbox)
    for name, value in (("CBI_BQ_PROJECT", settings.bq_project), ("CBI_BQ_LOCATION", settings.bq_location),
                        ("CBI_GCS_BUCKET", settings.gcs_bucket), ("CBI_BQ_ENDPOINT", settings.bq_endpoint),
                        ("GOOGLE_APPLICATION_CREDENTIALS", os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"))):
        if value:
            env[name] = str(value)
    return env


def service_args(settings: Settings, interval: int, fetch: tuple[str, ...] = (), fetch_every: float | None = None) -> list[str]:
    """The service's command line: `cbi daemon --home ... --interval ... [--fetch ... --fetch-every ...]`."""
    args = [_cbi_executable(), "daemon", "--home", str(settings.home), "--interval", str(interval)]
    for f in fetch:
        args += ["--fetch", f]
    if fetch and fetch_every is not None:
        args += ["--fetch-every", f"{fetch_every:g}"]
    return args


def launchd_plist(settings: Settings, interval: int, inbox: Path | None, fetch: tuple[str, ...] = (),
                  fetch_every: float | None = None) -> str:
    from xml.sax.saxutils import escape

    env = service_env(settings, inbox)
    env_xml = "".join(f"\n      <key>{escape(k)}</key><string>{escape(v)}</string>" for k, v in env.items())
    log = settings.home / "daemon.log"
    args = service_args(settings, interval, fetch, fetch_every)
    args_xml = "".join(f"\n      <string>{escape(a)}</string>" for a in args)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
  <dict>
    <key>Label</key><string>{LAUNCHD_LABEL}</string>
    <key>ProgramArguments</key>
    <array>{args_xml}
    </array>
    <key>EnvironmentVariables</key>
    <dict>{env_xml}
    </dict>
    <key>RunAtLoad</key><true/>
    <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>
    <key>ThrottleInterval</key><integer>30</integer>
    <key>ProcessType</key><string>Background</string>
    <key>StandardOutPath</key><string>{escape(str(log))}</string>
    <key>StandardErrorPath</key><string>{escape(str(log))}</string>
  </dict>
</plist>
"""


def _systemd_quote(arg: str) -> str:
    """An ExecStart word: double-quoted (systemd's own quoting) when it holds a space, quote or backslash."""
    if not any(ch in arg for ch in ' \t"\\'):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_unit(settings: Settings, interval: int, inbox: Path | None, fetch: tuple[str, ...] = (),
                 fetch_every: float | None = None) -> str:
    env_lines = "\n".join(f'Environment="{k}={v}"' for k, v in service_env(settings, inbox).items())
    exec_start = " ".join(_systemd_quote(a) for a in service_args(settings, interval, fetch, fetch_every))
    return f"""[Unit]
Description=CBI Local daemon (inbox -> ingest -> push -> pull)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={exec_start}
{env_lines}
Restart=on-failure
RestartSec=30
KillSignal=SIGTERM
TimeoutStopSec=120

[Install]
WantedBy=default.target
"""


def service_paths() -> dict[str, Path]:
    return {
        "launchd": Path.home() / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist",
        "systemd": Path.home() / ".config" / "systemd" / "user" / "cbi-daemon.service",
    }
