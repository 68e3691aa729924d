"""The contracts are the only truth: complete, self-consistent, each column spelled once."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import data_contracts as dc
from data_contracts import columns as catalog
from data_contracts import rules as r
from data_contracts import to_bigquery, to_duckdb, to_polars
from data_contracts.model import Column, Contract, Partition

REPO = Path(__file__).resolve().parents[2]

FOUNDATION_TABLES = {
    "market_data.databento_futures_ohlcv_1m",
    "market_data.databento_futures_ohlcv_1h",
    "market_data.databento_futures_ohlcv_1d",
    "market_data.futures_continuous_1d",
    "market_data.yahoo_historical",
    "dim.instruments",
    "raw_intelligence.fred_economic",
    "raw_intelligence.weather_daily",
    "raw_intelligence.cftc_cot",
    "regimes.regime_weights",
    "regimes.regime_calendar",
    "features.daily_ml_matrix",
    "training.model_runs",
    "predictions.zl_forecasts",
    "monitoring.health_checks",
    "monitoring.quarantine",
    "monitoring.dedup_conflicts",
    "ops.batches",
    "ops.file_manifest",
    "ops.sync_log",
}


def test_the_twelve_datasets_and_foundation_tables_are_declared():
    assert set(dc.DATASETS) == {
        "raw_intelligence", "market_data", "features", "training", "predictions", "monitoring",
        "api", "dim", "ops", "signals", "regimes", "neural",
    }
    assert dc.LOCATION == "us-central1"
    assert FOUNDATION_TABLES <= {c.fqn for c in dc.CONTRACTS}


def test_daily_ml_matrix_has_its_struct_columns_and_targets():
    m = dc.get("features.daily_ml_matrix")
    structs = {c.name for c in m.columns if c.type == "STRUCT"}
    assert structs == {"market_data", "pivots", "regime", "macro", "cross_asset", "positioning", "calendar",
                       "term_structure"}
    assert {"roll_adjustment", "matrix_source"} <= set(m.column_names)
    assert {"target_1w", "target_1m", "target_3m", "target_6m", "target_12m"} <= set(m.column_names)
    assert "rsi_14" in {f.name for f in m.column("market_data").fields}


def _catalog() -> dict[str, Column]:
    entries = [v for v in vars(catalog).values() if isinstance(v, Column)]
    entries += [c for group in (catalog.TARGETS, catalog.FORWARD_CLOSES) for c in group]
    names = [e.name for e in entries]
    duplicated = {n for n in names if names.count(n) > 1}
    # The same object may be bound twice (LINEAGE members); two *different* definitions may not.
    assert not {n for n in duplicated if len({(e.type, e.description) for e in entries if e.name == n}) > 1}
    return {e.name: e for e in entries}


def test_every_column_comes_from_the_catalog_so_a_name_means_one_thing():
    cat = _catalog()
    for contract in dc.CONTRACTS:
        for col in contract.columns:
            assert col.name in cat, f"{contract.fqn}.{col.name} is spelled outside data_contracts/columns.py"
            entry = cat[col.name]
            # Only the mode may be specialised per table (required / repeated).
            assert dataclasses.replace(col, mode=entry.mode) == entry, f"{contract.fqn}.{col.name} differs from its catalog entry"


def test_column_names_are_spelled_only_in_the_catalog():
    """Table modules compose catalog entries; none constructs a Column by name itself."""
    for path in (REPO / "data_contracts" / "tables").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"\bColumn\(", text), f"{path.name} defines a column outside the catalog"


def test_nothing_outside_the_contracts_hard_codes_a_table_schema():
    offenders = []
    for pkg in ("cbi_local", "sync", "tui"):
        for path in (REPO / pkg).rglob("*.py"):
            text = path.read_text()
            if re.search(r"CREATE\s+(OR\s+REPLACE\s+)?TABLE", text, re.I) or "SchemaField(" in text:
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_renderers_agree_with_the_contract():
    for contract in dc.CONTRACTS:
        bq = to_bigquery.schema(contract)
        assert [f.name for f in bq] == contract.column_names
        assert [f.mode for f in bq] == [c.mode for c in contract.columns]
        pl_schema = to_polars.schema(contract)
        assert list(pl_schema.names()) == contract.column_names
        ddl = to_duckdb.create_table(contract)
        for col in contract.columns:
            assert to_duckdb.quote(col.name) in ddl
    macro = to_bigquery.schema(dc.get("features.daily_ml_matrix"))[7]
    assert macro.name == "macro" and macro.field_type == "STRUCT"
    assert [f.name for f in macro.fields][:3] == ["dollar_index", "dgs10", "t10y2y"]
    runs = {f.name: f for f in to_bigquery.schema(dc.get("training.model_runs"))}
    assert runs["fold_metrics"].mode == "REPEATED" and runs["fold_metrics"].field_type == "STRUCT"
    assert runs["feature_names"].mode == "REPEATED" and runs["feature_names"].field_type == "STRING"


def test_every_contract_declares_keys_sources_rules_and_sync():
    for contract in dc.CONTRACTS:
        assert contract.primary_key, contract.fqn
        assert contract.sources, contract.fqn
        assert contract.rules_of("unique_key"), contract.fqn
        assert contract.sync in ("push", "pull", "local")
        assert contract.privacy in ("public", "private")


def test_source_hierarchy_declares_the_zl_yahoo_bridge_only_on_the_continuous_table():
    cont = dc.get("market_data.futures_continuous_1d")
    yahoo = [s for s in cont.sources if s.name == "yahoo"]
    assert len(yahoo) == 1 and "2010-06-06" in yahoo[0].only_where and "'ZL'" in yahoo[0].only_where
    for fqn in ("market_data.databento_futures_ohlcv_1h", "market_data.databento_futures_ohlcv_1d"):
        assert [s.name for s in dc.get(fqn).sources] == ["databento"]


def test_contract_validation_rejects_impossible_declarations():
    date = catalog.date.required()
    with pytest.raises(ValueError, match="partition column"):
        Contract("ops", "bad", "", (catalog.symbol, date), ("symbol",), partition=Partition("symbol"))
    with pytest.raises(ValueError, match="clustering"):
        Contract("features", "bad", "", (date, catalog.macro), ("date",), clustering=("macro",))
    with pytest.raises(ValueError, match="primary key"):
        Contract("ops", "bad", "", (date,), ("nope",))
    with pytest.raises(ValueError, match="unknown column"):
        Contract("ops", "bad", "", (date,), ("date",), rules=(r.not_null("nope"),))
    with pytest.raises(ValueError, match="unknown BigQuery type"):
        Column("x", "VARCHAR", "")


def test_get_names_known_tables_on_a_typo():
    with pytest.raises(KeyError, match="market_data.futures_continuous_1d"):
        dc.get("market_data.futures_continuous")


def test_the_batch_states_the_code_writes_are_exactly_the_contract_s(tmp_path):
    """ops.batches.status: the contract lists every state written (BatchStatus) and no other; here the
    code's SQL literals and Python assignments of a batch status are collected from the source."""
    import re
    from pathlib import Path

    from data_contracts.tables.ops import BATCH_STATUSES, batches

    repo = Path(__file__).resolve().parents[2]
    written: set[str] = set()
    for path in [*repo.glob("cbi_local/**/*.py"), *repo.glob("sync/**/*.py")]:
        text = path.read_text()
        for stmt in re.findall(r"(?:INSERT INTO|UPDATE) ops\.batches[^;]*?(?:\"\"\"|\"\s*[,)\]])", text, re.S):
            written.update(re.findall(r"status\s*=\s*'(\w+)'", stmt))
            written.update(re.findall(r"VALUES\s*\([^)]*'(\w+)'", stmt))
        written.update(re.findall(r"summary\.status = \"(\w+)\"", text))
        written.update(re.findall(r"else \"(empty)\"", text))
    assert written and written <= set(BATCH_STATUSES), written - set(BATCH_STATUSES)
    assert {"open", "validated", "empty", "failed_validation", "pushed", "rolled_back"} == set(BATCH_STATUSES)
    assert all(s in batches.description for s in BATCH_STATUSES) and "failed." not in batches.description
