"""The contracts' quality rules run on BigQuery: the same generated query as on DuckDB, transpiled once.

`cbi_local.health.table_query` writes the table's single aggregate query (portable DuckDB text);
`cbi_local.health.bigquery_sql` transpiles it with sqlglot; the one result row is judged by the same
`cbi_local.health.judge_row` as on DuckDB, so a rule reaches the same verdict and measured value on
both engines. Samples of failed rules use the same portable `sample_query`, transpiled likewise.
Rows go through the real google-cloud-bigquery client (to_arrow without the storage API).
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from google.cloud import bigquery

import data_contracts as dc
from cbi_local.health import CheckResult, bigquery_sql, judge_row, table_query
from data_contracts.model import Contract
from data_contracts.to_duckdb import quote


def bq_table(project: str, contract: Contract) -> str:
    """The project-qualified table in DuckDB quoting (sqlglot turns it into `project`.`dataset`.`table`)."""
    return ".".join(quote(p) for p in (project, contract.dataset, contract.table))


def _fetch(client: bigquery.Client, sql: str) -> tuple[list[str], list[tuple]]:
    tbl = client.query(sql).result().to_arrow(create_bqstorage_client=False)
    cols = [tbl.column(i).to_pylist() for i in range(tbl.num_columns)]
    return tbl.column_names, list(zip(*cols)) if cols else []


def check_table(
    client: bigquery.Client, project: str, contract: Contract, where: str | None = None,
    today: date | None = None, samples: bool = True,
) -> list[CheckResult]:
    """Every rule of `contract` over the BigQuery table (optionally only rows matching `where`)."""
    today = today or datetime.now(timezone.utc).date()
    ref = bq_table(project, contract)
    sql, ms = table_query(contract, where, table=ref)
    names, rows = _fetch(client, bigquery_sql(sql))
    if len(rows) != 1:
        raise RuntimeError(f"{contract.fqn}: the health query returned {len(rows)} rows, expected 1")
    fetch = (lambda q: _fetch(client, q)) if samples else None
    return judge_row(contract, ms, rows[0], today, fetch, where, table=ref, translate=bigquery_sql)


def run_health(
    client: bigquery.Client, project: str, tables: list[str] | None = None, today: date | None = None,
) -> list[CheckResult]:
    """Check the named tables (default: every contract's) in BigQuery; nothing is recorded here (the
    caller records with engine='bigquery' through cbi_local.health.record_results)."""
    contracts = [dc.get(t) for t in tables] if tables else list(dc.CONTRACTS)
    out: list[CheckResult] = []
    for contract in contracts:
        out += check_table(client, project, contract, today=today)
    return out
