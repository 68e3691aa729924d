"""The daemon: inbox -> ingest -> push -> pull -> heartbeat; single instance; SIGTERM; offline."""

from __future__ import annotations

import json
import plistlib
import shutil
import signal
import subprocess
import sys
import time

from cbi_local import warehouse
from sync.daemon import Daemon
from sync.emulator import free_port

from .conftest import REPO, cli_env, count, local_count, run_cli


def _fresh(tmp_path, make_settings, endpoint=None):
    home = tmp_path / "home"
    home.mkdir()
    warehouse.init(home / "warehouse.duckdb")
    return make_settings(home, endpoint=endpoint)


def test_one_cycle_ingests_the_inbox_and_pushes(sample_data, tmp_path, make_settings, client, monkeypatch):
    s = _fresh(tmp_path, make_settings)
    inbox = tmp_path / "inbox"
    shutil.copytree(sample_data / "fred", inbox / "fred")  # the user drops a FRED download in the inbox
    monkeypatch.setenv("CBI_INBOX", str(inbox))
    daemon = Daemon(s, interval=1)
    assert daemon.run(max_cycles=1, log=lambda m: None) == 0
    assert local_count(s.home, "raw_intelligence.fred_economic") > 0
    assert count(client, "raw_intelligence.fred_economic") == local_count(s.home, "raw_intelligence.fred_economic")
    status = json.loads(run_cli(s, "sync", "status", "--json").stdout)
    assert status["batches"]["pending"] == 0 and status["batches"]["pushed"] == 1
    assert status["daemon"]["cycles"] == 1 and status["daemon"]["status"] == "ok"
    # A second cycle with an unchanged inbox opens no batch.
    daemon.run(max_cycles=2, log=lambda m: None)
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ops.batches").fetchall()[0][0] == 1


def test_offline_keeps_batches_pending_and_backs_off(sample_data, tmp_path, make_settings, monkeypatch):
    s = _fresh(tmp_path, make_settings, endpoint=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    inbox = tmp_path / "inbox"
    shutil.copytree(sample_data / "registry", inbox / "registry")
    monkeypatch.setenv("CBI_SYNC_ATTEMPTS", "2")
    monkeypatch.setenv("CBI_SYNC_BACKOFF", "0.1")
    monkeypatch.setenv("CBI_SYNC_CALL_DEADLINE", "2")
    monkeypatch.setenv("CBI_DAEMON_BACKOFF_CAP", "35")
    daemon = Daemon(s, interval=10, inbox=inbox)
    first = daemon.cycle()
    assert not first.ok and first.offline and "unreachable" in first.error
    assert [daemon.next_wait(first), daemon.next_wait(first), daemon.next_wait(first)] == [10, 20, 35]
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        assert {r[0] for r in con.execute("SELECT status FROM ops.batches").fetchall()} == {"validated"}
        beat = con.execute("SELECT status, error FROM ops.daemon_heartbeat").fetchall()
    assert beat[0][0] == "offline" and "unreachable" in beat[0][1]
    assert daemon.next_wait(type(first)(ok=True)) == 10  # back to the interval once BigQuery answers
    # A bounded run (`cbi daemon --cycles N`, as a script runs it) whose cycle failed exits 1, and says so.
    said: list[str] = []
    assert Daemon(s, interval=10, inbox=inbox).run(max_cycles=1, log=said.append) == 1
    assert said[-1] == "cbi daemon: stopped after 1 cycles, 1 failed"


def test_sigterm_stops_cleanly_and_a_second_instance_is_refused(tmp_path, make_settings):
    s = _fresh(tmp_path, make_settings)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from sync.cli import main; main()", "daemon", "--interval", "600", "--inbox", str(inbox), "--home", str(s.home)],
        cwd=REPO, env=cli_env(s), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read()
            with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
                if con.execute("SELECT count(*) FROM ops.daemon_heartbeat").fetchall()[0][0]:
                    break
            assert time.monotonic() < deadline
            time.sleep(0.3)
        second = run_cli(s, "daemon", "--interval", "600", "--cycles", "1", timeout=60)
        assert second.returncode == 2 and "another" in second.stderr
        proc.send_signal(signal.SIGTERM)
        _, errtext = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "stopped" in errtext
    finally:
        if proc.poll() is None:
            proc.kill()


def test_install_print_emits_launchd_plist_and_systemd_unit(tmp_path, make_settings):
    s = make_settings(tmp_path / "home")
    plist = run_cli(s, "daemon", "install", "--print", "--interval", "120")
    assert plist.returncode == 0, plist.stderr
    parsed = plistlib.loads(plist.stdout.encode())
    assert parsed["Label"] == "com.cbi-local.daemon"
    args = parsed["ProgramArguments"]
    assert args[1:] == ["daemon", "--home", str(s.home), "--interval", "120"]
    assert parsed["EnvironmentVariables"]["CBI_HOME"] == str(s.home) and parsed["RunAtLoad"] is True
    # The service sees no shell exports: the project and location it syncs with travel in the file.
    assert parsed["EnvironmentVariables"]["CBI_BQ_PROJECT"] == s.bq_project
    assert parsed["EnvironmentVariables"]["CBI_BQ_LOCATION"] == s.bq_location
    unit = run_cli(s, "daemon", "install", "--print", "--kind", "systemd")
    assert unit.returncode == 0 and "ExecStart=" in unit.stdout and f"daemon --home {s.home}" in unit.stdout
    assert "[Install]" in unit.stdout and f'Environment="CBI_BQ_PROJECT={s.bq_project}"' in unit.stdout


def test_a_busy_warehouse_skips_the_cycle_instead_of_crashing(tmp_path, make_settings):
    """A long `cbi run` (another process) holds the DuckDB file: the cycle is skipped and backed off."""
    s = _fresh(tmp_path, make_settings)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "time.sleep(120)", str(s.warehouse_path)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        daemon = Daemon(s, interval=10)
        result = daemon.cycle()
        assert not result.ok and not result.offline and "warehouse busy" in result.error
        assert daemon.next_wait(result) == 10 and daemon.cycles == 1
    finally:
        holder.kill()
        holder.wait()
    assert daemon.cycle().ok  # the next cycle gets in
