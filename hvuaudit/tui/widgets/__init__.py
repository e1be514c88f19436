"""Reusable widgets of the TUI: tables of polars frames, strips of clip frames, terminal plots, notices."""

from hvuaudit.tui.widgets.frame_strip import FrameStrip
from hvuaudit.tui.widgets.frame_table import FrameTable
from hvuaudit.tui.widgets.notice import Notice
from hvuaudit.tui.widgets.plots import HistogramPlot, SweepPlot

__all__ = ["FrameStrip", "FrameTable", "HistogramPlot", "Notice", "SweepPlot"]
