"""A one-line banner: when the screen's data was read, or why it is stale (a writer holds the file)."""

from __future__ import annotations

import time

from textual.widgets import Static

from ..data import WarehouseBusy, WarehouseMissing, human_age


class Freshness(Static):
    DEFAULT_CLASSES = "freshness"

    def __init__(self, **kw) -> None:
        super().__init__("reading…", **kw)
        self._read_at: float | None = None

    def fresh(self, seconds: float) -> None:
        self._read_at = time.monotonic()
        self.remove_class("stale")
        self.update(f"read in {seconds * 1000:.0f} ms" if not self.app.stable else "read")

    def loading(self, what: str) -> None:
        self.update(f"{what}…")

    def failed(self, error: BaseException) -> None:
        self.add_class("stale")
        if isinstance(error, WarehouseBusy):
            who = f"pid {error.pid}" if error.pid and not self.app.stable else "another process"
            age = "" if self._read_at is None else f"; showing data read {human_age(time.monotonic() - self._read_at)} ago"
            self.update(f"warehouse busy: a writer ({who}) holds it{age}; retrying by itself (r: now)")
        elif isinstance(error, WarehouseMissing):
            self.update(str(error))
        else:
            self.update(f"read failed: {type(error).__name__}: {error}")
