"""`cbi`: one CLI for the warehouse, ingest, health, sync, features, training and the TUI.

Every command that a script would read takes `--json`. Exit codes: 0 ok, 1 the command
found a problem it reports (drift, failed checks), 2 the command could not run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import duckdb
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import audit as audit_mod
from . import warehouse
from .config import Settings, settings

app = typer.Typer(
    name="cbi",
    help="CBI Local: a local-first DuckDB warehouse that mirrors BigQuery for ZL/MES forecasting.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")

HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="Warehouse home directory (default: $CBI_HOME or ~/.cbi).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def print_gate(gate: dict[str, Any] | None, indent: str = "") -> None:
    """The line ingest, features build and train print when their batch failed the health gate."""
    if gate and gate["failed"]:
        console.print(f"{indent}[red]✗ health gate failed[/]: {gate['failed']}; {gate['rows_quarantined']:,} rows held back")


def with_warehouse(
    s: Settings, fn: Callable[[duckdb.DuckDBPyConnection], T], *errors: type[Exception], write: bool = False
) -> T:
    """`fn(con)` on the warehouse (read-only unless `write`). A missing or locked warehouse, or one
    of `errors`, exits 2 with its message (never a traceback)."""
    try:
        with warehouse.open_warehouse(s.warehouse_path, read_only=not write) as con:
            return fn(con)
    except (warehouse.WarehouseError, *errors) as exc:
        fail(str(exc))
        raise  # unreachable: fail() exits


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
                "views": report.views,
            }
        )
        return
    if not report.changed:
        console.print(f"Warehouse {report.path} is up to date with the contracts; nothing changed.")
        return
    console.print(
        f"Warehouse {report.path}: created {len(report.created_schemas)} datasets, "
        f"{len(report.created_tables)} tables; added {len(report.added_columns)} columns; "
        f"created or updated {len(report.views)} views."
    )
    for col in report.added_columns:
        console.print(f"  + {col}")
    for view in report.views:
        console.print(f"  ~ view {view} (follows its contract)")


@app.command()
def tables(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """List datasets and tables with row counts, partitioning and clustering."""
    import data_contracts as dc

    s = settings(home)
    infos = with_warehouse(s, warehouse.table_infos)
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
    reports = [with_warehouse(s, audit_mod.audit_duckdb)]
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
def health(
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    table: Annotated[list[str] | None, typer.Option("--table", help="Only this dataset.table (repeatable).")] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="Only this batch's rows, and the defects it recorded.")] = None,
) -> None:
    """Run every contract's quality rules (one pass per table) and show the defects the latest legacy
    migration recorded; record the results; exit 1 on a failed blocking rule in the live checks."""
    from .cli_health import show_health

    show_health(home, as_json, table, batch)


quarantine_app = typer.Typer(help="Rows that broke a rule: list, show, release after a fix, or drop (never deleted).", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")
IdsArg = Annotated[list[str] | None, typer.Argument(help="Quarantine ids.")]
RuleOpt = Annotated[str | None, typer.Option("--rule", help="All held rows that broke this rule.")]
TableOpt = Annotated[str | None, typer.Option("--table", help="All held rows of this dataset.table.")]
BatchOpt = Annotated[str | None, typer.Option("--batch", help="All held rows of this batch.")]


@quarantine_app.command("list")
def quarantine_list(
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    status: Annotated[str, typer.Option("--status", help="held, released, dropped, superseded or all.")] = "held",
) -> None:
    """Quarantined rows grouped by table, rule and status."""
    from . import quarantine as q

    rows = with_warehouse(settings(home), lambda con: q.summary(con, None if status == "all" else status))
    if as_json:
        emit_json(rows)
        return
    t = Table(title=f"Quarantine ({status})")
    for col in ("table", "rule", "status", "rows", "files", "example"):
        t.add_column(col)
    for r in rows:
        t.add_row(str(r["table"]), r["rule"], r["status"], f"{r['rows']:,}", str(r["files"]), escape(str(r["example"])[:120]))
    console.print(t)


@quarantine_app.command("show")
def quarantine_show(quarantine_id: str, home: HomeOpt = None) -> None:
    """One quarantined row with its rule, reason and full payload (always JSON)."""
    from . import quarantine as q

    emit_json(with_warehouse(settings(home), lambda con: q.show(con, quarantine_id), KeyError))


@quarantine_app.command("release")
def quarantine_release(
    ids: IdsArg = None, rule: RuleOpt = None, table: TableOpt = None, batch: BatchOpt = None,
    home: HomeOpt = None, as_json: JsonOpt = False,
) -> None:
    """Re-load held rows after a fix; they pass the same rules again (failures return to the quarantine)."""
    from . import quarantine as q

    report = with_warehouse(settings(home), lambda con: q.release(con, ids, rule, table, batch), ValueError, write=True)
    if as_json:
        emit_json(report.__dict__)
    else:
        console.print(
            f"released {report.released}: loaded {report.loaded}, duplicates {report.duplicates}, "
            f"quarantined again {report.requarantined} (batch {report.batch_id})"
        )
        print_gate(report.gate)
    if report.gate and report.gate["failed"]:
        raise typer.Exit(1)


@quarantine_app.command("drop")
def quarantine_drop(
    ids: IdsArg = None, rule: RuleOpt = None, table: TableOpt = None, batch: BatchOpt = None,
    home: HomeOpt = None, yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Mark held rows as dropped (kept for the record, never loaded, never deleted)."""
    from . import quarantine as q

    if not yes and not typer.confirm("Mark the selected rows as dropped?"):
        raise typer.Exit(1)
    n = with_warehouse(settings(home), lambda con: q.drop(con, ids, rule, table, batch), ValueError, write=True)
    console.print(f"dropped {n} rows")


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


