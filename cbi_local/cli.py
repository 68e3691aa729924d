"""`cbi`: one CLI for the warehouse, ingest, health, sync, features, training and the TUI.

Every command that a script would read takes `--json`. Exit codes: 0 ok, 1 the command
found a problem it reports (drift, failed checks), 2 the command could not run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import audit as audit_mod
from . import warehouse
from .config import settings

app = typer.Typer(
    name="cbi",
    help="CBI Local: a local-first DuckDB warehouse that mirrors BigQuery for ZL/MES forecasting.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="Warehouse home directory (default: $CBI_HOME or ~/.cbi).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@app.command()
def init(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Create the warehouse, or migrate it to the current contracts (idempotent)."""
    s = settings(home)
    try:
        report = warehouse.init(s.warehouse_path)
    except warehouse.WarehouseError as exc:
        fail(str(exc))
    if as_json:
        emit_json(
            {
                "warehouse": str(report.path),
                "created_schemas": report.created_schemas,
                "created_tables": report.created_tables,
                "added_columns": report.added_columns,
            }
        )
        return
    if not report.changed:
        console.print(f"Warehouse {report.path} is up to date with the contracts; nothing changed.")
        return
    console.print(
        f"Warehouse {report.path}: created {len(report.created_schemas)} datasets, "
        f"{len(report.created_tables)} tables; added {len(report.added_columns)} columns."
    )
    for col in report.added_columns:
        console.print(f"  + {col}")


@app.command()
def tables(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """List datasets and tables with row counts, partitioning and clustering."""
    import data_contracts as dc

    s = settings(home)
    try:
        with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
            infos = warehouse.table_infos(con)
    except warehouse.WarehouseError as exc:
        fail(str(exc))
    if as_json:
        emit_json(
            {
                "warehouse": str(s.warehouse_path),
                "datasets": [
                    {
                        "name": name,
                        "description": description,
                        "tables": [i.as_dict() for i in infos if i.contract.dataset == name],
                    }
                    for name, description in dc.DATASETS.items()
                ],
            }
        )
        return
    t = Table(title=f"Warehouse {s.warehouse_path}")
    t.add_column("dataset.table", no_wrap=True)
    t.add_column("rows", justify="right", no_wrap=True)
    t.add_column("partitioned by")
    t.add_column("clustered by")
    t.add_column("sync")
    for name in dc.DATASETS:
        mine = [i for i in infos if i.contract.dataset == name]
        if not mine:
            t.add_row(f"{name} [dim](no tables yet)[/]", "", "", "", "")
        for i in mine:
            c = i.contract
            part = f"{c.partition.column} {c.partition.granularity}" if c.partition else ""
            rows = f"{i.rows:,}" if i.rows is not None else "[red]missing[/]"
            t.add_row(c.fqn, rows, part, ",".join(c.clustering), c.sync)
    console.print(t)


@app.command()
def audit(
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    bigquery: Annotated[bool, typer.Option("--bigquery", help="Also audit the configured BigQuery project.")] = False,
) -> None:
    """Compare the warehouse (and BigQuery) with the contracts; exit 1 on any drift."""
    s = settings(home)
    try:
        with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
            reports = [audit_mod.audit_duckdb(con)]
    except warehouse.WarehouseError as exc:
        fail(str(exc))
    if bigquery:
        from sync.bigquery.client import make_client
        from sync.bigquery.layout import audit_bigquery

        reports.append(audit_bigquery(make_client(s), s.bq_project, s.bq_location))
    ok = all(r.ok for r in reports)
    if as_json:
        emit_json({"ok": ok, "reports": [r.as_dict() for r in reports]})
    else:
        for r in reports:
            status = "[green]no drift[/]" if r.ok else f"[red]{len(r.drifts)} drift(s)[/]"
            console.print(f"{r.engine}: {r.tables_checked} tables checked, {status}")
            for d in r.drifts:
                console.print(f"  [red]✗[/] {escape(d.message())}", soft_wrap=True)
            if r.empty_tables:
                console.print(f"  [dim]{len(r.empty_tables)} empty tables (not drift; --json lists them)[/]")
    if not ok:
        raise typer.Exit(1)


@app.command()
def demo(
    home: Annotated[
        Path | None, typer.Option("--home", help="Demo warehouse home (default: $CBI_HOME/demo or ~/.cbi/demo).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the main job on the real sample data ($CBI_SAMPLE_DATA) with a local BigQuery emulator."""
    from .demo import run_demo

    s = settings()
    demo_home = home or (s.home / "demo")
    try:
        summary = run_demo(settings(demo_home), console=err if as_json else console)
    except (warehouse.WarehouseError, FileNotFoundError, RuntimeError) as exc:
        fail(str(exc))
    if as_json:
        emit_json(summary)
    if not summary["ok"]:
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
