"""The overview's key facts: warehouse, checks, batches, sync, daemon."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from data_contracts.tables.ops import BATCH_STATUSES

from ..data import Overview, age_seconds, human_age, human_bytes


# How the batches line names each status (ops.BatchStatus); every status present is shown, so the parts
# add up to the total.
BATCH_WORDS = {"open": ("open", "yellow"), "validated": ("pending", "yellow"), "failed_validation": ("failed", "red"),
               "pushed": ("pushed", ""), "empty": ("empty", "dim"), "rolled_back": ("rolled back", "dim")}


def batches_line(batches: dict[str, int]) -> Text:
    """`6: 5 pushed, 1 empty (loaded nothing)`: the count of every status present, in the contract's order."""
    order = [s for s in BATCH_STATUSES if s in batches] + sorted(set(batches) - set(BATCH_STATUSES))
    parts: list[Any] = [f"{sum(batches.values())}" + (": " if order else "")]
    for i, status in enumerate(order):
        word, style = BATCH_WORDS.get(status, (status, ""))
        parts += ([", "] if i else []) + [(f"{batches[status]} {word}", style)]
    return Text.assemble(*parts)


class Summary(Static):
    def show(self, ov: Overview) -> None:
        stable = self.app.stable
        t = Table.grid(padding=(0, 1))
        t.add_column(style="bold", no_wrap=True)
        t.add_column()

        def when(ts) -> str:
            if ts is None:
                return "never"
            return "<time>" if stable else f"{human_age(age_seconds(ts))} ago"

        t.add_row("warehouse", Text("<home>/warehouse.duckdb" if stable else str(ov.path), overflow="fold"))
        t.add_row("size", "<size>" if stable else f"{human_bytes(ov.size_bytes)}" + (f" + WAL {human_bytes(ov.wal_bytes)}" if ov.wal_bytes else ""))
        n = sum(1 for s in ov.tables if s.exists)
        rows = sum(s.rows or 0 for s in ov.tables)
        t.add_row("tables", f"{n} of {len(ov.tables)} ({rows:,} rows)")
        style = "red" if ov.checks_failing else "green"
        t.add_row("checks", Text.assemble((f"{ov.checks_failing} failing", style), f", {ov.checks_warning} warnings of {ov.checks_total}"))
        if ov.recorded_defects:
            t.add_row("", Text(f"{ov.recorded_defects} migration defects (rows quarantined then)", style="cyan"))
        t.add_row("last check", when(ov.checked_at))
        t.add_row("quarantine", Text(f"{ov.quarantine_held:,} rows held", style="yellow" if ov.quarantine_held else ""))
        t.add_row("batches", batches_line(ov.batches))
        t.add_row("last push", when(ov.last_push))
        t.add_row("last pull", when(ov.last_pull))
        if ov.last_sync_error:
            e = ov.last_sync_error
            t.add_row("sync error", Text(f"{e['step']}: {e['error']}", style="red", overflow="ellipsis"))
        d = ov.daemon
        if d is None:
            t.add_row("daemon", Text("no daemon (no heartbeat recorded)", style="dim"))
        else:
            age = age_seconds(d["heartbeat_at"])
            style = "green" if d["status"] == "ok" and age is not None and age < 900 else "yellow"
            beat = "<time>" if stable else f"{human_age(age)} ago"
            t.add_row("daemon", Text(f"heartbeat {beat}, {d['cycles']} cycles, {d['status']}", style=style))
            if d.get("message"):  # the last cycle: what it fetched, ingested, pushed and pulled
                t.add_row("", Text(str(d["message"]), style="dim", overflow="ellipsis", no_wrap=True))
            if d.get("error"):
                t.add_row("", Text(str(d["error"]), style="red", overflow="ellipsis"))
        self.update(t)
