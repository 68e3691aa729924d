"""The CBI Local terminal UI: six screens (modes) over the warehouse, keys in the footer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding

from . import data
from .screens.coverage import CoverageScreen
from .screens.health import HealthScreen
from .screens.help import HelpScreen
from .screens.overview import OverviewScreen
from .screens.sync import SyncScreen
from .screens.tables import TablesScreen
from .screens.training import TrainingScreen


class CbiApp(App):
    """`home` is the warehouse home. `stable=True` masks values that change between runs (paths,
    timestamps, ages, sizes, ids) so SVG snapshots compare; `refresh_every` seconds re-reads the
    Overview (0 disables)."""

    TITLE = "CBI Local"
    CSS_PATH = "app.tcss"
    MODES = {
        "overview": OverviewScreen,
        "tables": TablesScreen,
        "health": HealthScreen,
        "coverage": CoverageScreen,
        "sync": SyncScreen,
        "training": TrainingScreen,
    }
    DEFAULT_MODE = "overview"
    # Help, Quit and Refresh first: the footer lists a screen's own keys, then these in order, and cuts what does
    # not fit; at 80 columns the screens' names are the ones that may go (they stay in Help).
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("r", "refresh", "Refresh"),
        Binding("1", "mode('overview')", "Overview"),
        Binding("2", "mode('tables')", "Tables"),
        Binding("3", "mode('health')", "Health"),
        Binding("4", "mode('coverage')", "Coverage"),
        Binding("5", "mode('sync')", "Sync"),
        Binding("6", "mode('training')", "Training"),
    ]

    def __init__(self, home: Path, stable: bool = False, refresh_every: float = 5.0) -> None:
        super().__init__()
        self.home = Path(home)
        self.warehouse = data.warehouse_path(self.home)
        self.stable = stable
        self.refresh_every = refresh_every
        self.last_overview: data.Overview | None = None
        self.pending_table: str | None = None
        self.last_action: Any = None
        self.sub_title = "<home>" if stable else str(self.home)

    def action_mode(self, mode: str) -> None:
        self.switch_mode(mode)

    def action_refresh(self) -> None:
        screen = self.screen
        if hasattr(screen, "action_refresh"):
            screen.action_refresh()
        elif hasattr(screen, "refresh_data"):
            screen.refresh_data()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def show_table(self, fqn: str) -> None:
        """Open the Tables screen on `fqn` (Enter on a table in the Overview)."""
        self.pending_table = fqn
        self.switch_mode("tables")
        screen = self.screen
        if isinstance(screen, TablesScreen) and screen.loaded is not None:
            self.pending_table = None
            screen.query_one("#tables-tree").select_fqn(fqn)
            screen.select(fqn)


    def export_text(self) -> str:
        """The current screen as plain text (the pilot's export, for docs and tests)."""
        import io

        from rich.console import Console

        width, height = self.size
        console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system="truecolor",
                          record=True, legacy_windows=False, safe_box=False)
        console.print(self.screen._compositor.render_update(full=True, screen_stack=self._background_screens))
        return console.export_text()


def run(home: Path) -> None:
    CbiApp(home).run()
