"""`cbi tui [--home DIR]` (`commands`, registered by cbi_local/cli.py). Textual is imported only
when the command runs, so importing this module keeps the headless packages free of Textual."""

from __future__ import annotations

import typer

from cbi_local.cli_base import HomeOpt, fail
from cbi_local.config import settings

commands = typer.Typer()


@commands.command()
def tui(home: HomeOpt = None) -> None:
    """Open the terminal UI: overview, tables, health and quarantine, coverage, sync, training."""
    s = settings(home)
    if not s.warehouse_path.exists():
        fail(f"no warehouse at {s.warehouse_path}: run `cbi init --home {s.home}` first")
    from .app import run

    run(s.home)
