"""Overview: the warehouse at a glance; refreshes itself every few seconds."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Footer, Header, Tree

from .. import data
from ..widgets.dataset_tree import DatasetTree
from ..widgets.freshness import Freshness
from ..widgets.summary import Summary
from .base import DataScreen


class OverviewScreen(DataScreen):
    KEY = "overview"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Freshness()
        with Horizontal():
            yield Summary(id="summary")
            yield DatasetTree(id="overview-tree")
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        if self.app.refresh_every:
            self.set_interval(self.app.refresh_every, self.refresh_data)

    def load(self) -> data.Overview:
        return data.overview(self.app.warehouse)

    def paint(self, ov: data.Overview) -> None:
        self.app.last_overview = ov
        self.query_one(Summary).show(ov)
        self.query_one(DatasetTree).show(ov.tables)

    def on_tree_node_selected(self, event: Tree.NodeSelected) -> None:
        if event.node.data:
            self.app.show_table(event.node.data)
