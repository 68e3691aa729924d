"""A contract's columns (STRUCT fields indented), partitioning, clustering, key and sync direction."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

import data_contracts as dc

from ..data import column_lines


class SchemaView(Static):
    def show(self, fqn: str, rows: int | None) -> None:
        c = dc.get(fqn)
        head = Table.grid(padding=(0, 1))
        head.add_column(style="bold", no_wrap=True)
        head.add_column()
        head.add_row("table", Text(c.fqn, style="bold cyan"))
        head.add_row("about", Text(c.description))
        head.add_row("rows", "table missing: run `cbi init`" if rows is None else f"{rows:,}")
        head.add_row("partition", f"{c.partition.column} ({c.partition.granularity})" if c.partition else "none")
        head.add_row("cluster", ", ".join(c.clustering) or "none")
        head.add_row("key", ", ".join(c.primary_key) or "none")
        head.add_row("sync", f"{c.sync}, {c.privacy}")
        cols = Table(expand=True, box=None, header_style="bold", pad_edge=False)
        width = max(len(col.name) + 2 * d + (2 if d else 0) for top in c.columns for d, col in column_lines(top))
        cols.add_column("column", no_wrap=True, min_width=width)
        cols.add_column("type", no_wrap=True)
        cols.add_column("mode", no_wrap=True)
        cols.add_column("description", overflow="ellipsis", no_wrap=True, ratio=1)
        for top in c.columns:
            for depth, col in column_lines(top):
                name = ("  " * depth) + ("└ " if depth else "") + col.name
                style = "cyan" if col.type == "STRUCT" else ""
                cols.add_row(Text(name, style=style), col.type, col.mode, col.description)
        from rich.console import Group

        self.update(Group(head, Text(""), cols))
