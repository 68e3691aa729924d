"""`cbi init`, `cbi tables` and `cbi audit` on a real warehouse file."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import data_contracts as dc
from cbi_local import warehouse
from cbi_local.cli import app
from data_contracts import columns as catalog

runner = CliRunner()


def cbi(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    result = cbi("init", "--home", str(tmp_path))
    assert result.exit_code == 0, result.output
    return tmp_path


def _load_fred(con: duckdb.DuckDBPyConnection, csv: Path, series_id: str) -> int:
    """Real FRED observations, loaded the simple way (ingest proper is cbi_local.ingest's job)."""
    con.execute(
        """
        INSERT INTO raw_intelligence.fred_economic (series_id, date, value, source, source_file)
        SELECT ?, date, value, 'fred', ? FROM read_csv(?, header = true, columns = {'date': 'DATE', 'value': 'DOUBLE'})
        """,
        [series_id, str(csv), str(csv)],
    )
    return con.execute("SELECT COUNT(*) FROM raw_intelligence.fred_economic").fetchone()[0]


def test_tables_json_lists_twelve_datasets_and_struct_columns(home: Path):
    result = cbi("tables", "--home", str(home), "--json")
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert [d["name"] for d in payload["datasets"]] == list(dc.DATASETS)
    tables = {f"{d['name']}.{t['table']}": t for d in payload["datasets"] for t in d["tables"]}
    assert {c.fqn for c in dc.CONTRACTS} == set(tables)
    matrix = tables["features.daily_ml_matrix"]
    assert matrix["partitioning"] == {"column": "date", "granularity": "MONTH"}
    assert matrix["clustering"] == ["symbol", "regime_name"]
    structs = {c["name"]: [f["name"] for f in c["fields"]] for c in matrix["columns"] if c["type"] == "STRUCT"}
    assert set(structs) == {"market_data", "pivots", "regime", "macro", "cross_asset", "positioning", "calendar", "term_structure"}
    assert structs["pivots"][:5] == ["p", "r1", "r2", "s1", "s2"]
    assert all(t["rows"] == 0 and t["exists"] for t in tables.values())


def test_init_is_idempotent_and_keeps_data(home: Path, sample_data: Path):
    with warehouse.open_warehouse(home / "warehouse.duckdb") as con:
        n = _load_fred(con, sample_data / "fred" / "DGS10.csv", "DGS10")
    assert n > 10_000
    again = warehouse.init(home / "warehouse.duckdb")
    assert not again.changed
    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        assert con.execute("SELECT COUNT(*) FROM raw_intelligence.fred_economic").fetchone()[0] == n
    assert "nothing changed" in cbi("init", "--home", str(home)).output


def test_adding_columns_to_a_contract_migrates_without_data_loss(home: Path, sample_data: Path, monkeypatch):
    path = home / "warehouse.duckdb"
    with warehouse.open_warehouse(path) as con:
        n = _load_fred(con, sample_data / "fred" / "VIXCLS.csv", "VIXCLS")
        before = con.execute("SELECT SUM(value), MIN(date), MAX(date) FROM raw_intelligence.fred_economic").fetchone()

    # A newer contract: fred_economic gains a column, and the matrix's macro STRUCT a field.
    fred = dc.get("raw_intelligence.fred_economic")
    matrix = dc.get("features.daily_ml_matrix")
    new_macro = dataclasses.replace(catalog.macro, fields=catalog.macro.fields + (catalog.description,))
    newer = {
        fred.fqn: dataclasses.replace(fred, columns=fred.columns + (catalog.message,)),
        matrix.fqn: dataclasses.replace(
            matrix, columns=tuple(new_macro if c.name == "macro" else c for c in matrix.columns)
        ),
    }
    monkeypatch.setattr(dc, "CONTRACTS", tuple(newer.get(c.fqn, c) for c in dc.CONTRACTS))

    report = warehouse.init(path)
    assert report.added_columns == ["raw_intelligence.fred_economic.message", "features.daily_ml_matrix.macro.description"]
    with warehouse.open_warehouse(path, read_only=True) as con:
        assert con.execute("SELECT COUNT(*) FROM raw_intelligence.fred_economic").fetchone()[0] == n
        after = con.execute("SELECT SUM(value), MIN(date), MAX(date) FROM raw_intelligence.fred_economic").fetchone()
        assert after == before
        assert con.execute("SELECT COUNT(message) FROM raw_intelligence.fred_economic").fetchone()[0] == 0
    assert not warehouse.init(path).changed


def test_audit_is_clean_on_a_fresh_warehouse(home: Path):
    result = cbi("audit", "--home", str(home), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["ok"] and payload["reports"][0]["drift"] == []
    assert len(payload["reports"][0]["empty_tables"]) == len(dc.CONTRACTS)


def test_audit_names_table_and_column_after_a_type_change(home: Path):
    with warehouse.open_warehouse(home / "warehouse.duckdb") as con:
        con.execute('ALTER TABLE market_data.futures_continuous_1d ALTER "close" TYPE VARCHAR')
    result = cbi("audit", "--home", str(home))
    assert result.exit_code == 1
    assert "type_mismatch market_data.futures_continuous_1d.close" in result.output
    assert "expected DOUBLE, found VARCHAR" in result.output


def test_audit_flags_a_same_named_table_with_another_schema(home: Path):
    # The user's migration had regime_calendar twice, with different columns.
    with warehouse.open_warehouse(home / "warehouse.duckdb") as con:
        con.execute("CREATE TABLE features.regime_calendar (date DATE, regime VARCHAR, training_weight BIGINT)")
    result = cbi("audit", "--home", str(home), "--json")
    assert result.exit_code == 1
    kinds = {(d["kind"], d["table"]) for d in json.loads(result.stdout)["reports"][0]["drift"]}
    assert ("unknown_table", "features.regime_calendar") in kinds
    assert ("same_name_conflict", "regime_calendar") in kinds


def test_audit_reports_missing_tables_and_columns(home: Path):
    with warehouse.open_warehouse(home / "warehouse.duckdb") as con:
        con.execute("DROP TABLE ops.sync_log")
        con.execute("ALTER TABLE dim.instruments DROP COLUMN cfi")
    payload = json.loads(cbi("audit", "--home", str(home), "--json").stdout)
    kinds = {(d["kind"], d["table"], d["column"]) for d in payload["reports"][0]["drift"]}
    assert ("missing_table", "ops.sync_log", None) in kinds
    assert ("missing_column", "dim.instruments", "cfi") in kinds
    text = cbi("audit", "--home", str(home)).stdout
    assert "missing_column dim.instruments.cfi: in the contract (VARCHAR), not in the table; `cbi init` adds it" in text


def test_commands_on_a_missing_warehouse_fail_clearly(tmp_path: Path):
    result = runner.invoke(app, ["tables", "--home", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "cbi init" in result.output


def test_console_script_is_installed_and_runs(tmp_path: Path):
    cbi_bin = Path(sys.executable).parent / "cbi"
    assert cbi_bin.exists(), "the `cbi` console script is not installed in this environment"
    out = subprocess.run([str(cbi_bin), "init", "--home", str(tmp_path), "--json"], capture_output=True, text=True, check=True)
    created = json.loads(out.stdout)
    assert len(created["created_tables"]) == len(dc.CONTRACTS)
    assert created["views"] == [v.fqn for v in dc.VIEWS] == ["features.vw_daily_ml_flat"]
    again = subprocess.run([str(cbi_bin), "init", "--home", str(tmp_path), "--json"], capture_output=True, text=True, check=True)
    assert json.loads(again.stdout)["views"] == []  # a view that follows its contract is left as it is


def test_transaction_commits_or_rolls_back_and_leaves_the_connection_usable(home: Path, sample_data: Path):
    csv = sample_data / "fred" / "DGS10.csv"
    with warehouse.open_warehouse(home / "warehouse.duckdb") as con:
        with pytest.raises(RuntimeError, match="midway"):
            with warehouse.transaction(con):
                assert _load_fred(con, csv, "DGS10") > 0
                raise RuntimeError("midway")
        assert con.execute("SELECT COUNT(*) FROM raw_intelligence.fred_economic").fetchone()[0] == 0
        # No transaction was left open: a new one starts, and its rows are kept.
        with warehouse.transaction(con):
            loaded = _load_fred(con, csv, "DGS10")
    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        assert con.execute("SELECT COUNT(*) FROM raw_intelligence.fred_economic").fetchone()[0] == loaded > 0
