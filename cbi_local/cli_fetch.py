"""`cbi fetch ...`: acquisition. `cbi fetch plan` (read-only, no network, nothing spent) and `cbi fetch fred`
(the FRED API, see cbi_local/fetch/fred.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .cli_base import HomeOpt, JsonOpt, console, emit_json, fail, print_batch, with_warehouse
from .config import settings

commands = typer.Typer()  # registered by cbi_local/cli.py
fetch_app = typer.Typer(help="Turn coverage gaps into exact download requests.", no_args_is_help=True)
commands.add_typer(fetch_app, name="fetch")
UNIVERSE = Path("registry") / "universe" / "databento_universe.yaml"


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@fetch_app.command("plan")
def plan_cmd(
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    roots: Annotated[str | None, typer.Option("--roots", help="Comma-separated roots (default: the universe's).")] = None,
    schemas: Annotated[str | None, typer.Option("--schemas", help="Comma-separated, e.g. ohlcv-1h,ohlcv-1d.")] = None,
    start: Annotated[str | None, typer.Option("--start", help="First date (default: the universe's start_date).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last date (default: today, UTC).")] = None,
    universe: Annotated[Path | None, typer.Option("--universe", help="databento_universe.yaml (default: the registry's).")] = None,
) -> None:
    """The exact Databento requests (dataset, parent symbols, schema, UTC windows) that fill the coverage gaps."""
    from .fetch import plan as plan_mod

    s = settings(home)
    path = universe or (s.sample_data / UNIVERSE)
    if not path.is_file():
        fail(f"universe {path} not found (pass --universe FILE)")
    try:
        uni = plan_mod.load_universe(path)
        d0 = dt.date.fromisoformat(start) if start else None
        d1 = dt.date.fromisoformat(end) if end else dt.datetime.now(dt.UTC).date()
    except (ValueError, KeyError, TypeError) as exc:
        fail(f"{path if not (start or end) else 'dates'}: {exc}")
    plan = with_warehouse(s, lambda con: plan_mod.build_plan(con, uni, _csv(roots), _csv(schemas), d0, d1), ValueError)
    if as_json:
        emit_json(plan.as_dict())
        return
    t = Table(title=f"Fetch plan {plan.start}..{plan.end} ({len(plan.requests)} requests; nothing downloaded)")
    for col in ("dataset", "schema", "symbols", "start (UTC)", "end (UTC)", "sessions"):
        t.add_column(col)
    for r in plan.requests:
        t.add_row(r.dataset, r.schema, ",".join(r.symbols), r.start, r.end, f"{r.sessions:,} ({r.first_session}..{r.last_session})")
    console.print(t)
    for note in plan.skipped:
        console.print(f"[yellow]skipped[/] {note}", soft_wrap=True)


@fetch_app.command("fred")
def fred_cmd(
    series: Annotated[list[str] | None, typer.Argument(help="FRED series ids (default: those the warehouse holds).")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    inbox: Annotated[Path | None, typer.Option("--inbox", help="Inbox folder (default: $CBI_INBOX); files land in its fred/.")] = None,
    no_ingest: Annotated[bool, typer.Option("--no-ingest", help="Only write the CSVs; the daemon or `cbi ingest` loads them.")] = False,
) -> None:
    """Refresh FRED series through the FRED API (FRED_API_KEY) into <inbox>/fred/, then ingest them."""
    from . import pipeline
    from .fetch.fred import FetchError, refresh, series_to_refresh

    s = settings(home)
    box = inbox or s.inbox
    if box is None:
        fail("no inbox: pass --inbox DIR or set CBI_INBOX (the FRED CSVs land in its fred/ folder)")
    wanted = with_warehouse(s, lambda con: series_to_refresh(con, series))  # the connection closes before the fetch
    try:
        fetched = refresh(s, box, wanted)
    except FetchError as exc:
        fail(str(exc))
    report = {"fetched": fetched.as_dict()}
    if not no_ingest and fetched.written:
        report.update(with_warehouse(s, lambda con: pipeline.ingest_paths(con, [fetched.folder]), write=True))
    ok = report.get("ok", True)
    if as_json:
        emit_json(report, ok=ok)
    else:
        console.print(f"fred: {len(fetched.written)} series written, {len(fetched.unchanged)} unchanged "
                      f"({sum(fetched.observations.values()):,} observations) in {fetched.folder}", soft_wrap=True)
        if "batch" in report:
            print_batch(report)
    if not ok:
        raise typer.Exit(1)
