"""Terminal plots (textual-plotext): the tags-per-clip histogram and the NCA threshold sweep."""

from __future__ import annotations

import polars as pl
from textual_plotext import PlotextPlot


class HistogramPlot(PlotextPlot):
    """Bar chart of how many clips have 0, 1, 2, ... tags (of one category, or all)."""

    def show_histogram(self, histogram: pl.DataFrame, *, title: str, xlabel: str) -> None:
        """Bars of ``histogram`` (columns ``n_tags``, ``clips``), with whole-number clip counts on the y
        axis."""
        plt = self.plt
        plt.clear_figure()
        if histogram.is_empty():
            plt.title(f"{title}: no clips")
        else:
            clips = histogram["clips"].to_list()
            plt.bar([str(n) for n in histogram["n_tags"].to_list()], clips, marker="hd")
            ticks = sorted({round(max(clips) * i / 4) for i in range(5)})
            plt.yticks(ticks, [f"{t:,}" for t in ticks])
            plt.title(title)
            plt.xlabel(xlabel)
        self.refresh()


class SweepPlot(PlotextPlot):
    """Fig. 2d: actions with a necessary tag against the threshold, one line per category."""

    def show_sweep(self, sweep: pl.DataFrame, *, threshold: float, current: str) -> None:
        plt = self.plt
        plt.clear_figure()
        if sweep.is_empty():
            plt.title("no sweep")
            self.refresh()
            return
        for (category,), part in sweep.group_by("category", maintain_order=True):
            plt.plot(
                part["threshold"].to_list(),
                part["actions_necessary"].to_list(),
                label=category,
                marker="braille" if category != current else "hd",
            )
        plt.vline(threshold, "red")
        modes = " + ".join(dict.fromkeys(sweep["clips"])) if "clips" in sweep.columns else "all"
        # plotext leaves out a title wider than the plot: keep it short
        plt.title(f"necessary tags | t = {threshold:.2f} | {modes}")
        plt.xlabel("threshold on n11/n12")
        self.refresh()
