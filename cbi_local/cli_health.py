"""`cbi coverage` (registered on the main app) and the body of `cbi health` (cli.py delegates to `show_health`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from .cli_base import HomeOpt, JsonOpt, console, emit_json, with_warehouse
from .config import settings

GAPS_SHOWN = 5

commands = typer.Typer()  # registered by cbi_local/cli.py


@commands.command()
def coverage(
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    root: Annotated[list[str] | None, typer.Option("--root", help="Only this root (repeatable).")] = None,
    series: Annotated[list[str] | None, typer.Option("--series", help="Only this FRED series (repeatable).")] = None,
) -> None:
    """Coverage per root x bar schema (1m/1h/1d), continuous series and FRED series: expected vs present, gaps, months."""
    from . import coverage as cov

    s = settings(home)
    items = with_warehouse(s, lambda con: cov.coverage(con, roots=root or None, series=series or None))
    payload = cov.report(items)
    if as_json:
        emit_json(payload)
        return
    t = Table(title=f"Coverage {s.warehouse_path}")
    for col in ("table", "series", "first", "last", "present / expected", "complete", "gaps", "outside"):
        t.add_column(col)
    for c in items:
        t.add_row(
            c.table.split(".", 1)[1] if c.kind != "fred" else f"fred ({c.schema})", c.series, str(c.first or ""),
            str(c.last or ""), f"{c.present:,} / {c.expected:,} {c.unit}",
            "" if c.completeness is None else f"{c.completeness:.1%}", str(len(c.gaps)), str(c.outside),
        )
    console.print(t)
    for c in items:
        if c.problem:
            console.print(f"[red]✗[/] {c.table} {c.series}: {escape(c.problem)}", soft_wrap=True)
        if not c.gaps:
            continue
        shown = ", ".join(_gap_text(g) for g in c.gaps[:GAPS_SHOWN])
        more = f" and {len(c.gaps) - GAPS_SHOWN} more (--json lists all)" if len(c.gaps) > GAPS_SHOWN else ""
        console.print(f"  {c.table} {c.series}: {len(c.gaps)} gaps: {escape(shown)}{more}", soft_wrap=True)


def _gap_text(g: dict[str, Any]) -> str:
    span = g["start"] if g["start"] == g["end"] else f"{g['start']}..{g['end']}"
    return f"{span} ({g['count']} {g['kind']})"


def show_health(home: Path | None, as_json: bool, tables: list[str] | None, batch: str | None) -> None:
    """`cbi health`: live checks (recorded with history) plus the defects the latest legacy migration recorded
    (or, with --batch, that batch's). Exit 1 only on a failed blocking rule in the live checks."""
    from . import health as health_mod

    s = settings(home)
    report = with_warehouse(s, lambda con: health_mod.health_report(con, tables or None, batch_id=batch), KeyError, write=True)
    if as_json:
        emit_json(report)
    else:
        scope = f" (batch {batch})" if batch else ""
        unreadable = f", {len(report['files_in_error'])} files in error" if report["files_in_error"] else ""
        console.print(
            f"health{scope}: {report['checks']} checks, {report['failed']} failed, {report['warnings']} warnings{unreadable}"
        )
        for r in report["results"]:
            if r["status"] == "pass":
                continue
            mark = "[red]✗ fail[/]" if r["status"] == "fail" else "[yellow]! warn[/]"
            measured = "" if r["measured_value"] is None else f" (measured {r['measured_value']:g}, want {r['threshold']})"
            console.print(f"  {mark} {r['table']} {r['rule']}: {escape(r['message'])}{escape(measured)}", soft_wrap=True)
            if r["sample"]:
                console.print(f"      e.g. {escape(str(r['sample'][0]))[:300]}", soft_wrap=True)
        rec = report["recorded"]
        if rec["defects"]:
            console.print(
                f"recorded by migration batch {rec['batch_id']} ({rec['checked_at']}): {len(rec['defects'])} defects "
                "(rows already quarantined, normalised or resolved; not part of the exit code)"
            )
            for d in rec["defects"]:
                mark = "[red]✗[/]" if d["status"] == "fail" else "[yellow]![/]"
                console.print(f"  {mark} {d['table']} {d['rule']}: {escape(d['message'])[:400]}", soft_wrap=True)
                if d["sample"]:
                    console.print(f"      e.g. {escape(str(d['sample'][0]))[:300]}", soft_wrap=True)
        for f in report["files_in_error"]:
            console.print(f"  [red]✗ file[/] {escape(f['path'])}: {escape(str(f['error']))} (since {f['since']}; "
                          "fix or replace it, or `cbi ingest --forget FILE`)", soft_wrap=True)
    if not report["ok"]:
        raise typer.Exit(1)
