"""`cbi`: one CLI for the warehouse, ingest, health, sync, features, training and the TUI.

Every command that a script would read takes `--json` and prints one JSON object with an
`ok` field (`{"ok": true, ...}`; a list result sits under `items`). Exit codes: 0 ok, 1 the
command found a problem it reports (drift, failed checks), 2 the command could not run. An
unexpected error is one line on stderr (what failed, what to do) and exit 2; its traceback
goes to `<home>/logs/cbi-errors.log`, and to stderr with `cbi --debug ...`. Warnings of the
library (`cbi.*` loggers, e.g. who holds a locked warehouse) print on stderr as they happen.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import duckdb
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer import exceptions as typer_exc
from typer.core import TyperGroup

from . import __version__
from . import audit as audit_mod
from . import cli_features, cli_fetch, cli_health, cli_ingest, cli_train, config, warehouse
from .cli_base import HomeOpt, JsonOpt, console, emit_json, err, fail, print_gate, with_warehouse  # noqa: F401 - also the names tests import
from .config import settings
from sync import cli as sync_cli
from tui import cli as tui_cli

DEBUG_ENV = "CBI_DEBUG"


def _crash_log(exc: BaseException) -> Path | None:
    """Append the traceback to <home>/logs/cbi-errors.log (the home of the command that ran, else
    CBI_HOME); None when that folder cannot be written (e.g. the drive is not mounted)."""
    home = config.current_home or Settings().home
    try:
        log_dir = Path(home).expanduser() / "logs"
        if not log_dir.parent.is_dir():
            return None
        log_dir.mkdir(exist_ok=True)
        path = log_dir / "cbi-errors.log"
        from sync.journal import redact  # credential material never reaches a log

        with path.open("a", encoding="utf-8") as f:
            f.write(f"--- {datetime.now(timezone.utc).isoformat()} cbi {' '.join(sys.argv[1:])}\n")
            f.write(redact("".join(traceback.format_exception(exc))) + "\n")
        return path
    except OSError:
        return None


class CbiGroup(TyperGroup):
    """The root command group: routes an exception no command handled to one line on stderr and
    exit 2 (never a traceback unless --debug), and a closed stdout (`cbi health | head -1`) to a
    quiet exit, as a Unix tool does."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer_exc.Exit, typer_exc.Abort, typer_exc.TyperException, SystemExit):
            raise  # an exit code a command chose, or a usage error typer reports itself
        except BrokenPipeError:
            _quiet_stdout()
            raise SystemExit(0) from None  # the reader closed the pipe: nothing failed
        except KeyboardInterrupt:
            err.print("[bold red]error:[/] interrupted; whatever was committed stays, the next run resumes")
            raise SystemExit(2) from None
        except config.ConfigError as exc:  # a setting the user gave: its message names it and where it came from
            err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise SystemExit(2) from None
        except Exception as exc:  # noqa: BLE001 - the one place unexpected errors become exit 2
            from sync.journal import redact

            where = _crash_log(exc)
            command = " ".join(a for a in sys.argv[1:3] if not a.startswith("-")) or ctx.invoked_subcommand or "cbi"
            if os.environ.get(DEBUG_ENV) == "1":
                err.print(redact("".join(traceback.format_exception(exc))), markup=False, highlight=False)
            err.print(f"[bold red]error:[/] `cbi {escape(command)}` failed: {escape(redact(f'{type(exc).__name__}: {exc}'))}. "
                      + (f"The traceback is in {where}; " if where else "")
                      + "rerun with `cbi --debug ...` to see it; if it persists, report it with that log.", soft_wrap=True)
            raise SystemExit(2) from None


def _quiet_stdout() -> None:
    # Python flushes stdout again at exit; point it at /dev/null so that flush cannot raise.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


app = typer.Typer(
    name="cbi",
    help="CBI Local: a local-first DuckDB warehouse that mirrors BigQuery for ZL/MES forecasting.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=CbiGroup,
)


