"""Month-by-year heat map of completeness (rows: years, columns: J .. D, January to December)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

MONTHS = "JFMAMJJASOND"


def colour(v: float | None) -> str:
    if v is None:
        return "grey30"
    if v >= 0.999:
        return "green"
    if v >= 0.95:
        return "chartreuse3"
    if v >= 0.8:
        return "yellow"
    if v >= 0.5:
        return "dark_orange"
    return "red"


def grid(months: list[dict[str, Any]]) -> dict[int, dict[int, float | None]]:
    out: dict[int, dict[int, float | None]] = {}
    for m in months:
        y, mo = m["month"].split("-")
        out.setdefault(int(y), {})[int(mo)] = m.get("completeness")
    return out


class HeatMap(Static):
    """Two columns a month (a mark and a space), so the year and twelve months fit in 29 columns: the
    map with its month letters (J .. D) and its legend (two lines, above the map so a long series does
    not push it out of sight) fit the Coverage pane at 80x24."""

    def show(self, title: str, months: list[dict[str, Any]]) -> None:
        g = grid(months)
        t = Table(box=None, pad_edge=False, padding=(0, 0))
        t.add_column("year", no_wrap=True, style="bold", width=5)
        for m in MONTHS:
            t.add_column(m, justify="left", width=2, no_wrap=True)
        for y in sorted(g):
            cells = []
            for mo in range(1, 13):
                if mo not in g[y]:
                    cells.append(Text("·", style="grey30"))
                else:
                    v = g[y][mo]
                    cells.append(Text("■" if v is not None else "?", style=colour(v)))
            t.add_row(str(y), *cells)
        legend = [
            Text.assemble("legend: ", ("■", "green"), " 100%  ", ("■", "chartreuse3"), " ≥95%  ", ("■", "yellow"), " ≥80%"),
            Text.assemble(("■", "dark_orange"), " ≥50%  ", ("■", "red"), " <50%  ", ("·", "grey30"), " outside span"),
        ]
        from rich.console import Group

        head = Text(title, style="bold")  # its own line: wraps at the pane's width, not the map's
        self.update(Group(head, *legend, t) if g else Group(head, Text("no months measured", style="dim")))
