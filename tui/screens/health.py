"""Health: latest result per table and rule, its history and samples; the quarantine with release/drop."""

from __future__ import annotations

import json
import re

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from .. import data
from ..messages import ActionFinished, CheckSelected
from ..widgets.checks_table import ChecksTable
from ..widgets.freshness import Freshness
from ..widgets.rows_table import RowsTable
from .base import DataScreen
from .confirm import ConfirmScreen


_TS = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d(:?\d\d)?)?")


class HealthScreen(DataScreen):
    KEY = "health"
    BINDINGS = [
        ("a", "toggle_all", "All/problems"),
        ("R", "release", "Release"),
        ("D", "drop", "Drop"),
    ]
    only_problems = True

    def compose(self) -> ComposeResult:
        yield Header()
        yield Freshness()
        with TabbedContent(id="health-tabs"):
            with TabPane("Checks", id="checks-tab"):
                yield ChecksTable(id="checks")
                with VerticalScroll(id="check-detail-box"):
                    yield Static("select a check", id="check-detail")
            with TabPane("Quarantine", id="quarantine-tab"):
                yield RowsTable(id="q-groups")
                with Horizontal(id="q-bottom"):
                    yield RowsTable(id="q-entries")
                    with VerticalScroll(id="q-payload-box"):
                        yield Static("select an entry", id="q-payload")
        yield Footer()

    def load(self) -> dict:
        return data.health(self.app.warehouse)

    def paint(self, result: dict) -> None:
        self.query_one(ChecksTable).show(result["checks"], self.only_problems)
        groups = result["quarantine"]
        self.groups = groups
        self.query_one("#q-groups", RowsTable).show(["table", "rule", "rows", "files", "example"], groups,
                                                    keys=[str(i) for i in range(len(groups))])
        if not result["checks"]:
            self.query_one("#check-detail", Static).update("no health checks recorded yet: run `cbi health`")

    def action_toggle_all(self) -> None:
        self.only_problems = not self.only_problems
        if self.loaded is not None:
            self.query_one(ChecksTable).show(self.loaded["checks"], self.only_problems)

    # --- a check: samples + history ------------------------------------------------------------
    def on_check_selected(self, message: CheckSelected) -> None:
        c = message.check
        self.show_check(c)
        self.load_history(c["table_name"], c["rule"], c.get("rule_columns"))

    def show_check(self, c: dict, history: list[dict] | None = None) -> None:
        mask = (lambda t: _TS.sub("<ts>", t)) if self.app.stable else (lambda t: t)
        lines = [Text.assemble((f"{c['table_name']}  {c['rule']}", "bold"), f"  ({c.get('severity') or '-'}, {c['status']})"),
                 Text(mask(c.get("message") or ""))]
        samples = data.samples(c.get("sample_keys"))
        lines.append(Text(f"sample of offending rows/keys ({len(samples)}):", style="bold"))
        for s in samples:
            lines.append(Text(mask(json.dumps(s, default=str)), overflow="fold"))
        if history is not None:
            lines.append(Text(f"history (latest {len(history)}):", style="bold"))
            for h in history:
                when = "<time>" if self.app.stable else str(h["checked_at"])[:19]
                m = "" if h["measured_value"] is None else f"{h['measured_value']:,.6g}"
                lines.append(Text(f"  {when}  {h['status']:<4}  {m:>10}  {h.get('engine') or ''}"))
        self.detail_plain = "\n".join(line.plain for line in lines)
        self.query_one("#check-detail", Static).update(Group(*lines))

    @work(thread=True, exclusive=True, group="history")
    def load_history(self, table: str, rule: str, cols: str | None) -> None:
        try:
            hist = data.check_history(self.app.warehouse, table, rule, cols)
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self.query_one(Freshness).failed, exc)
            return
        current = self.query_one(ChecksTable)
        def paint():
            row = current.cursor_row
            if 0 <= row < len(current.checks) and current.checks[row]["rule"] == rule and current.checks[row]["table_name"] == table:
                self.show_check(current.checks[row], hist)
        self.app.call_from_thread(paint)

    # --- the quarantine ---------------------------------------------------------------------
    def selected_group(self) -> dict | None:
        t = self.query_one("#q-groups", RowsTable)
        groups = getattr(self, "groups", [])
        if not groups or t.cursor_row is None or not (0 <= t.cursor_row < len(groups)):
            return None
        return groups[t.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "q-groups":
            g = self.selected_group()
            if g:
                self.load_entries(g["table"], g["rule"])
        elif event.data_table.id == "q-entries" and event.row_key is not None and event.row_key.value:
            self.load_payload(event.row_key.value)

    @work(thread=True, exclusive=True, group="entries")
    def load_entries(self, table: str, rule: str) -> None:
        try:
            rows = data.quarantine_entries(self.app.warehouse, table, rule)
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self.query_one(Freshness).failed, exc)
            return
        self.app.call_from_thread(
            self.query_one("#q-entries", RowsTable).show, ["record_number", "reason", "source_file", "quarantine_id"], rows,
            [r["quarantine_id"] for r in rows],
        )

    @work(thread=True, exclusive=True, group="payload")
    def load_payload(self, qid: str) -> None:
        try:
            entry = data.quarantine_show(self.app.warehouse, qid)
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self.query_one(Freshness).failed, exc)
            return
        text = Text.assemble((f"{entry['rule']}: ", "bold"), str(entry.get("reason") or ""), "\n\n", json.dumps(
            json.loads(entry["payload"]) if entry.get("payload") else None, indent=1, default=str))
        self.app.call_from_thread(self.query_one("#q-payload", Static).update, text)

    def _confirm_then(self, action: str) -> None:
        g = self.selected_group()
        if g is None:
            self.notify("no held quarantine rows selected (Quarantine tab)", severity="warning")
            return
        verb = {"release": "Release (re-load through the same rules)", "drop": "Drop (kept for the record, never loaded)"}[action]
        question = f"{verb} {g['rows']:,} held rows of {g['table']} that broke {g['rule']}?"

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_quarantine(action, g["table"], g["rule"])

        self.app.push_screen(ConfirmScreen(question), answered)

    def action_release(self) -> None:
        self._confirm_then("release")

    def action_drop(self) -> None:
        self._confirm_then("drop")

    @work(thread=True, exclusive=True, group="action")
    def run_quarantine(self, action: str, table: str, rule: str) -> None:
        from cbi_local import quarantine as qmod

        self.app.call_from_thread(self.query_one(Freshness).loading, f"{action} {table} {rule}")
        try:
            if action == "release":
                r = data.write(self.app.warehouse, lambda con: qmod.release(con, rule=rule, table=table))
                text = f"released {r.released:,}: loaded {r.loaded:,}, duplicates {r.duplicates:,}, quarantined again {r.requarantined:,}"
                result = r.__dict__
            else:
                n = data.write(self.app.warehouse, lambda con: qmod.drop(con, rule=rule, table=table))
                text, result = f"dropped {n:,} rows", {"dropped": n}
        except Exception as exc:  # noqa: BLE001
            self.post_message(ActionFinished(action, False, f"{action} failed: {exc}"))
            return
        self.post_message(ActionFinished(action, True, text, result))

    def on_action_finished(self, message: ActionFinished) -> None:
        self.app.last_action = message
        self.notify(message.text, severity="information" if message.ok else "error")
        self.refresh_data()