class _StderrHandler(logging.Handler):
    """`cbi.*` warnings as `warning: ...` lines on stderr (the daemon logs to its file instead)."""

    def emit(self, record: logging.LogRecord) -> None:
        err.print(f"[yellow]{record.levelname.lower()}:[/] {escape(record.getMessage())}", soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"cbi {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Print the traceback of an unexpected error.")] = False,
) -> None:
    """CBI Local: a local-first DuckDB warehouse that mirrors BigQuery for ZL/MES forecasting."""
    if debug:
        os.environ[DEBUG_ENV] = "1"
    cbi_log = logging.getLogger("cbi")
    if not any(isinstance(h, _StderrHandler) for h in cbi_log.handlers):
        cbi_log.addHandler(_StderrHandler(logging.WARNING))
        cbi_log.setLevel(logging.INFO)


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
        from google.api_core import exceptions as gexc

        from sync.bigquery.client import NoCredentials, make_client
        from sync.bigquery.layout import audit_bigquery
        from sync.retry import Offline

        try:
            reports.append(audit_bigquery(make_client(s), s.bq_project, s.bq_location))
        except (NoCredentials, Offline, gexc.GoogleAPIError) as exc:  # could not look: exit 2, not drift
            from sync.journal import redact

            fail(f"cannot audit BigQuery project {s.bq_project!r}: {redact(str(exc))}")
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


quarantine_app = typer.Typer(help="Rows that broke a rule: list, show, release after a fix, drop (never deleted), restore a drop.", no_args_is_help=True)
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
    if not report.released:
        _nothing_matched("release", home, ids, rule, table, batch, as_json)
    if as_json:
        emit_json(report.__dict__, ok=not (report.gate and report.gate["failed"]))
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
    if not n:
        _nothing_matched("drop", home, ids, rule, table, batch, False)
    console.print(f"dropped {n} rows")


@quarantine_app.command("restore")
def quarantine_restore(
    ids: IdsArg = None, rule: RuleOpt = None, table: TableOpt = None, batch: BatchOpt = None,
    home: HomeOpt = None,
) -> None:
    """Undo a drop: dropped rows go back to held, to be released or dropped again."""
    from . import quarantine as q

    n = with_warehouse(settings(home), lambda con: q.restore(con, ids, rule, table, batch), ValueError, write=True)
    if not n:
        err.print("nothing to restore: no dropped row matches (`cbi quarantine list --status dropped`)")
        raise typer.Exit(1)
    console.print(f"restored {n} rows to held (`cbi quarantine release` or `drop` them again)")


def _nothing_matched(action: str, home: Path | None, ids: list[str] | None, rule: str | None, table: str | None,
                     batch: str | None, as_json: bool) -> None:
    """A release or drop whose selection matched no held row: say what is held instead, exit 1."""
    from . import quarantine as q

    held = with_warehouse(settings(home), lambda con: q.summary(con, "held"))
    asked = " ".join(f"--{k} {v}" for k, v in (("rule", rule), ("table", table), ("batch", batch)) if v)
    asked = " ".join([*(ids or []), asked]).strip() or "(no selection)"
    by_rule: dict[str, int] = {}
    for r in held:
        by_rule[r["rule"]] = by_rule.get(r["rule"], 0) + r["rows"]
    if as_json:
        emit_json({"released": 0, "matched": 0, "held_by_rule": by_rule}, ok=False)
    else:
        err.print(f"nothing to {action}: no held row matches {escape(asked)}. Held now: "
                  + (", ".join(f"{k} {v:,}" for k, v in sorted(by_rule.items())) or "nothing") + " (`cbi quarantine list`).",
                  soft_wrap=True)
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
        warehouse.ensure_home(demo_home)
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
    try:
        warehouse.ensure_home(s.home)  # an unmounted drive: said before anything runs, nothing created
    except warehouse.WarehouseError as exc:
        fail(str(exc))
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

    if isinstance(stopped_by, NoCredentials):
        fail(f"{stopped_by} (or `cbi run --no-push` for the local steps only)")  # could not run: said once more
    if isinstance(stopped_by, warehouse.WarehouseError):
        fail(str(stopped_by))  # could not run: said once more, unwrapped, on stderr
    if not summary["ok"]:
        raise typer.Exit(1)



# Every command module's commands, registered explicitly (each module holds a `commands` Typer;
# the groups keep their names: `cbi features`, `cbi sync`, ...).
for _module in (cli_features, cli_health, cli_ingest, cli_train, cli_fetch, sync_cli, tui_cli):
    app.add_typer(_module.commands)


def main() -> None:
    # `cbi health | head -1`: a closed pipe ends the process quietly, as it does any Unix tool,
    # instead of raising BrokenPipeError at the next write.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    app()


if __name__ == "__main__":
    main()
