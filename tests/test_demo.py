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
    # Every input row accounted: Databento samples, FRED, the registry; then the legacy exports.
    ingest = steps["ingest"]
    assert ingest["read"] == ingest["loaded"] + ingest["quarantined"] + ingest["duplicate"] and ingest["loaded"] > 80_000
    legacy = steps["legacy migration"]
    assert (legacy["read"], legacy["loaded"] + legacy["quarantined"] + legacy["duplicate"]) == (89_413, 89_413)
    assert {"source_hierarchy", "canonical_symbol", "not_null", "not_single_timestamp", "no_placeholders",
            "daily_grain"} <= set(legacy["defects_by_rule"])
    assert steps["health"]["failed"] == 0
    # Rows per table and the quarantine by rule, as the summary prints them.
    tables = steps["tables"]
    assert tables["rows_by_table"]["regimes.regime_calendar"] == 10613
    assert tables["rows_by_table"]["raw_intelligence.fred_economic"] == 78_771  # the 11 FRED sample series
    assert tables["quarantined"] == ingest["quarantined"] + legacy["quarantined"] > 0
    assert all(n <= legacy["defects_by_rule"][rule] for rule, n in tables["quarantined_by_rule"].items())
    assert steps["features"]["yahoo_historical_rows"] > 6000 and steps["features"]["canonical_rows"] > 2000
    assert steps["training"]["models_trained"] == 20
    assert steps["training"]["as_of"] == "2025-11-04"  # the research matrix's last row with a real volume
    assert steps["bigquery layout"]["created_datasets"] == 12
    assert steps["push"]["batches_pushed"] >= 4 and steps["push"]["ok"]
    assert steps["parity"]["differ"] == 0 and steps["parity"]["equal"] == steps["parity"]["tables"] > 10
    assert steps["audit"]["drift"] == 0

    assert first["changed"] and first["changes"]["models_trained"] == 20

    second = _demo(tmp_path, sample_data)
    assert second["ok"]
    assert not second["changed"], second["changes"]  # idempotent, and the summary says so
    again = second["steps"]
    assert again["warehouse"]["created_tables"] == 0
    assert again["ingest"]["files"] == 0 and again["ingest"]["unchanged"] == ingest["files"]
    assert again["legacy migration"]["read"] == 0
    assert again["features"]["canonical_changed"] == again["features"]["yahoo_historical_changed"] == 0
    assert again["training"]["models_trained"] == 0
    assert (again["bigquery layout"]["created_datasets"], again["bigquery layout"]["created_tables"]) == (0, 0)
    assert (again["push"]["batches_pushed"], again["push"]["jobs"]) == (0, 0)
    assert again["parity"]["differ"] == 0


def test_demo_names_missing_sample_data(tmp_path: Path):
    cbi_bin = Path(sys.executable).parent / "cbi"
    env = {"CBI_SAMPLE_DATA": str(tmp_path / "nowhere"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([str(cbi_bin), "demo", "--home", str(tmp_path / "h")], capture_output=True, text=True, env=env)
    assert out.returncode == 2
    assert "CBI_SAMPLE_DATA" in out.stderr and "nowhere" in out.stderr
