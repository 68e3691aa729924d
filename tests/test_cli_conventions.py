"""The CLI's conventions on the user's real path (issue 17): exit codes 0 ok / 1 problem found /
2 could not run, one line on stderr instead of a traceback, `--version`, `python -m cbi_local`,
one `--json` envelope, a closed pipe that is not a failure, an unmounted drive that creates
nothing, and a locked warehouse whose holder is named at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from cbi_local import __version__, warehouse
from cbi_local.cli import app

runner = CliRunner()
CBI = str(Path(sys.executable).parent / "cbi")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOOGLE_") and k not in ("CBI_BQ_ENDPOINT",)}
    env.update(extra)
    return env


def test_version_and_python_m():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and __version__ in res.stdout
    out = subprocess.run([sys.executable, "-m", "cbi_local", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"cbi {__version__}"


def test_a_home_on_an_unmounted_volume_exits_2_and_creates_nothing(tmp_path: Path):
    for home in ("/Volumes/NotMounted/cbi", "/nonexistent-volume/cbi", "/mnt/cbi-unplugged-drive/cbi"):
        for args in (["init"], ["run", "--no-push"]):
            res = runner.invoke(app, [*args, "--home", home], env=_env(CBI_INBOX=str(tmp_path)))
            assert res.exit_code == 2, (args, home, res.output)
            assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
            assert "nothing was created" in res.stderr and "Traceback" not in res.output
        assert not Path(home).parent.exists()
    assert "volume /Volumes/NotMounted is not mounted" in runner.invoke(app, ["init", "--home", "/Volumes/NotMounted/cbi"]).stderr
    # an ordinary new home below an existing folder is still created, parents included
    res = runner.invoke(app, ["init", "--home", str(tmp_path / "a" / "b")])
    assert res.exit_code == 0 and (tmp_path / "a" / "b" / "warehouse.duckdb").exists()


def test_audit_bigquery_without_credentials_exits_2(tmp_path: Path):
    warehouse.init(tmp_path / "warehouse.duckdb")
    out = subprocess.run([CBI, "audit", "--bigquery", "--home", str(tmp_path)], capture_output=True, text=True,
                         timeout=120, env=_env(GOOGLE_APPLICATION_CREDENTIALS=str(tmp_path / "missing-key.json"),
                                               HOME=str(tmp_path)))
    assert out.returncode == 2, out.stderr
    assert "cannot audit BigQuery" in out.stderr and "Traceback" not in out.stderr


def test_an_unexpected_error_is_one_line_and_exit_2_with_the_traceback_logged(tmp_path: Path):
    # A warehouse file that is not a DuckDB database (a crafted bad input): opening it raises inside
    # DuckDB; a command that reads it must not print a traceback.
    warehouse.init(tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("DROP VIEW IF EXISTS features.vw_daily_ml_flat")
        con.execute("DROP TABLE features.daily_ml_matrix")
        con.execute("CREATE TABLE features.daily_ml_matrix (x INTEGER)")  # a table that broke its contract
    out = subprocess.run([CBI, "features", "export", "--format", "parquet", "--home", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, env=_env())
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and "failed" in out.stderr and "--debug" in out.stderr
    assert "Traceback" in (tmp_path / "logs" / "cbi-errors.log").read_text()
    dbg = subprocess.run([CBI, "--debug", "features", "export", "--format", "parquet", "--home", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, env=_env())
    assert dbg.returncode == 2 and "Traceback" in dbg.stderr


def test_a_closed_pipe_is_not_a_failure(tmp_path: Path):
    warehouse.init(tmp_path / "warehouse.duckdb")
    out = subprocess.run(f"'{CBI}' tables --home '{tmp_path}' | head -1; echo \"rc=${{PIPESTATUS[0]}}\"",
                         shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=120, env=_env())
    assert out.stdout.strip().endswith(("rc=0", "rc=141")), out  # 141: SIGPIPE's default, as any Unix tool
    assert "Traceback" not in out.stderr and "error" not in out.stderr.lower()


def test_json_envelope_and_quarantine_selection_that_matches_nothing(tmp_path: Path):
    warehouse.init(tmp_path / "warehouse.duckdb")
    home = ["--home", str(tmp_path)]
    listed = json.loads(runner.invoke(app, ["quarantine", "list", *home, "--json"]).stdout)
    assert listed == {"ok": True, "items": []}
    tables = json.loads(runner.invoke(app, ["tables", *home, "--json"]).stdout)
    assert tables["ok"] is True and tables["datasets"]
    res = runner.invoke(app, ["quarantine", "release", "--rule", "no_such_rule", *home])
    assert res.exit_code == 1 and "nothing to release" in res.stderr and "batch None" not in res.output
    res = runner.invoke(app, ["quarantine", "release", "--rule", "no_such_rule", *home, "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["ok"] is False
    shown = runner.invoke(app, ["quarantine", "show", "x", *home])
    assert shown.exit_code == 2 and "KeyError" not in shown.output and not shown.stderr.startswith("error: '")


def test_a_locked_warehouse_names_its_holder_at_once(tmp_path: Path):
    path = tmp_path / "warehouse.duckdb"
    warehouse.init(path)
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); "
                               "print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        out = subprocess.Popen([CBI, "init", "--home", str(tmp_path)], stderr=subprocess.PIPE, text=True, env=_env())
        first = out.stderr.readline()
        assert time.monotonic() - t0 < 8  # said at once, not after the wait
        assert f"PID {holder.pid}" in first and "python" in first, first
        rest = out.stderr.read()
        assert out.wait(timeout=60) == 2 and f"held by PID {holder.pid}" in rest and "cbi init" not in rest.split("held by")[1]
    finally:
        holder.kill()


def test_a_locked_warehouse_says_what_its_holder_is_doing(tmp_path: Path):
    """The writer notes its current step beside the warehouse; a command refused by the lock says it."""
    path = tmp_path / "warehouse.duckdb"
    warehouse.init(path)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from cbi_local import warehouse; "
                               f"c = warehouse.connect(warehouse.Path({str(path)!r})); "
                               f"warehouse.note_activity(warehouse.Path({str(tmp_path)!r}), 'push (step 3 of 5)'); "
                               "print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        out = subprocess.run([CBI, "health", "--home", str(tmp_path)], capture_output=True, text=True, env=_env(),
                             timeout=120)
        assert out.returncode == 2
        assert f"PID {holder.pid}" in out.stderr and "doing: push (step 3 of 5) (for " in out.stderr, out.stderr
    finally:
        holder.kill()
