"""Training: runs, metrics per horizon beside the baselines, and the latest P10/P50/P90 fan chart."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Footer, Header, Static

from .. import data
from ..widgets.fan_chart import FanChart
from ..widgets.freshness import Freshness
from ..widgets.rows_table import RowsTable
from .base import DataScreen

METRICS = ("mae", "baseline_mae", "unweighted_mae", "mape", "baseline_mape", "directional_accuracy", "coverage_p10_p90", "n_test")


class TrainingScreen(DataScreen):
    KEY = "training"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Freshness()
        with Vertical():
            yield Static("", id="training-empty")
            yield RowsTable(id="runs")
            yield FanChart(id="fan")
        yield Footer()

    def load(self) -> dict[str, Any]:
        return data.training(self.app.warehouse)

    def paint(self, result: dict[str, Any]) -> None:
        runs, forecasts = result["runs"], result["forecasts"]
        empty = self.query_one("#training-empty", Static)
        empty.display = not runs
        if not runs:
            empty.update("no runs yet (training.model_runs is empty; `cbi train` records runs there)")
        rows = []
        for r in runs:
            m = dict(data.metric_items(r.get("metrics")))
            rows.append({"run_id": r["run_id"], "horizon": r["horizon"], "symbol": r.get("symbol"), "created_at": r["created_at"],
                         **{k: m.get(k) for k in METRICS}})
        self.query_one("#runs", RowsTable).show(["run_id", "horizon", "symbol", "created_at", *METRICS], rows)
        self.query_one(FanChart).show(forecasts)
