"""Coverage: per root x schema and per FRED series, completeness, a month-by-year heat map and gaps."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static

from .. import data
from ..widgets.freshness import Freshness
from ..widgets.heatmap import HeatMap
from ..widgets.rows_table import RowsTable
from .base import DataScreen


class CoverageScreen(DataScreen):
    KEY = "coverage"
    BINDINGS = [("c", "refresh", "Compute")]
    items: list[Any] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Freshness()
        if data.coverage_module() is None:
            yield Static("coverage is not available yet (cbi_local/coverage.py has no coverage())", id="coverage-missing")
        else:
            with Horizontal():
                yield RowsTable(id="series")
                with VerticalScroll(id="coverage-detail"):
                    yield HeatMap(id="heatmap")
                    yield Static("", id="gaps")
        yield Footer()

    def on_mount(self) -> None:
        if data.coverage_module() is None:
            self.query_one(Freshness).update("not available yet")
            return
        self.query_one(Freshness).loading("computing coverage (calendar joins, may take seconds)")
        super().on_mount()

    def action_refresh(self) -> None:
        if data.coverage_module() is not None:
            self.query_one(Freshness).loading("computing coverage")
            self.refresh_data()

    def load(self) -> list[Any]:
        return data.coverage(self.app.warehouse)

    def paint(self, items: list[Any]) -> None:
        self.items = items
        rows = [
            {"kind": c.kind, "series": c.series, "schema": c.schema,
             "complete": "-" if c.completeness is None else f"{c.completeness:.1%}",
             "missing": c.missing, "gaps": len(c.gaps), "first": (c.first or "")[:10], "last": (c.last or "")[:10]}
            for c in items
        ]
        self.query_one("#series", RowsTable).show(["series", "schema", "complete", "missing", "gaps", "kind"], rows,
                                                  keys=[str(i) for i in range(len(rows))])
        if items:
            self.show_series(0)
        else:
            self.query_one(HeatMap).update("no series to measure (no bars or FRED rows yet)")

    def show_series(self, i: int) -> None:
        c = self.items[i]
        self.query_one(HeatMap).show(f"{c.table} {c.series} {c.schema}: {c.unit} present/expected per month", c.months)
        lines = [Text(f"{c.first or '?'} .. {c.last or '?'}", style="dim"),
                 Text(f"{c.present:,} of {c.expected:,} {c.unit} present; {c.missing:,} missing; {c.outside:,} outside the calendar"
                      + (f"; {c.null_values:,} null values" if c.null_values else ""), style="bold"),
                 Text(f"calendar: {c.calendar}", style="dim")]
        if c.problem:
            lines.append(Text(c.problem, style="red"))
        lines.append(Text(f"gaps ({len(c.gaps)}):", style="bold"))
        for g in c.gaps[:200]:
            where = f"{g.get('session_date')} " if g.get("session_date") else ""
            lines.append(Text(f"  {g['kind']:<12} {where}{g['start']} .. {g['end']}  ({g['count']})"))
        if len(c.gaps) > 200:
            lines.append(Text(f"  … {len(c.gaps) - 200} more (cbi coverage --json)", style="dim"))
        self.detail_plain = "\n".join(line.plain for line in lines)
        self.query_one("#gaps", Static).update(Group(*lines))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "series" and event.row_key is not None and event.row_key.value is not None:
            self.show_series(int(event.row_key.value))
