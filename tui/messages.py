"""Events the TUI's widgets and workers post (Textual Message classes)."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class DataRead(Message):
    """A worker finished a read; `result` is what tui.data returned."""

    def __init__(self, key: str, result: Any) -> None:
        super().__init__()
        self.key = key
        self.result = result


class ReadFailed(Message):
    """A read gave up: the warehouse is busy (a writer holds it) or missing; `error` says which."""

    def __init__(self, key: str, error: BaseException) -> None:
        super().__init__()
        self.key = key
        self.error = error


class TableSelected(Message):
    def __init__(self, fqn: str) -> None:
        super().__init__()
        self.fqn = fqn


class CheckSelected(Message):
    def __init__(self, check: dict[str, Any]) -> None:
        super().__init__()
        self.check = check


class ActionFinished(Message):
    """A long action (release, drop, push, pull, diff) ended; `text` is shown to the user."""

    def __init__(self, action: str, ok: bool, text: str, result: Any = None) -> None:
        super().__init__()
        self.action = action
        self.ok = ok
        self.text = text
        self.result = result
