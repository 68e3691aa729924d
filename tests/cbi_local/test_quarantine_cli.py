"""`cbi quarantine list|show|release|drop` on the real legacy migration's quarantine."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cbi_local import pipeline, warehouse
from cbi_local.cli import app

runner = CliRunner()


def test_list_show_drop_and_release(tmp_path: Path, sample_data: Path):
    warehouse.init(tmp_path / "warehouse.duckdb")
    with warehouse.open_warehouse(tmp_path / "warehouse.duckdb") as con:
        pipeline.migrate_legacy_dir(con, sample_data / "legacy_bq")
    home = ["--home", str(tmp_path)]

    listed = json.loads(runner.invoke(app, ["quarantine", "list", *home, "--json"]).stdout)["items"]
    by_rule = {(r["table"], r["rule"]): r["rows"] for r in listed}
    # The real DX-Y.NYB rows without provenance and the intraday rows in daily tables are held.
    assert by_rule[("market_data.yahoo_historical", "not_null")] == 1964
    assert sum(n for (t, r), n in by_rule.items() if r == "daily_grain") == 56

    with warehouse.open_warehouse(tmp_path / "warehouse.duckdb", read_only=True) as con:
        qid, = con.execute("SELECT quarantine_id FROM monitoring.quarantine WHERE rule = 'daily_grain' LIMIT 1").fetchall()[0]
    shown = json.loads(runner.invoke(app, ["quarantine", "show", qid, *home]).stdout)
    assert shown["rule"] == "daily_grain" and shown["status"] == "held" and json.loads(shown["payload"])

    # Without --yes, drop asks; "n" leaves the rows held.
    refused = runner.invoke(app, ["quarantine", "drop", "--rule", "daily_grain", *home], input="n\n")
    assert refused.exit_code == 1
    dropped = runner.invoke(app, ["quarantine", "drop", "--rule", "daily_grain", "--yes", *home])
    assert dropped.exit_code == 0 and "dropped 56 rows" in dropped.output
    after = json.loads(runner.invoke(app, ["quarantine", "list", "--status", "dropped", *home, "--json"]).stdout)["items"]
    assert sum(r["rows"] for r in after) == 56  # kept for the record, never deleted

    # Releasing rows whose rule still fails sends them straight back: nothing bypasses the rules.
    released = json.loads(runner.invoke(app, ["quarantine", "release", "--rule", "not_null", *home, "--json"]).stdout)
    assert released["released"] == 1964 and released["loaded"] == 0 and released["requarantined"] == 1964

    missing = runner.invoke(app, ["quarantine", "release", *home])
    assert missing.exit_code == 2 and "--rule" in missing.output


def test_commands_on_a_missing_warehouse_exit_2_with_what_to_do(tmp_path: Path):
    home = ["--home", str(tmp_path)]
    for args in (["quarantine", "list"], ["quarantine", "show", "some-id"], ["quarantine", "release", "--rule", "x"],
                 ["quarantine", "drop", "--rule", "x", "--yes"], ["tables"], ["audit"], ["coverage"], ["train", "runs"]):
        res = runner.invoke(app, [*args, *home])
        assert res.exit_code == 2, (args, res.output)
        assert res.exception is None or isinstance(res.exception, SystemExit), (args, res.exception)
        assert "cbi init" in res.stderr, args


def test_a_drop_is_undone_by_restore_and_the_rows_can_then_be_released(tmp_path, sample_data):
    warehouse.init(tmp_path / "warehouse.duckdb")
    with warehouse.open_warehouse(tmp_path / "warehouse.duckdb") as con:
        pipeline.migrate_legacy_dir(con, sample_data / "legacy_bq")
    home = ["--home", str(tmp_path)]
    held = json.loads(runner.invoke(app, ["quarantine", "list", *home, "--json"]).stdout)["items"]
    group = next(g for g in held if g["rule"] == "plausible_unit")
    dropped = runner.invoke(app, ["quarantine", "drop", "--rule", "plausible_unit", "--yes", *home])
    assert dropped.exit_code == 0 and f"dropped {group['rows']} rows" in dropped.output
    restored = runner.invoke(app, ["quarantine", "restore", "--rule", "plausible_unit", *home])
    assert restored.exit_code == 0 and f"restored {group['rows']} rows to held" in restored.output
    again = json.loads(runner.invoke(app, ["quarantine", "list", *home, "--json"]).stdout)["items"]
    assert next(g for g in again if g["rule"] == "plausible_unit")["rows"] == group["rows"]
    assert runner.invoke(app, ["quarantine", "restore", "--rule", "plausible_unit", *home]).exit_code == 1
