"""The daemon: inbox -> ingest -> push -> pull -> heartbeat; single instance; SIGTERM; offline."""

from __future__ import annotations

import json
import plistlib
import shutil
import signal
import subprocess
import sys
import time

from pydantic import SecretStr

from cbi_local import warehouse
from cbi_local.features.macro import SERIES_IDS
from sync.daemon import Daemon
from sync.emulator import free_port

from ..fred_replay import KEY, serving
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


def test_daemon_fetch_refreshes_fred_into_the_inbox_and_the_same_cycle_ingests_it(sample_data, tmp_path, make_settings, client):
    """`cbi daemon --fetch fred` against the FRED REPLAY SERVER (tests/fred_replay.py, real sample
    observations), not the FRED service."""
    s = _fresh(tmp_path, make_settings)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with serving(sample_data / "fred") as replay:
        s = s.model_copy(update={"fred_api_key": SecretStr(KEY), "fred_endpoint": replay.url})
        daemon = Daemon(s, interval=1, inbox=inbox, fetch=("fred",), fetch_every=3600)
        said: list[str] = []
        assert daemon.run(max_cycles=1, log=said.append) == 0, said
        fetched = sorted(p.stem for p in (inbox / "fred").glob("*.csv") if p.stem != "metadata")
        assert fetched == sorted(SERIES_IDS)  # an empty warehouse: the features' series
        for sid in fetched:  # the real observations, as FRED gives them
            assert (inbox / "fred" / f"{sid}.csv").read_text().splitlines() == (sample_data / "fred" / f"{sid}.csv").read_text().splitlines()
        with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
            held = {r[0] for r in con.execute("SELECT DISTINCT series_id FROM raw_intelligence.fred_economic").fetchall()}
            beat = con.execute("SELECT status, message FROM ops.daemon_heartbeat").fetchall()
        assert held == set(SERIES_IDS)  # ingested in the same cycle
        assert count(client, "raw_intelligence.fred_economic") == local_count(s.home, "raw_intelligence.fred_economic")
        assert beat[0][0] == "ok" and f"fetched FRED: {len(SERIES_IDS)} series changed" in beat[0][1]
        requests = len(replay.requests)
        # Not due again within --fetch-every: the next cycle asks FRED nothing.
        assert daemon.run(max_cycles=2, log=said.append) == 0
        assert len(replay.requests) == requests
        # Due again with FRED failing: the cycle says so (key never shown) and the rest still ran.
        daemon._last_fetch = None
        replay.fail_next = 1000
        assert daemon.run(max_cycles=3, log=said.append) == 1
    assert "fetch fred: FRED answered HTTP 500" in said[-2] and KEY not in "".join(said)


def test_daemon_fetch_refuses_what_it_cannot_do(tmp_path, make_settings):
    s = _fresh(tmp_path, make_settings)
    bad = run_cli(s, "daemon", "--fetch", "databento", "--cycles", "1", "--inbox", str(tmp_path))
    assert bad.returncode == 2 and "fetches only fred" in bad.stderr
    no_key = run_cli(s, "daemon", "--fetch", "fred", "--cycles", "1", "--inbox", str(tmp_path), FRED_API_KEY="")
    assert no_key.returncode == 2 and "needs FRED_API_KEY" in no_key.stderr


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
        [sys.executable, "-c", "from cbi_local.cli import main; main()", "daemon", "--interval", "600", "--inbox", str(inbox), "--home", str(s.home)],
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


def test_install_carries_fetch_the_key_file_path_and_quotes_paths_with_spaces(tmp_path, make_settings):
    """The user's drive is `/Volumes/My Drive`: a home with a space. GOOGLE_APPLICATION_CREDENTIALS (a
    key file's path, not a secret) travels in the file; FRED_API_KEY (a secret) never does."""
    s = make_settings(tmp_path / "My Drive" / "cbi")
    key_file = tmp_path / "keys" / "sa key.json"
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(key_file), "FRED_API_KEY": "fred-secret-0123456789abcdef0123"}
    args = ["daemon", "install", "--print", "--inbox", str(tmp_path / "In Box"), "--fetch", "fred", "--fetch-every", "12"]
    plist = run_cli(s, *args, **env)
    assert plist.returncode == 0, plist.stderr
    parsed = plistlib.loads(plist.stdout.encode())
    assert parsed["ProgramArguments"][1:] == ["daemon", "--home", str(s.home), "--interval", "300",
                                              "--fetch", "fred", "--fetch-every", "12"]
    assert parsed["EnvironmentVariables"]["GOOGLE_APPLICATION_CREDENTIALS"] == str(key_file)
    assert parsed["EnvironmentVariables"]["CBI_INBOX"] == str(tmp_path / "In Box")
    unit = run_cli(s, *args, "--kind", "systemd", **env)
    assert unit.returncode == 0, unit.stderr
    assert f'daemon --home "{s.home}" --interval 300 --fetch fred --fetch-every 12' in unit.stdout
    assert "fred-secret" not in plist.stdout + plist.stderr + unit.stdout + unit.stderr
    bad = run_cli(s, "daemon", "install", "--print", "--fetch", "databento")
    assert bad.returncode == 2 and "fetches only fred" in bad.stderr


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
