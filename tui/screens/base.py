"""What every data screen shares: a freshness banner, one read worker (thread) per refresh, and tabs:
`t` shows the next tab of the screen's TabbedContent, and showing a tab focuses the table named for it
in PANE_FOCUS (so arrows move in the table, never on the tab strip). A read that finds the warehouse
busy (a writer holds it) is retried by itself, after RETRY_BUSY seconds doubling to RETRY_BUSY_MAX,
while the screen is showing; the first read that succeeds ends the retries."""

from __future__ import annotations

import time
from typing import Any

from textual import work
from textual.screen import Screen
from textual.widgets import ContentSwitcher, TabbedContent, TabPane

from ..data import WarehouseBusy
from ..messages import DataRead, ReadFailed
from ..widgets.freshness import Freshness


RETRY_BUSY = 1.0
RETRY_BUSY_MAX = 8.0


class DataScreen(Screen):
    KEY = "screen"
    _retry_in = RETRY_BUSY
    _retry_timer = None
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
        if self.loaded is not None or self.failures:
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
        self._retry_in = RETRY_BUSY
        self.loaded = message.result
        self.reads += 1
        self.query_one(Freshness).fresh(getattr(self, "_seconds", 0.0))
        self.paint(message.result)

    def on_read_failed(self, message: ReadFailed) -> None:
        self._in_flight = False
        self.failures += 1
        self.last_error = message.error
        self.query_one(Freshness).failed(message.error)
        if isinstance(message.error, WarehouseBusy) and self._retry_timer is None:
            self._retry_timer = self.set_timer(self._retry_in, self._retry_busy)
            self._retry_in = min(self._retry_in * 2, RETRY_BUSY_MAX)

    def _retry_busy(self) -> None:
        self._retry_timer = None
        if self.is_current:
            self.refresh_data()
        else:  # another screen is showing: read again when this one comes back (on_screen_resume)
            self._retry_in = RETRY_BUSY
