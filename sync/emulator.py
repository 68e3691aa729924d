"""Local BigQuery / GCS API emulators for tests and ``cbi demo``.

The BigQuery emulator is ``local-bigquery`` (MIT), which needs Python 3.13 and
lives in its own venv (default ``<repo>/.venv-bqemu``, created by
``scripts/install-bq-emulator.sh``).  The GCS emulator is
``gcp-storage-emulator``, installed into the same venv.

Both are spoken to through the *real* ``google-cloud-*`` clients with
anonymous credentials; nothing here mocks the API.  Every server binds and is
contacted on 127.0.0.1 only.

Stdlib only at import time; the google client libraries are imported lazily by
``client()`` so that importing this module never pulls in heavy dependencies.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = REPO_ROOT / ".venv-bqemu"
VENV_ENV_VAR = "CBI_BQ_EMULATOR_VENV"
DEFAULT_PROJECT = "cbi-v14"
INSTALL_HINT = (
    "Install it with `bash scripts/install-bq-emulator.sh` (from the repo root; "
    f"needs Python 3.13), or point {VENV_ENV_VAR} at an existing emulator venv."
)

# Runs inside the emulator venv's Python.  It is `local-bigquery <argv>` plus a
# watchdog thread: when the process that launched it goes away (even by
# SIGKILL, from any thread), the emulator shuts itself down.
_WATCHDOG = r"""
import os, signal, sys, threading, time
parent = int(sys.argv[1])
def watch():
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
            os._exit(1)
