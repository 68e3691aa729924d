"""Settings: every CBI_* knob is a field, read from the environment, then <home>/cbi.toml, then defaults."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from cbi_local import config
from sync import retry

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _process_settings_restored(monkeypatch):
    """These tests point the process's settings at homes of their own: put them back afterwards."""
    monkeypatch.setattr(config, "current_home", config.current_home)
    monkeypatch.setattr(config, "_current", None)


def test_cbi_toml_in_the_home_sets_fields_and_the_environment_wins(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "cbi.toml").write_text('bq_project = "from-toml"\nbq_location = "US"\nsync_attempts = 7\nroll_adjustment = "ratio"\n')
    for var in ("CBI_BQ_PROJECT", "CBI_BQ_LOCATION", "CBI_SYNC_ATTEMPTS", "CBI_ROLL_ADJUSTMENT"):
        monkeypatch.delenv(var, raising=False)
    s = config.settings(home)
    assert (s.bq_project, s.bq_location, s.sync_attempts, s.roll_adjustment) == ("from-toml", "US", 7, "ratio")
    assert retry.attempts() == 7  # code without a Settings at hand reads the same (config.current())
    monkeypatch.setenv("CBI_SYNC_ATTEMPTS", "2")
    monkeypatch.setenv("CBI_BQ_PROJECT", "from-env")
    assert config.settings(home).bq_project == "from-env" and retry.attempts() == 2
    other = tmp_path / "other"
    other.mkdir()
    assert config.settings(other).bq_location == "us-central1"  # another home: its own (absent) cbi.toml


def test_a_bad_value_in_cbi_toml_is_refused_naming_the_field(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "cbi.toml").write_text("bq_max_partitions_per_job = 5000\n")  # above BigQuery's 4,000
    with pytest.raises(config.ConfigError, match=r"cbi\.toml: bq_max_partitions_per_job \(CBI_BQ_MAX_PARTITIONS_PER_JOB\): .*4000"):
        config.settings(home)
    # Only settings(home) reads a home's file: a Settings built directly afterwards never sees it.
    assert config.Settings(home=tmp_path).bq_max_partitions_per_job == 4000


def test_every_cbi_variable_read_in_the_code_is_a_setting_or_a_named_process_switch():
    fields = {f"CBI_{name.upper()}" for name in config.Settings.model_fields}
    switches = {"CBI_DEBUG", "CBI_SYNC_FAULT", "CBI_SYNC_FAULT_GATE", "CBI_INGEST_FAULT", "CBI_INGEST_FAULT_GATE", "CBI_BQ_EMULATOR_VENV"}
    doc = config.__doc__ or ""
    for name in switches - {"CBI_SYNC_FAULT_GATE", "CBI_INGEST_FAULT_GATE"}:
        assert name in doc, name
    seen = set()
    for pkg in ("cbi_local", "sync", "tui"):
        for path in (REPO / pkg).rglob("*.py"):
            seen |= set(re.findall(r'"(CBI_[A-Z_]+)"', path.read_text()))
    assert seen - fields - switches == set()
    readme = (REPO / "README.md").read_text()
    assert [f for f in sorted(fields) if f"`{f}`" not in readme] == []  # every setting documented


def test_a_bad_setting_exits_2_with_its_name_not_a_traceback(tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "CBI_SYNC_ATTEMPTS": "zero"}
    out = subprocess.run([sys.executable, "-m", "cbi_local", "tables", "--home", str(tmp_path)], cwd=REPO, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "CBI_SYNC_ATTEMPTS" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert "failed" not in out.stderr  # a setting the user gave, said as such (not as an unexpected error)
