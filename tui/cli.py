"""`cbi tui [--home DIR]`: registered on the main app. Textual is imported only when the command runs,
so importing this module (from cbi_local.cli) keeps the headless packages free of Textual.

The lead registers it in cbi_local/cli.py with:
    from tui import cli as _tui_cli  # noqa: E402,F401  (registers tui)
"""

from __future__ import annotations

from cbi_local.cli import HomeOpt, app, fail
from cbi_local.config import settings


@app.command()
def tui(home: HomeOpt = None) -> None:
    """Open the terminal UI: overview, tables, health and quarantine, coverage, sync, training."""
    s = settings(home)
    if not s.warehouse_path.exists():
        fail(f"no warehouse at {s.warehouse_path}: run `cbi init --home {s.home}` first")
    from .app import run

    run(s.home)
