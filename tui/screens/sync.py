"""Sync: batches ledger, last push/pull per table, last error, daemon; push/pull/diff in workers."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from .. import data
from ..messages import ActionFinished
from ..widgets.freshness import Freshness
from ..widgets.rows_table import RowsTable
from .base import DataScreen


class SyncScreen(DataScreen):
    KEY = "sync"
    BINDINGS = [("p", "sync('push')", "Push"), ("l", "sync('pull')", "Pull"), ("d", "sync('diff')", "Diff"), ("t", "next_tab", "Next tab")]
    AUTO_FOCUS = "#ledger"
    PANE_FOCUS = {"ledger-tab": "#ledger", "tables-tab": "#per-table", "parity-tab": "#parity"}
    busy: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Freshness()
        yield Static("", id="sync-status")
        with TabbedContent(id="sync-tabs"):
            with TabPane("Batches", id="ledger-tab"):
                yield RowsTable(id="ledger")
            with TabPane("Per table", id="tables-tab"):
                yield RowsTable(id="per-table")
            with TabPane("Parity", id="parity-tab"):
                yield RowsTable(id="parity")
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#parity", RowsTable).show(["parity"], [("press d to compare every synced table with BigQuery",)])

    def load(self) -> dict[str, Any]:
        return data.sync_view(self.app.warehouse)

    def paint(self, result: dict[str, Any]) -> None:
        stable = self.app.stable
        ledger = [dict(r, table_names=", ".join(r["table_names"] or [])) for r in result["ledger"]]
        self.query_one("#ledger", RowsTable).show(
            ["status", "kind", "batch_id", "created_at", "rows_loaded", "rows_quarantined", "pushed_at", "error", "table_names"], ledger)
        st = result["status"]
        t = Table.grid(padding=(0, 1))
        t.add_column(style="bold", no_wrap=True)
        t.add_column()
        if st is None:
            t.add_row("sync", Text("not available yet (the sync module or its journal tables are missing)", style="dim"))
            self.query_one("#sync-status", Static).update(t)
            return
        b = st["batches"]
        t.add_row("batches", f"{b['pending']} pending, {b['pushed']} pushed, {b['failed_validation']} failed validation, {b['failed']} failed")
        e = st["last_error"]
        t.add_row("last error", Text("none", style="green") if not e else Text(f"{e['step']} {e['table'] or ''}: {e['error']}", style="red"))
        d = st["daemon"]
        if d is None:
            t.add_row("daemon", Text("no daemon (no heartbeat recorded)", style="dim"))
        else:
            age = "<time>" if stable else data.human_age(data.age_seconds(d["heartbeat_at"])) + " ago"
            t.add_row("daemon", f"{'<host>' if stable else d['hostname']} heartbeat {age}, {d['cycles']} cycles, {d['status']}")
        self.query_one("#sync-status", Static).update(t)
        per: dict[str, dict] = {}
        for r in st["last_push"]:
            per.setdefault(r["table"], {"table": r["table"]}).update(last_push=r["at"], rows_staged=r["rows_staged"])
        for r in st["last_pull"]:
            per.setdefault(r["table"], {"table": r["table"]}).update(last_pull=r["at"])
        rows = [{"table": k, "last push": "<v>" if stable and v.get("last_push") else v.get("last_push"),
                 "rows staged": v.get("rows_staged"), "last pull": "<v>" if stable and v.get("last_pull") else v.get("last_pull")}
                for k, v in sorted(per.items())]
        self.query_one("#per-table", RowsTable).show(["table", "last push", "rows staged", "last pull"],
                                                     rows or [{"table": "nothing pushed or pulled yet"}])

    def action_sync(self, what: str) -> None:
        if not data.sync_module_available():
            self.notify("sync is not available yet", severity="warning")
            return
        if self.busy:
            self.notify(f"{self.busy} is still running", severity="warning")
            return
        self.busy = what
        self.query_one(Freshness).loading(f"{what} with BigQuery running in the background")
        self.run_sync(what)

    @work(thread=True, exclusive=True, group="sync-action")
    def run_sync(self, what: str) -> None:
        from cbi_local.config import settings

        from sync import pull as pull_mod
        from sync import push as push_mod
        from sync.bigquery.client import make_client
        from sync.journal import redact

        s = settings(self.app.home)
        try:
            client = make_client(s)
            if what == "push":
                r = data.write(self.app.warehouse, lambda con: push_mod.push(con, client, s))
                pushed = [b.batch_id for b in r.batches if b.status == "pushed"]
                msg = f"pushed {len(pushed)} batches" + (f"; error: {r.error}" if r.error else "")
                self.post_message(ActionFinished(what, r.ok, msg, r.as_dict()))
            elif what == "pull":
                r = data.write(self.app.warehouse, lambda con: pull_mod.pull(con, client, s))
                n = sum(len(t.downloaded_partitions) for t in r.tables)
                self.post_message(ActionFinished(what, True, f"pulled {n} partitions over {len(r.tables)} tables", r.as_dict()))
            else:
                diffs = data.read(self.app.warehouse, lambda con: pull_mod.diff(con, client, s), attempts=40)
                ok = all(d.ok for d in diffs)
                self.post_message(ActionFinished(what, ok, f"diff: {sum(not d.ok for d in diffs)} of {len(diffs)} tables differ",
                                                 [d.as_dict() for d in diffs]))
        except Exception as exc:  # noqa: BLE001 - shown; credentials redacted
            self.post_message(ActionFinished(what, False, f"{what} failed: {redact(f'{type(exc).__name__}: {exc}')}"))

    def on_action_finished(self, message: ActionFinished) -> None:
        self.busy = None
        self.app.last_action = message
        self.notify(message.text, severity="information" if message.ok else "error", timeout=8)
        if message.action == "diff" and message.result is not None:
            rows = []
            for d in message.result:
                c = d["counts"]
                rows.append({"table": d["table"], "equal": c["equal"], "differ": c["differ"], "missing local": c["missing_local"],
                             "missing BigQuery": c["missing_bigquery"], "local rows": d["local_rows"], "BigQuery rows": d["bigquery_rows"]})
            self.query_one("#parity", RowsTable).show(
                ["table", "equal", "differ", "missing local", "missing BigQuery", "local rows", "BigQuery rows"], rows)
            self.query_one(TabbedContent).active = "parity-tab"
        self.refresh_data()
