"""`cbi ingest` / `cbi migrate-legacy` / `cbi build-continuous` end to end on the real sample data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cbi_local import warehouse
from cbi_local.cli import app

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    assert runner.invoke(app, ["init", "--home", str(tmp_path)]).exit_code == 0
    return tmp_path


def _json(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def test_migrate_legacy_reports_defects_and_keeps_yahoo_out_of_canonical_zl(home: Path, sample_data: Path):
    code, report = _json("migrate-legacy", str(sample_data / "legacy_bq"), "--home", str(home))
    assert code == 0, report
    assert report["batch"]["balanced"] and report["ok"]
    rules = set(report["defects_by_rule"])
    assert {"source_hierarchy", "canonical_symbol", "not_null", "not_single_timestamp", "no_placeholders", "daily_grain"} <= rules
    assert report["gate"]["failed"] == {}
    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        zl = con.execute(
            "SELECT min(date), max(date), COUNT(*) FILTER (WHERE source <> 'yahoo') FROM market_data.futures_continuous_1d WHERE root = 'ZL'"
        ).fetchall()[0]
        assert str(zl[0]).startswith("2000-11") and str(zl[1]) < "2010-06-06" and zl[2] == 0
        batch = con.execute("SELECT status, table_names FROM ops.batches WHERE batch_id = ?", [report["batch"]["batch_id"]]).fetchall()[0]
        assert batch[0] == "validated" and "market_data.futures_continuous_1d" in batch[1]
    code, again = _json("migrate-legacy", str(sample_data / "legacy_bq"), "--home", str(home))
    assert code == 0 and again["batch"]["status"] == "empty" and again["batch"]["totals"]["rows_read"] == 0


def test_ingest_fred_and_registry_then_nothing_on_rerun(home: Path, sample_data: Path):
    code, report = _json("ingest", str(sample_data / "fred"), str(sample_data / "registry"), "--home", str(home))
    assert code == 0, report
    assert set(report["kinds"]) == {"fred", "registry"}
    assert report["registry"][0]["calendar"] == ["2000-01-01", "2029-01-20", 10613]
    t = report["batch"]["totals"]
    assert t["rows_read"] == t["rows_loaded"] > 80_000
    code, again = _json("ingest", str(sample_data / "fred"), str(sample_data / "registry"), "--home", str(home))
    assert code == 0 and again["batch"]["status"] == "empty"


def test_a_batch_failing_the_health_gate_is_held_back_and_the_cli_says_so(home: Path, sample_data: Path, tmp_path: Path):
    # Crafted bad input: the real registry cut to two regimes. Every row is valid, so only the
    # batch-level gate can catch it: a training calendar needs at least 7 distinct regimes.
    regimes = yaml.safe_load((sample_data / "registry" / "regime_weights.yaml").read_text())["regimes"]
    registry = tmp_path / "registry"
    registry.mkdir()
    kept = {k: regimes[k] for k in ("covid_shock_2020", "baseline")}
    (registry / "regime_weights.yaml").write_text(yaml.safe_dump({"regimes": kept}))
    # Its calendar: 2000-01-01 to covid_shock_2020's end (the last specific regime), 7,671 days, + 2 weights.

    result = runner.invoke(app, ["ingest", str(registry), "--home", str(home)])
    assert result.exit_code == 1, result.output
    out = " ".join(result.stdout.split())
    # The report says what the warehouse now holds: the gate moved every loaded row to the quarantine.
    assert "(failed_validation)" in out and "rows read 7,673 = loaded 0 + quarantined 7,673" in out
    assert "✗ health gate failed" in out and "regimes.regime_calendar" in out and "min_distinct" in out
    assert "7,673 rows held back" in out
    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        batch = con.execute("SELECT status, rows_read, rows_loaded, rows_quarantined FROM ops.batches WHERE kind = 'ingest'").fetchall()
        manifest = con.execute("SELECT rows_read, rows_loaded, rows_quarantined FROM ops.file_manifest").fetchall()
        held = dict(con.execute("SELECT table_name || ':' || rule, COUNT(*) FROM monitoring.quarantine GROUP BY ALL").fetchall())
        left = [con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("regimes.regime_calendar", "regimes.regime_weights")]
    assert batch == [("failed_validation", 7673, 0, 7673)] and manifest == [(7673, 0, 7673)]
    # The weights passed every rule, but a batch is pushed whole or never: they are held back with it.
    assert held == {"regimes.regime_calendar:min_distinct": 7671, "regimes.regime_weights:batch_gate": 2}
    assert left == [0, 0]

    # Released without a fix, the rows pass their row rules, load, and the release batch meets
    # the same gate: everything goes back, and the counts still add up.
    result = runner.invoke(app, ["quarantine", "release", "--batch", batch_id(home), "--home", str(home)])
    assert result.exit_code == 1, result.output
    assert "loaded 0" in result.stdout and "quarantined again 7673" in result.stdout and "health gate failed" in result.stdout
    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        assert con.execute("SELECT rows_read, rows_loaded, rows_quarantined FROM ops.file_manifest").fetchall() == [(7673, 0, 7673)]
        assert con.execute("SELECT COUNT(*) FROM monitoring.quarantine WHERE status = 'held'").fetchone()[0] == 7673
        assert con.execute("SELECT COUNT(*) FROM regimes.regime_weights").fetchone()[0] == 0


def batch_id(home: Path) -> str:
    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        return con.execute("SELECT batch_id FROM ops.batches WHERE kind = 'ingest'").fetchone()[0]


def test_ingest_names_what_it_cannot_read(home: Path, sample_data: Path, tmp_path: Path):
    odd = tmp_path / "notes.txt"
    odd.write_text("hello\n")
    result = runner.invoke(app, ["ingest", str(odd), "--home", str(home)])
    assert result.exit_code == 2 and "not recognised" in result.output and "notes.txt" in result.output
    result = runner.invoke(app, ["ingest", str(sample_data / "legacy_bq"), "--home", str(home)])
    assert result.exit_code == 2 and "cbi migrate-legacy" in result.output


def test_the_summary_line_counts_files_by_what_happened_to_them(home: Path, sample_data: Path, tmp_path: Path):
    """A folder of one loadable file, one unreadable, one of a schema no table holds and a note: "1 files
    read, 1 error, 2 skipped", never "4 files loaded"."""
    import shutil

    glbx = sample_data / "databento" / "GLBX.MDP3"
    folder = tmp_path / "GLBX-20251118-TAAH7VN45V"
    folder.mkdir()
    shutil.copy(glbx / "test_data.ohlcv-1d.dbn.zst", folder / "glbx-mdp3-20201228.ohlcv-1d.dbn.zst")
    shutil.copy(glbx / "test_data.trades.dbn.zst", folder / "glbx-mdp3-20201228.trades.dbn.zst")
    (folder / "glbx-mdp3-20201229.ohlcv-1d.dbn.zst").write_bytes(b"DBN\x03 not really")
    (folder / "README.txt").write_text("ES daily bars, requested by hand")  # no data, but never passed over in silence
    result = runner.invoke(app, ["ingest", str(folder), "--home", str(home), "--json"])
    files = {Path(p).name: c for p, c in json.loads(result.stdout)["batch"]["files"].items()}
    assert files["README.txt"]["status"] == "skipped" and "not Databento data" in files["README.txt"]["error"]
    result = runner.invoke(app, ["ingest", str(folder), "--home", str(home)])
    assert result.exit_code == 1, result.output
    # The second run: the bad file is reported again (still in error), the others are unchanged.
    assert "0 files read, 1 error, 3 unchanged" in result.output


