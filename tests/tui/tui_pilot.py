"""Driving the real app with Textual's pilot: keys, waiting for the reads and actions they start,
counting the warehouse connections they open, and reading the warehouse beside the app."""

from __future__ import annotations

import asyncio
from pathlib import Path

import duckdb
from textual.worker import WorkerCancelled

from tui import data


async def settle(pilot, app) -> None:
    """Let the reads and actions the keys started finish (an exclusive worker superseded by a newer
    one ends cancelled: that is the newer one's business, wait again)."""
    for _ in range(3):
        await pilot.pause(0.1)
        for _ in range(10):
            try:
                await app.workers.wait_for_complete()
                break
            except WorkerCancelled:
                await pilot.pause(0.05)
    await pilot.pause(0.1)


async def press(pilot, app, *keys: str) -> None:
    for k in keys:
        await pilot.press(k)
        await settle(pilot, app)


def run(coro):
    return asyncio.run(coro)


def q(home: Path, sql: str, params=None):
    """A query on the test's warehouse, on a connection of its own (closed before the app reads again)."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def count_reads(monkeypatch) -> list[str]:
    """Every read-only connection the TUI opens from now on (tui.data._read_once), by the function it runs."""
    opened: list[str] = []
    real = data._read_once

    def counted(path, fn):
        opened.append(getattr(fn, "__qualname__", "?"))
        return real(path, fn)

    monkeypatch.setattr(data, "_read_once", counted)
    return opened