threading.Thread(target=watch, daemon=True).start()
sys.argv = [sys.argv[2]] + sys.argv[3:]
"""
_BQ_MAIN = _WATCHDOG + "from local_bigquery.cli import main\nmain(sys.argv[1:])\n"
_GCS_MAIN = _WATCHDOG + (
    "from gcp_storage_emulator.__main__ import main\nsys.exit(main())\n"
)


class EmulatorNotInstalled(RuntimeError):
    """The emulator venv or executable is missing."""


class EmulatorStartError(RuntimeError):
    """The emulator process exited or did not answer in time."""


def emulator_venv(venv_dir: str | os.PathLike | None = None) -> Path:
    if venv_dir is None:
        venv_dir = os.environ.get(VENV_ENV_VAR) or DEFAULT_VENV
    return Path(venv_dir).expanduser().resolve()


def find_emulator(venv_dir: str | os.PathLike | None = None) -> Path:
    """Path of the ``local-bigquery`` executable in the emulator venv."""
    venv = emulator_venv(venv_dir)
    exe = venv / "bin" / "local-bigquery"
    if not exe.is_file() or not (venv / "bin" / "python").exists():
        raise EmulatorNotInstalled(
            f"BigQuery emulator not found: {exe} does not exist. {INSTALL_HINT}"
        )
    return exe


def find_storage_emulator(venv_dir: str | os.PathLike | None = None) -> Path:
    """Path of ``gcp-storage-emulator`` in the emulator venv."""
    venv = emulator_venv(venv_dir)
    exe = venv / "bin" / "gcp-storage-emulator"
    if not exe.is_file():
        raise EmulatorNotInstalled(
            f"GCS emulator not found: {exe} does not exist. {INSTALL_HINT}"
        )
    return exe


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no output captured)"
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


class _Server:
    """A subprocess serving HTTP on 127.0.0.1, polled until it answers."""

    name = "emulator"
    startup_timeout = 60.0
    stop_timeout = 10.0

    def __init__(self) -> None:
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None
        self._log_dir = Path(tempfile.mkdtemp(prefix=f"cbi-{self.name}-log-"))
        self.log_path = self._log_dir / "server.log"
        self._lock = threading.Lock()

    # -- subclasses ---------------------------------------------------------
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    def _probe_url(self) -> str:
        raise NotImplementedError

    # -- lifecycle ----------------------------------------------------------
    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{self.name} has not been started")
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> _Server:
        with self._lock:
            if self.running:
                return self
            if self.port is None:
                self.port = free_port()
            command = self._command()
            with open(self.log_path, "ab") as log:
                # command[4:] is the emulator's own CLI (after the watchdog)
                log.write(f"$ {' '.join(command[4:])}\n".encode())
                log.flush()
                self._proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self._env(),
                    start_new_session=True,  # no terminal Ctrl-C; we stop it
                )
            atexit.register(self.stop)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        started = time.monotonic()
        deadline = started + self.startup_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EmulatorStartError(
                    f"{self.name} exited with code {self._proc.returncode} "
                    f"during startup. Output ({self.log_path}):\n"
                    f"{_tail(self.log_path)}"
                )
            try:
                with urllib.request.urlopen(self._probe_url(), timeout=2) as resp:
                    if resp.status < 500:
                        self.startup_seconds = time.monotonic() - started
                        return
            except urllib.error.HTTPError as error:
                if error.code < 500:
                    self.startup_seconds = time.monotonic() - started
                    return
                last_error = error
            except (OSError, urllib.error.URLError) as error:
                last_error = error
            time.sleep(0.1)
        raise EmulatorStartError(
            f"{self.name} did not answer on {self.endpoint} within "
            f"{self.startup_timeout:.0f}s (last error: {last_error}). "
            f"Output ({self.log_path}):\n{_tail(self.log_path)}"
        )

    def stop(self) -> None:
        """Terminate (SIGTERM to its process group), then kill after a timeout."""
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is None:
                return
            atexit.unregister(self.stop)
            if proc.poll() is None:
                self._signal(proc, signal.SIGTERM)
                try:
                    proc.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    self._signal(proc, signal.SIGKILL)
                    proc.wait(self.stop_timeout)

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """Hard-kill the server (SIGKILL, no graceful shutdown)."""
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            self._signal(proc, signal.SIGKILL)
            proc.wait(self.stop_timeout)
        self.stop()

    def restart(self) -> _Server:
        """Stop, then start again on the same port (and same data)."""
        self.stop()
        return self.start()

    def output(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._log_dir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()  # the error message already carries the output tail
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class BigQueryEmulator(_Server):
    """``local-bigquery serve`` on 127.0.0.1, used with the real BigQuery client.

    Data lives in ``data_dir`` (a temp dir removed on ``close()`` by default);
    ``restart()`` reuses the same port and data dir, so data persists.
    """

    name = "bigquery-emulator"

    def __init__(
        self,
        project: str = DEFAULT_PROJECT,
        data_dir: str | os.PathLike | None = None,
        port: int | None = None,
        grpc_port: int | None = None,
        venv_dir: str | os.PathLike | None = None,
        storage_emulator_host: str | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.executable = find_emulator(venv_dir)
        super().__init__()
        self.project = project
        self.port = port
        self.grpc_port = grpc_port
        self.startup_timeout = startup_timeout
        self.storage_emulator_host = storage_emulator_host
        self._own_data_dir = data_dir is None
        self.data_dir = (
            Path(tempfile.mkdtemp(prefix="cbi-bqemu-data-"))
            if data_dir is None
            else Path(data_dir)
        )

    @property
    def python(self) -> Path:
        return self.executable.parent / "python"

    def _command(self) -> list[str]:
        if self.grpc_port is None:
            self.grpc_port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return [
            str(self.python), "-c", _BQ_MAIN, str(os.getpid()),
            str(self.executable), "serve",
            "--host", HOST,
            "--port", str(self.port),
            "--grpc-port", str(self.grpc_port),
            "--project", self.project,
            "--data-dir", str(self.data_dir),
        ]  # fmt: skip

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        # local-bigquery reads pydantic settings from the environment; never
        # let a caller's settings (e.g. a 0.0.0.0 host) leak into the server.
        for key in list(env):
            if key.upper() in {
                "BIGQUERY_HOST", "BIGQUERY_PORT", "GRPC_PORT", "DATA_DIR",
                "DEFAULT_PROJECT_ID", "GCS_LOCAL_ROOT", "STORAGE_EMULATOR_HOST",
                "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV",
            }:  # fmt: skip
                del env[key]
        if self.storage_emulator_host:
            env["STORAGE_EMULATOR_HOST"] = self.storage_emulator_host
        # DuckDB looks for its extensions under $HOME/.duckdb; the install script puts
        # them in the venv's own home so the caller's HOME does not matter.
        env["HOME"] = str(self.executable.parent.parent / "duckdb-home")
        return env

    def _probe_url(self) -> str:
        return f"{self.endpoint}/bigquery/v2/projects/{self.project}/datasets"

    def client(self, project: str | None = None):
        """A real ``google.cloud.bigquery.Client`` talking to this emulator."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=project or self.project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=self.endpoint),
        )

    def close(self) -> None:
        super().close()
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class StorageEmulator(_Server):
    """``gcp-storage-emulator start`` on 127.0.0.1 (in-memory by default).

    The google-cloud-storage client finds it through ``STORAGE_EMULATOR_HOST``;
    ``client()`` sets that variable in this process (see ``env``).
    """

    name = "gcs-emulator"

    def __init__(
        self,
        project: str = DEFAULT_PROJECT,
        port: int | None = None,
        venv_dir: str | os.PathLike | None = None,
        in_memory: bool = True,
        data_dir: str | os.PathLike | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.executable = find_storage_emulator(venv_dir)
        super().__init__()
        self.project = project
        self.port = port
        self.in_memory = in_memory
        self.startup_timeout = startup_timeout
        self._own_data_dir = data_dir is None
        self.data_dir = (
            Path(tempfile.mkdtemp(prefix="cbi-gcsemu-data-"))
            if data_dir is None
            else Path(data_dir)
        )

    @property
    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.endpoint}

    def _command(self) -> list[str]:
        command = [
            str(self.executable.parent / "python"), "-c", _GCS_MAIN,
            str(os.getpid()), str(self.executable),
            "--data-dir", str(self.data_dir), "start",
            "--host", HOST, "--port", str(self.port), "--quiet",
        ]  # fmt: skip
        if self.in_memory:
            command.append("--in-memory")
        return command

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "STORAGE_BASE"):
            env.pop(key, None)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return env

    def _probe_url(self) -> str:
        return f"{self.endpoint}/"

    def client(self, project: str | None = None):
        """A real ``google.cloud.storage.Client`` talking to this emulator.

        Sets ``STORAGE_EMULATOR_HOST`` in ``os.environ``: the storage client
        reads it for both API and upload/download URLs.
        """
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        os.environ.update(self.env)
        return storage.Client(
            project=project or self.project, credentials=AnonymousCredentials()
        )

    def close(self) -> None:
        super().close()
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