def test_a_file_in_error_stays_reported_until_it_is_forgotten(home: Path, sample_data: Path, tmp_path: Path):
    import shutil

    glbx = sample_data / "databento" / "GLBX.MDP3"
    folder = tmp_path / "GLBX-20251118-TAAH7VN45V"
    folder.mkdir()
    shutil.copy(glbx / "test_data.ohlcv-1d.dbn.zst", folder / "glbx-mdp3-20201228.ohlcv-1d.dbn.zst")
    whole = (glbx / "test_data.ohlcv-1h.dbn.zst").read_bytes()
    bad = folder / "glbx-mdp3-20201228.ohlcv-1h.dbn.zst"
    bad.write_bytes(whole[: len(whole) // 2])  # a download cut short
    for _ in range(2):  # reported again on the rerun, nothing fixed
        assert runner.invoke(app, ["ingest", str(folder), "--home", str(home)]).exit_code == 1
    health = runner.invoke(app, ["health", "--home", str(home), "--json"])
    listed = json.loads(health.stdout)["files_in_error"]
    assert health.exit_code == 1 and [f["path"] for f in listed] == [str(bad.resolve())]
    text = runner.invoke(app, ["health", "--home", str(home)]).output
    assert "1 files in error" in text and "cbi ingest --forget FILE" in text

    forgot = runner.invoke(app, ["ingest", "--forget", str(bad), "--home", str(home), "--json"])
    assert forgot.exit_code == 0 and json.loads(forgot.stdout)["forgotten"] == [str(bad.resolve())]
    again = runner.invoke(app, ["ingest", str(folder), "--home", str(home)])
    assert again.exit_code == 0 and "2 unchanged" in again.output
    assert json.loads(runner.invoke(app, ["health", "--home", str(home), "--json"]).stdout)["files_in_error"] == []
    # Only a file in error can be forgotten; asking for another says so and exits 1.
    other = runner.invoke(app, ["ingest", "--forget", str(folder / "glbx-mdp3-20201228.ohlcv-1d.dbn.zst"), "--home", str(home)])
    assert other.exit_code == 1 and "not a file in error" in other.output
    # Once the file changes (downloaded again, whole), it is read as any changed file.
    bad.write_bytes(whole)
    fixed = runner.invoke(app, ["ingest", str(folder), "--home", str(home), "--json"])
    assert fixed.exit_code == 0 and json.loads(fixed.stdout)["batch"]["totals"]["rows_loaded"] > 0


def test_a_file_whose_every_row_is_quarantined_is_a_problem_said_by_name(home: Path, sample_data: Path, tmp_path: Path):
    """1-minute bars saved under a 1-hour name (a download of the wrong thing): every record is wrong_rtype."""
    import shutil

    folder = tmp_path / "GLBX-20251118-TAAH7VN45V"
    folder.mkdir()
    wrong = folder / "glbx-mdp3-20201228.ohlcv-1h.dbn.zst"
    shutil.copy(sample_data / "databento" / "GLBX.MDP3" / "test_data.ohlcv-1m.dbn.zst", wrong)
    shutil.copy(sample_data / "databento" / "GLBX.MDP3" / "test_data.ohlcv-1d.dbn.zst", folder / "glbx-mdp3-20201228.ohlcv-1d.dbn.zst")
    result = runner.invoke(app, ["ingest", str(folder), "--home", str(home)])
    assert result.exit_code == 1, result.output
    assert f"{wrong.resolve()}: all " in result.output and "rows quarantined, none loaded" in result.output
