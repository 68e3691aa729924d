"""P10/P50/P90 fan chart of the latest forecasts (textual-plotext)."""

from __future__ import annotations

from typing import Any

from textual_plotext import PlotextPlot


class FanChart(PlotextPlot):
    def show(self, forecasts: list[dict[str, Any]], symbol: str | None = None) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        rows = [f for f in forecasts if symbol is None or f["symbol"] == symbol]
        rows = [f for f in rows if f.get("target_date") is not None and f.get("p50") is not None]
        if not rows:
            plt.title("no forecasts yet")
            self.refresh()
            return
        rows.sort(key=lambda f: f["target_date"])
        plt.date_form("Y-m-d")
        x = [f["target_date"].strftime("%Y-%m-%d") for f in rows]
        plt.plot(x, [f["p90"] for f in rows], label="P90", color="blue", marker="braille")
        plt.plot(x, [f["p50"] for f in rows], label="P50", color="green", marker="braille")
        plt.plot(x, [f["p10"] for f in rows], label="P10", color="blue", marker="braille")
        plt.title(f"{rows[0]['symbol']} forecast fan, as of {rows[0]['as_of_date']}")
        self.refresh()