@app.command("run")
def run_cmd(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Inputs to ingest (default: the inbox's top-level entries).")
    ] = None,
    home: HomeOpt = None,
    inbox: Annotated[Path | None, typer.Option("--inbox", help="Inbox folder (default: $CBI_INBOX).")] = None,
    push: Annotated[bool, typer.Option("--push/--no-push", help="Sync with BigQuery (layout, push, pull, parity).")] = True,
    train: Annotated[bool, typer.Option("--train/--no-train", help="Train canonical models whose matrix changed.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """The main job on your configuration: ingest the inbox -> health -> coverage -> features -> training -> push -> pull -> parity."""
    from .run import inbox_inputs, run_job

    s = settings(home)
    box = (inbox or s.inbox)
    inputs = [p.expanduser().resolve() for p in paths or []]
    if not inputs and box is not None:
        box = box.expanduser().resolve()
        if not box.is_dir():
            fail(f"inbox {box} is not a folder (set CBI_INBOX or --inbox to the folder your downloads land in)")
        inputs = inbox_inputs(box)
    missing = [str(p) for p in inputs if not p.exists()]
    if missing:
        fail(f"no such file or folder: {', '.join(missing)}")
    out = err if as_json else console
    out.print(f"[bold]CBI Local run[/] · home {s.home} · {len(inputs)} input(s)"
              + (f" from {box}" if box and not paths else "")
              + (f" · BigQuery {s.bq_project} ({s.bq_location})" if push else " · local only (--no-push)"), soft_wrap=True)
    summary, stopped_by = run_job(s, out, inputs, push=push, train=train)
    from .job import print_summary

    print_summary(out, "CBI Local run summary", summary, f"Next: `cbi tui --home {s.home}`, `cbi sync status`.")
    if as_json:
        emit_json(summary)
    from sync.bigquery.client import NoCredentials

    if isinstance(stopped_by, (warehouse.WarehouseError, NoCredentials)):
        fail(str(stopped_by))  # could not run: said once more, unwrapped, on stderr
    if not summary["ok"]:
        raise typer.Exit(1)



from . import cli_features, cli_health, cli_ingest, cli_train  # noqa: E402,F401  (register their commands on `app`)
from sync import cli as _sync_cli  # noqa: E402,F401  (registers `cbi sync ...` and `cbi daemon`)
from tui import cli as _tui_cli  # noqa: E402,F401  (registers `cbi tui`; Textual loads only when it runs)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
