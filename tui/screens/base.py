"""What every data screen shares: a freshness banner, one read worker (thread) per refresh, and tabs:
`t` shows the next tab of the screen's TabbedContent, and showing a tab focuses the table named for it
in PANE_FOCUS (so arrows move in the table, never on the tab strip)."""

from __future__ import annotations

import time
from typing import Any

from textual import work
from textual.screen import Screen
from textual.widgets import ContentSwitcher, TabbedContent, TabPane

from ..messages import DataRead, ReadFailed
from ..widgets.freshness import Freshness


class DataScreen(Screen):
    KEY = "screen"
    loaded: Any = None  # the last result painted (kept when a later read fails)
    reads: int = 0
    failures: int = 0

    PANE_FOCUS: dict[str, str] = {}  # tab pane id -> the selector of the widget to focus when it shows

    def action_next_tab(self) -> None:
        tabs = self.query(TabbedContent).first()
        panes = [p.id for p in tabs.get_child_by_type(ContentSwitcher).children if isinstance(p, TabPane)]
        if panes:
            tabs.active = panes[(panes.index(tabs.active) + 1) % len(panes)] if tabs.active in panes else panes[0]

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        target = self.PANE_FOCUS.get(event.pane.id or "")
        if target:
            self.query_one(target).focus()

    def load(self) -> Any:  # runs in a worker thread
        raise NotImplementedError

    def paint(self, result: Any) -> None:
        raise NotImplementedError

    def on_mount(self) -> None:
        self.refresh_data()

    def on_screen_resume(self) -> None:
        if self.loaded is not None:
            self.refresh_data()

    _in_flight = False

    def refresh_data(self) -> None:
        """Start a read unless one is already running (timers never pile up reads)."""
        if self._in_flight:
            return
        self._in_flight = True
        self._read_worker()

    @work(thread=True, group="read")
    def _read_worker(self) -> None:
        t0 = time.perf_counter()
        try:
            result = self.load()
        except Exception as exc:  # noqa: BLE001 - shown in the banner, the screen keeps its data
            self.post_message(ReadFailed(self.KEY, exc))
            return
        self._seconds = time.perf_counter() - t0
        self.post_message(DataRead(self.KEY, result))

    def on_data_read(self, message: DataRead) -> None:
        self._in_flight = False
        self.loaded = message.result
        self.reads += 1
        self.query_one(Freshness).fresh(getattr(self, "_seconds", 0.0))
        self.paint(message.result)

    def on_read_failed(self, message: ReadFailed) -> None:
        self._in_flight = False
        self.failures += 1
        self.last_error = message.error
        self.query_one(Freshness).failed(message.error)
