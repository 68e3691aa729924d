"""Datasets -> tables (from data_contracts), each table coloured by status, with its row count.

The tree is built once; later `show()` calls only relabel its nodes (built again only if the set of
datasets and tables changed), so a refresh keeps which datasets are collapsed and where the cursor is."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

import data_contracts as dc

from ..data import TableStat
from ..messages import TableSelected

STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "empty": "dim", "missing": "red strike"}


def dataset_label(name: str, mine: list[TableStat]) -> Text:
    worst = next((k for k in ("fail", "missing", "warn", "ok") if any(s.status == k for s in mine)), "empty")
    return Text.assemble((name, STYLE[worst] if worst != "ok" else "bold"),
                         (f"  {len(mine)} table{'s' if len(mine) != 1 else ''}" if mine else "  no tables yet", "dim"))


def table_label(s: TableStat) -> Text:
    rows = "missing" if s.rows is None else f"{s.rows:,}"
    extra = []
    if s.failing:
        extra.append(f"{s.failing} failing")
    if s.warnings:
        extra.append(f"{s.warnings} warn")
    if s.held:
        extra.append(f"{s.held:,} held")
    return Text.assemble((s.table, STYLE[s.status]), f"  {rows}", (f"  {', '.join(extra)}" if extra else "", "dim"))


class DatasetTree(Tree[str]):
    def __init__(self, **kw) -> None:
        super().__init__("warehouse", **kw)
        self.show_root = False
        self.guide_depth = 2
        self._shape: list[tuple[str, list[str]]] | None = None
        self._datasets: dict[str, TreeNode[str]] = {}
        self._tables: dict[str, TreeNode[str]] = {}
        self.builds = 0  # how many times the nodes were (re)built: once, unless the catalog changed

    def show(self, stats: list[TableStat]) -> None:
        by_ds: dict[str, list[TableStat]] = {}
        for s in stats:
            by_ds.setdefault(s.dataset, []).append(s)
        shape = [(name, [s.fqn for s in by_ds.get(name, [])]) for name in dc.DATASETS]
        if shape != self._shape:
            self._build_nodes(shape)
        for name, mine in ((n, by_ds.get(n, [])) for n in dc.DATASETS):
            self._datasets[name].set_label(dataset_label(name, mine))
            for s in mine:
                self._tables[s.fqn].set_label(table_label(s))

    def _build_nodes(self, shape: list[tuple[str, list[str]]]) -> None:
        selected = self.cursor_node.data if self.cursor_node else None
        collapsed = {name for name, node in self._datasets.items() if not node.is_expanded}
        self.clear()
        self._datasets, self._tables = {}, {}
        for name, fqns in shape:
            ds = self.root.add(name, data=None, expand=name not in collapsed)
            self._datasets[name] = ds
            for fqn in fqns:
                self._tables[fqn] = ds.add_leaf(fqn, data=fqn)
        self._shape = shape
        self.builds += 1
        if selected:
            self.select_fqn(selected)

    def select_fqn(self, fqn: str) -> None:
        node = self._tables.get(fqn)
        if node is not None:
            if node.parent is not None and not node.parent.is_expanded:
                node.parent.expand()
            self.move_cursor(node)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        if event.node.data:
            self.post_message(TableSelected(event.node.data))
