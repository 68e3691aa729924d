"""Driving the real app with Textual's pilot: keys, and waiting for the reads and actions they start."""

from __future__ import annotations

import asyncio

from textual.worker import WorkerCancelled


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
