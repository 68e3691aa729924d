"""Health: latest result per table and rule, its history and samples; the quarantine with release/drop.

Safety: release (`R`) and drop (`D`) are keys of the Quarantine tab's groups table, so they act only
while that table is visible and focused, on its highlighted group (table, rule); elsewhere they say
where to go and do nothing. The confirm dialog names the table, rule and row count, starts on No, and
the action runs only if exactly that many rows are still held. A drop is undone with `u` (the latest
drop goes back to held). Repaints keep every table's cursor on the same row key."""

from __future__ import annotations

import json
import re

from rich.console import Group
from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from .. import data
from ..messages import ActionFinished, CheckSelected
from ..widgets.checks_table import ChecksTable, check_key
from ..widgets.freshness import Freshness
from ..widgets.rows_table import RowsTable
from .base import DataScreen
from .confirm import ConfirmScreen


_TS = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d(:?\d\d)?)?")


class QuarantineGroups(RowsTable):
    """The held quarantine groups (one row per table and rule, keyed by both): R/D live here."""

    BINDINGS = [
        Binding("R", "quarantine('release')", "Release"),
        Binding("D", "quarantine('drop')", "Drop"),
    ]

    def action_quarantine(self, action: str) -> None:
        self.screen.confirm_quarantine(action)


def group_key(g: dict) -> str:
    return f"{g['table']}\x1f{g['rule']}"


