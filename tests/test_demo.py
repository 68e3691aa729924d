"""The README's main job runs on the real sample data, twice, the second time changing nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import data_contracts as dc


def _demo(home: Path, sample_data: Path) -> dict:
    cbi_bin = Path(sys.executable).parent / "cbi"
    env = {"CBI_SAMPLE_DATA": str(sample_data), "PATH": "/usr/bin:/bin", "HOME": str(home)}
    out = subprocess.run(
        [str(cbi_bin), "demo", "--home", str(home), "--json"], capture_output=True, text=True, env=env, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_demo_runs_and_is_idempotent(tmp_path: Path, sample_data: Path):
    first = _demo(tmp_path, sample_data)
    assert first["ok"]
    steps = first["steps"]
    assert steps["warehouse"]["created_tables"] == len(dc.CONTRACTS)
    assert steps["bigquery layout"]["created_datasets"] == 12
    assert steps["audit"]["drift"] == 0
    second = _demo(tmp_path, sample_data)
    assert second["ok"]
    assert second["steps"]["warehouse"]["created_tables"] == 0
    assert second["steps"]["bigquery layout"] == {"created_datasets": 0, "created_tables": 0, "seconds": second["steps"]["bigquery layout"]["seconds"]}


def test_demo_names_missing_sample_data(tmp_path: Path):
    cbi_bin = Path(sys.executable).parent / "cbi"
    env = {"CBI_SAMPLE_DATA": str(tmp_path / "nowhere"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([str(cbi_bin), "demo", "--home", str(tmp_path / "h")], capture_output=True, text=True, env=env)
    assert out.returncode == 2
    assert "CBI_SAMPLE_DATA" in out.stderr and "nowhere" in out.stderr
