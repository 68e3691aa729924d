"""What every `cbi` command module shares: the consoles, the --home/--json options, the JSON
envelope, the exit on a problem it could not get past, and the printers of a batch and its gate.

Layer: below the command modules (cli_*.py, sync/cli.py, tui/cli.py), above the core; it holds no
command. cbi_local/cli.py builds the app and registers every module's commands explicitly.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import duckdb
import typer
from rich.console import Console
from rich.markup import escape

from . import warehouse
from .config import Settings

console = Console()
err = Console(stderr=True)
T = TypeVar("T")


HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="Warehouse home directory (default: $CBI_HOME or ~/.cbi).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def emit_json(payload: Any, ok: bool | None = None) -> None:
    """The one `--json` envelope: an object with `ok` first (a list goes under `items`)."""
    body = payload if isinstance(payload, dict) else {"items": payload}
    verdict = ok if ok is not None else body.get("ok", True)
    sys.stdout.write(json.dumps({"ok": verdict, **{k: v for k, v in body.items() if k != "ok"}}, indent=2, default=str) + "\n")


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def _message(exc: BaseException) -> str:
    # str(KeyError("x")) is "'x'": a KeyError's message is its argument
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


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
        fail(_message(exc))
        raise  # unreachable: fail() exits


def print_batch(report: dict[str, Any]) -> None:
    batch = report["batch"]
    t = batch["totals"]
    status = Counter(c["status"] for c in batch["files"].values())
    read = status["loaded"] + status["replaced"]
    # Files that were not read are said as such: an error or a skipped file is no "file loaded".
    others = "".join(f", {status[s]} {s}" for s in ("error", "skipped", "empty") if status[s])
    console.print(
        f"batch {batch['batch_id']} ({batch['status']}): {read} files read{others}, "
        f"{len(batch['unchanged_files'])} unchanged; rows read {t['rows_read']:,} = loaded {t['rows_loaded']:,} "
        f"+ quarantined {t['rows_quarantined']:,} + duplicates {t['rows_duplicate']:,}"
        + ("" if batch["balanced"] else " [red](UNBALANCED)[/]"),
        soft_wrap=True,
    )
    for path, c in batch["files"].items():
        if c["status"] == "error":
            console.print(f"  [red]✗[/] {escape(path)}: {escape(str(c['error']))}", soft_wrap=True)
        elif path in report.get("all_quarantined", {}):
            console.print(f"  [red]✗[/] {escape(path)}: all {c['rows_read']:,} rows quarantined, none loaded "
                          f"(`cbi quarantine list`)", soft_wrap=True)
        elif c["rows_quarantined"]:
            console.print(
                f"  [yellow]![/] {escape(path)}: {c['rows_quarantined']:,} of {c['rows_read']:,} rows quarantined "
                f"(`cbi quarantine list`)",
                soft_wrap=True,
            )
    print_gate(report.get("gate"), indent="  ")
    cont = report.get("continuous")
    if cont:
        console.print(f"  continuous series rebuilt: +{cont['inserted']} -{cont['deleted']} rows, {len(cont['rolls'])} rolls")