class HealthScreen(DataScreen):
    KEY = "health"
    AUTO_FOCUS = "#checks"
    BINDINGS = [
        Binding("a", "toggle_all", "All/problems"),
        Binding("t", "next_tab", "Next tab"),
        Binding("u", "undo_drop", "Undo drop"),
        # Pressed anywhere but the focused groups table: explain, act on nothing.
        Binding("R", "not_here('release')", "Release", show=False),
        Binding("D", "not_here('drop')", "Drop", show=False),
    ]
    only_problems = True
    groups: list[dict] = []
    groups_by_key: dict[str, dict] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Freshness()
        with TabbedContent(id="health-tabs"):
            with TabPane("Checks", id="checks-tab"):
                yield ChecksTable(id="checks")
                with VerticalScroll(id="check-detail-box"):
                    yield Static("select a check", id="check-detail")
            with TabPane("Quarantine", id="quarantine-tab"):
                yield QuarantineGroups(id="q-groups")
                with Horizontal(id="q-bottom"):
                    yield RowsTable(id="q-entries")
                    with VerticalScroll(id="q-payload-box"):
                        yield Static("select an entry", id="q-payload")
        yield Footer()

    # One connection per refresh: the read brings the checks, the groups and the details the cursors
    # are on (history, entries, payload), and the panes paint from `prefetched`; only a detail the
    # user moves to afterwards is read on its own.
    prefetched: dict = {}
    _want: tuple = (None, None, None)

    def refresh_data(self) -> None:
        self._want = self._cursor_details()  # on the UI thread, before the read starts
        super().refresh_data()

    def _cursor_details(self) -> tuple:
        checks = self.query_one(ChecksTable)
        row, check = checks.cursor_row, None
        if 0 <= row < len(checks.checks) and checks.checks[row]["status"] != data.RECORDED:
            c = checks.checks[row]
            check = (c["table_name"], c["rule"], c.get("rule_columns"))
        g = self.highlighted_group()
        return check, (g["table"], g["rule"]) if g else None, self.query_one("#q-entries", RowsTable).selected_key

    def load(self) -> dict:
        check, group, entry = self._want
        return data.health(self.app.warehouse, check, group, entry, self.only_problems)

    def paint(self, result: dict) -> None:
        self.prefetched = {k: result[k] for k in ("history", "entries", "payloads")}
        self.query_one(ChecksTable).show(result["checks"], self.only_problems)
        groups = result["quarantine"]
        self.groups = groups
        self.groups_by_key = {group_key(g): g for g in groups}
        self.query_one("#q-groups", RowsTable).show(
            ["table", "rule", "rows", "files", "example"],
            [dict(g, example=data.short_reason(g.get("example"), g["rule"])) for g in groups],
            keys=[group_key(g) for g in groups], fit="example")
        if not groups:
            self.query_one("#q-entries", RowsTable).show(["record", "reason", "source_file", "quarantine_id"], [])
            self.query_one("#q-bottom").border_title = "nothing held"
        if not result["checks"]:
            self.query_one("#check-detail", Static).update("no health checks recorded yet: run `cbi health`")

    PANE_FOCUS = {"checks-tab": "#checks", "quarantine-tab": "#q-groups"}

    def action_toggle_all(self) -> None:
        self.only_problems = not self.only_problems
        if self.loaded is not None:
            self.query_one(ChecksTable).show(self.loaded["checks"], self.only_problems)

    # --- a check: samples + history ------------------------------------------------------------
    def on_check_selected(self, message: CheckSelected) -> None:
        c = message.check
        checks = self.query_one(ChecksTable)
        row = checks.cursor_row
        if not (0 <= row < len(checks.checks)) or check_key(checks.checks[row]) != check_key(c):
            return  # a row a repaint passed through on its way back to the cursor's row
        self.show_check(c)
        if c["status"] != data.RECORDED:  # a migration's defect is one recording, not a series of checks
            key = (c["table_name"], c["rule"], c.get("rule_columns"))
            history = self.prefetched.get("history", {}).get(key)
            if history is not None:
                self.show_check(c, history)
            else:
                self.load_history(*key)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a check opens its held rows in the Quarantine tab (when it has any)."""
        if event.data_table.id != "checks":
            return
        c = self.query_one(ChecksTable).by_key.get(event.row_key.value or "")
        if c is None:
            return
        key = group_key({"table": c["table_name"], "rule": c["rule"]})
        if key not in self.groups_by_key:
            self.notify(f"no held rows for {c['table_name']} / {c['rule']}", severity="information")
            return
        groups = self.query_one("#q-groups", RowsTable)
        self.query_one("#health-tabs", TabbedContent).active = "quarantine-tab"
        groups.move_cursor(row=groups.get_row_index(key))
        groups.focus()

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
    def highlighted_group(self) -> dict | None:
        """The group under the groups table's cursor (by key), visible or not: for painting entries."""
        return self.groups_by_key.get(self.query_one("#q-groups", RowsTable).selected_key or "")

    def selected_group(self) -> dict | None:
        """The group an action may act on: the Quarantine tab is showing, its groups table has the
        focus, and its cursor is on a group. Anything else is None."""
        if self.query_one("#health-tabs", TabbedContent).active != "quarantine-tab":
            return None
        table = self.query_one("#q-groups", RowsTable)
        if self.focused is not table or not table.display:
            return None
        return self.highlighted_group()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "q-groups":
            g = self.highlighted_group()
            if g:
                rows = self.prefetched.get("entries", {}).get((g["table"], g["rule"]))
                if rows is not None:
                    self.show_entries(rows, g)
                else:
                    self.load_entries(g["table"], g["rule"])
        elif event.data_table.id == "q-entries":
            qid = self.query_one("#q-entries", RowsTable).selected_key  # the cursor's row, not one a repaint passed
            if not qid:
                return
            entry = self.prefetched.get("payloads", {}).get(qid)
            if entry is not None:
                self.show_payload(entry)
            else:
                self.load_payload(qid)

    def show_entries(self, rows: list[dict], group: dict) -> None:
        """A group's held rows (the first data.ENTRIES_LIMIT), the reason without the source path and
        record (their own columns) and as wide as the pane allows; the full text is in the payload pane."""
        if group_key(group) != self.query_one("#q-groups", RowsTable).selected_key:
            return  # entries of a group the cursor has left
        shown = [{"record": r["record_number"], "reason": data.short_reason(r.get("reason"), r.get("rule") or group["rule"], r.get("source_file")),
                  "source_file": r.get("source_file"), "quarantine_id": r["quarantine_id"]} for r in rows]
        self.query_one("#q-entries", RowsTable).show(["record", "reason", "source_file", "quarantine_id"], shown,
                                                     [r["quarantine_id"] for r in rows], fit="reason")
        held = group["rows"]
        self.query_one("#q-bottom").border_title = (
            f"showing {len(rows):,} of {held:,} held rows" if len(rows) < held else f"{held:,} held rows")

    def show_payload(self, entry: dict) -> None:
        text = Text.assemble((f"{entry['rule']}: ", "bold"), str(entry.get("reason") or ""), "\n\n", json.dumps(
            json.loads(entry["payload"]) if entry.get("payload") else None, indent=1, default=str))
        self.query_one("#q-payload", Static).update(text)

    @work(thread=True, exclusive=True, group="entries")
    def load_entries(self, table: str, rule: str) -> None:
        try:
            rows = data.quarantine_entries(self.app.warehouse, table, rule)
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self.query_one(Freshness).failed, exc)
            return
        group = self.groups_by_key.get(group_key({"table": table, "rule": rule}))
        if group is not None:
            self.app.call_from_thread(self.show_entries, rows, group)

    @work(thread=True, exclusive=True, group="payload")
    def load_payload(self, qid: str) -> None:
        try:
            entry = data.quarantine_show(self.app.warehouse, qid)
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self.query_one(Freshness).failed, exc)
            return
        self.app.call_from_thread(self.show_payload, entry)

    def action_not_here(self, action: str) -> None:
        self.notify(f"{action} acts on a held group: open the Quarantine tab (t), highlight a group, press "
                    f"{'R' if action == 'release' else 'D'} there. Nothing was changed.", severity="warning")

    def confirm_quarantine(self, action: str) -> None:
        g = self.selected_group()
        if g is None:
            if self.focused is self.query_one("#q-groups") and not self.groups:
                self.notify("nothing is held in the quarantine", severity="information")
            else:
                self.action_not_here(action)
            return
        table, rule, rows = g["table"], g["rule"], g["rows"]
        if action == "release":
            question = f"Release {rows:,} held rows?"
            after = "re-loaded through the same rules; a row that still breaks one is held again"
        else:
            question = f"Drop {rows:,} held rows?"
            after = "marked dropped: never loaded, kept in monitoring.quarantine"
        details = [("table", table), ("rule", rule), ("rows", f"{rows:,} held"), ("then", after)]
        if action == "drop":
            details.append(("undo", "u on Health (or `cbi quarantine restore --table T --rule R`) puts the dropped rows back to held"))

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_quarantine(action, table, rule, rows)

        self.app.push_screen(ConfirmScreen(question, details), answered)

    def action_undo_drop(self) -> None:
        self.find_drop()

    @work(thread=True, exclusive=True, group="action")
    def find_drop(self) -> None:
        try:
            drop = data.latest_drop(self.app.warehouse)
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self.query_one(Freshness).failed, exc)
            return
        if drop is None:
            self.app.call_from_thread(self.notify, "no dropped quarantine rows to put back", severity="information")
            return
        when = "<time>" if self.app.stable else str(drop["resolved_at"])[:19]
        details = [("table", drop["table"]), ("rule", drop["rule"]), ("rows", f"{drop['rows']:,} dropped"), ("dropped", when),
                   ("then", "held again: release or drop them as any held row")]

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_undo(drop)

        self.app.call_from_thread(self.app.push_screen, ConfirmScreen(f"Undo the latest drop: {drop['rows']:,} rows back to held?", details), answered)

    @work(thread=True, exclusive=True, group="action")
    def run_undo(self, drop: dict) -> None:
        try:
            n = data.write(self.app.warehouse, lambda con: data.undo_drop(con, drop))
        except Exception as exc:  # noqa: BLE001
            self.post_message(ActionFinished("undo_drop", False, f"undo failed: {exc}"))
            return
        self.post_message(ActionFinished("undo_drop", True, f"{n:,} rows of {drop['table']} / {drop['rule']} held again", {"held": n}))

    @work(thread=True, exclusive=True, group="action")
    def run_quarantine(self, action: str, table: str, rule: str, rows: int) -> None:
        """Release or drop the held rows of (table, rule), only if `rows` (what the user confirmed) are held."""
        from cbi_local import quarantine as qmod

        self.app.call_from_thread(self.query_one(Freshness).loading, f"{action} {table} {rule}")

        def release(con):
            held = data.held_rows(con, table, rule)
            if held != rows:
                raise ValueError(f"{held:,} rows of {table} / {rule} are held now, not the {rows:,} confirmed: nothing released")
            return qmod.release(con, rule=rule, table=table)

        try:
            if action == "release":
                r = data.write(self.app.warehouse, release)
                text = f"released {r.released:,}: loaded {r.loaded:,}, duplicates {r.duplicates:,}, quarantined again {r.requarantined:,}"
                result = r.__dict__
            else:
                n = data.write(self.app.warehouse, lambda con: data.drop_held(con, table, rule, rows))
                text, result = f"dropped {n:,} rows of {table} / {rule} (u puts them back)", {"dropped": n}
        except Exception as exc:  # noqa: BLE001
            self.post_message(ActionFinished(action, False, f"{action} failed: {exc}"))
            return
        self.post_message(ActionFinished(action, True, text, result))

    def on_action_finished(self, message: ActionFinished) -> None:
        self.app.last_action = message
        self.notify(message.text, severity="information" if message.ok else "error")
        self.refresh_data()
