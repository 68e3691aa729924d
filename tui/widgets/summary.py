"""The overview's key facts: warehouse, checks, batches, sync, daemon."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ..data import Overview, age_seconds, human_age, human_bytes


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
        t.add_row("last check", when(ov.checked_at))
        t.add_row("quarantine", Text(f"{ov.quarantine_held:,} rows held", style="yellow" if ov.quarantine_held else ""))
        t.add_row("batches", Text.assemble(
            f"{sum(ov.batches.values())}: ", (f"{ov.pending_batches} pending", "yellow" if ov.pending_batches else ""), ", ",
            (f"{ov.failed_batches} failed", "red" if ov.failed_batches else ""), f", {ov.batches.get('pushed', 0)} pushed"))
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
            if d.get("error"):
                t.add_row("", Text(str(d["error"]), style="red", overflow="ellipsis"))
        self.update(t)
