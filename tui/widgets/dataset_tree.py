"""Datasets -> tables (from data_contracts), each table coloured by status, with its row count."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Tree

import data_contracts as dc

from ..data import TableStat
from ..messages import TableSelected

STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "empty": "dim", "missing": "red strike"}


class DatasetTree(Tree[str]):
    def __init__(self, **kw) -> None:
        super().__init__("warehouse", **kw)
        self.show_root = False
        self.guide_depth = 2

    def show(self, stats: list[TableStat]) -> None:
        selected = self.cursor_node.data if self.cursor_node else None
        by_ds: dict[str, list[TableStat]] = {}
        for s in stats:
            by_ds.setdefault(s.dataset, []).append(s)
        self.clear()
        for name in dc.DATASETS:
            mine = by_ds.get(name, [])
            worst = next((k for k in ("fail", "missing", "warn", "ok") if any(s.status == k for s in mine)), "empty")
            label = Text.assemble((name, STYLE[worst] if worst != "ok" else "bold"), (f"  {len(mine)} table{'s' if len(mine) != 1 else ''}" if mine else "  no tables yet", "dim"))
            ds = self.root.add(label, data=None, expand=True)
            for s in mine:
                rows = "missing" if s.rows is None else f"{s.rows:,}"
                extra = []
                if s.failing:
                    extra.append(f"{s.failing} failing")
                if s.warnings:
                    extra.append(f"{s.warnings} warn")
                if s.held:
                    extra.append(f"{s.held:,} held")
                ds.add_leaf(Text.assemble((s.table, STYLE[s.status]), f"  {rows}", (f"  {', '.join(extra)}" if extra else "", "dim")), data=s.fqn)
        if selected:
            self.select_fqn(selected)

    def select_fqn(self, fqn: str) -> None:
        def walk(node):
            for child in node.children:
                if child.data == fqn:
                    return child
                found = walk(child)
                if found:
                    return found
            return None

        node = walk(self.root)
        if node is not None:
            self.move_cursor(node)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        if event.node.data:
            self.post_message(TableSelected(event.node.data))
