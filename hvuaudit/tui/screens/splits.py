"""Splits: a form for the split parameters, a preview before anything is written, export and verify.

Calls :func:`hvuaudit.splits.build_split` (preview: clips per side, train, select and
val, scene-only baselines, the any-tag leakage, what --strict dropped, H(action|scene),
what was left out), :func:`~hvuaudit.splits.export_split`
(needs a read-write store), :func:`~hvuaudit.splits.verify_split` and
:func:`~hvuaudit.splits.list_splits`. With ``--read-only`` export is disabled
and the screen says why; preview and verify still work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Select, Static

from hvuaudit.errors import ConflictError, InputError
from hvuaudit.tui import bindings
from hvuaudit.tui.screens.base import CoreScreen, reports_errors
from hvuaudit.tui.screens.modals import ConfirmModal
from hvuaudit.tui.session import READ_ONLY_REASON
from hvuaudit.tui.widgets import FrameTable
from hvuaudit.tui.widgets.frame_table import format_cell
from hvucontracts.splitfolder import SELECT_FRACTION, SIDES

VARIANT_CHOICES = [
    ("SI-2 (val: each action's rare scenes)", "si2"),
    ("SI-1 (val: rarest pairs)", "si1"),
    ("default (store's train/val)", "default"),
]
PRIMARY_CHOICES = [
    ("rarest action tag of the clip", "rarest"),
    ("first action tag of the clip", "first"),
    ("from a CSV file…", "file"),
]


class SplitsScreen(CoreScreen):
    """Build a split with a preview first; export and verify it; list the saved ones."""

    BINDINGS = [*bindings.SPLITS]

    class SplitPreviewed(Message):
        def __init__(self, params: Any, result: Any) -> None:
            super().__init__()
            self.params = params
            self.result = result

    class SplitExported(Message):
        def __init__(self, out: Path, result: Any, verify: Any) -> None:
            super().__init__()
            self.out = out
            self.result = result
            self.verify = verify

    class ExportRefused(Message):
        """The output folder exists and is not empty (and overwrite was not ticked)."""

        def __init__(self, out: Path, params: Any, message: str) -> None:
            super().__init__()
            self.out = out
            self.params = params
            self.message = message

    class SplitVerified(Message):
        def __init__(self, out: Path, verify: Any) -> None:
            super().__init__()
            self.out = out
            self.verify = verify

    class SavedSplitsListed(Message):
        def __init__(self, splits: pl.DataFrame) -> None:
            super().__init__()
            self.splits = splits

    def __init__(self) -> None:
        super().__init__()
        self.preview: Any = None  # the SplitResult on screen
        self.preview_params: Any = None  # the form's SplitParams it was built from
        self._out_edited = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="splits"):
            with VerticalScroll(id="split-form", classes="pane"):
                # first, so that a read-only session says why export is off before the form scrolls
                yield Static("", id="export-reason", classes="reason")
                yield Label("Variant")
                yield Select(VARIANT_CHOICES, value="si2", allow_blank=False, id="variant", compact=True)
                yield Label("Min videos per action")
                yield Input("124", type="integer", id="min-videos", compact=True)
                yield Label("Validation fraction (0–1)")
                yield Input("0.2", type="number", id="val-fraction", compact=True)
                yield Label("Max train scenes per action (SI-2)")
                yield Input(placeholder="e.g. 3", type="integer", id="max-train-scenes", compact=True)
                yield Checkbox("Strict: every scene tag apart", id="strict")
                yield Checkbox("Only clips with a video file", id="require-videos")
                yield Label("Selection set share (0: none)")
                yield Input(str(SELECT_FRACTION), type="number", id="select-fraction", compact=True)
                yield Label("Primary action of a clip")
                yield Select(PRIMARY_CHOICES, value="rarest", allow_blank=False, id="primary", compact=True)
                yield Input(
                    placeholder="CSV: youtube_id,time_start,time_end,action",
                    id="primary-path",
                    classes="hidden",
                    compact=True,
                )
                yield Label("Subset (empty: all clips)")
                yield Input(placeholder="e.g. val", id="subset", compact=True)
                yield Label("Output folder")
                yield Input("out/si2", id="out", compact=True)
                yield Checkbox("Replace a non-empty folder", id="force")
                with Horizontal(id="split-buttons"):
                    yield Button("Preview F5", id="preview", variant="primary")
                    yield Button("Export F6", id="export", variant="success")
                    yield Button("Verify F7", id="verify")
            with Vertical(id="split-results", classes="pane"):
                yield Static(
                    "Fill the form and press F5 (or enter in a field) for a preview. "
                    "Nothing is written until you export.",
                    id="preview-title",
                )
                yield FrameTable(id="preview-table", classes="short-table")
                yield Static("", id="preview-details")
                yield Label("Verification", classes="pane-title")
                yield FrameTable(id="verify-table", classes="short-table")
                yield Label("Splits saved in the store", classes="pane-title")
                yield FrameTable(id="saved", key_column="split", classes="short-table")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        if self.session.read_only:
            self.query_one("#export", Button).disabled = True
            self.query_one("#force", Checkbox).disabled = True
            self.query_one("#export-reason", Static).update(
                Text(f"Export is disabled: {READ_ONLY_REASON}. Preview and verify still work.")
            )
        self.reload()

    def reload(self) -> None:
        self.list_saved()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "export" and self.session.read_only:
            return None  # shown greyed out in the footer
        return True

    # ------------------------------------------------------------ form

    def form_params(self) -> Any:
        """The SplitParams the form describes; InputError when a field cannot be read."""
        from hvuaudit.splits import SplitParams

        def number(field_id: str, kind: type, label: str, *, optional: bool = False) -> Any:
            text = self.query_one(f"#{field_id}", Input).value.strip()
            if optional and not text:
                return None
            try:
                return kind(text)
            except ValueError:
                raise InputError(f"{label} must be a number (got '{text}')") from None

        primary = self.query_one("#primary", Select).value
        if primary == "file":
            primary = self.query_one("#primary-path", Input).value.strip()
            if not primary:
                raise InputError(
                    "type the path of the primary-action CSV", hint="or choose 'rarest' or 'first'"
                )
        subset = self.query_one("#subset", Input).value.strip() or None
        return SplitParams(
            variant=str(self.query_one("#variant", Select).value),
            min_videos=number("min-videos", int, "min videos"),
            val_fraction=number("val-fraction", float, "the validation fraction", optional=True),
            max_train_scenes=number("max-train-scenes", int, "max training scenes", optional=True),
            strict=self.query_one("#strict", Checkbox).value,
            require_videos=self.query_one("#require-videos", Checkbox).value,
            select_fraction=number("select-fraction", float, "the selection fraction"),
            primary_action=str(primary),
            subset=subset,
        )

    def _out(self) -> Path:
        text = self.query_one("#out", Input).value.strip()
        if not text:
            raise InputError("type an output folder", hint="for example out/si2")
        return Path(text).expanduser()

    @on(Select.Changed, "#variant")
    def variant_changed(self, event: Select.Changed) -> None:
        if not self._out_edited:
            out = self.query_one("#out", Input)
            with out.prevent(Input.Changed):
                out.value = f"out/{event.value}"

    @on(Select.Changed, "#primary")
    def primary_changed(self, event: Select.Changed) -> None:
        self.query_one("#primary-path", Input).set_class(event.value != "file", "hidden")

    @on(Input.Changed, "#out")
    def out_edited(self) -> None:
        self._out_edited = True

    @on(Input.Submitted)
    def field_submitted(self) -> None:
        self.action_preview()

    @on(Button.Pressed, "#preview")
    def preview_pressed(self) -> None:
        self.action_preview()

    @on(Button.Pressed, "#export")
    def export_pressed(self) -> None:
        self.action_export()

    @on(Button.Pressed, "#verify")
    def verify_pressed(self) -> None:
        self.action_verify()

    def _read_form(self) -> tuple[Any, Path] | None:
        try:
            return self.form_params().normalised(), self._out()
        except InputError as exc:
            self.notify(
                exc.message + (f"\nWhat to do: {exc.hint}" if exc.hint else ""),
                title="Check the form",
                severity="error",
                markup=False,
            )
            return None

    # ------------------------------------------------------------ actions

    def action_preview(self) -> None:
        form = self._read_form()
        if form is None:
            return
        self.start_loading("#split-results")
        self.build_preview(form[0])

    def action_export(self) -> None:
        if self.session.read_only:
            self.notify(f"Export is disabled: {READ_ONLY_REASON}.", severity="warning", markup=False)
            return
        form = self._read_form()
        if form is None:
            return
        params, out = form
        self.start_loading("#split-results")
        self.export(params, out, force=self.query_one("#force", Checkbox).value)

    def action_verify(self) -> None:
        try:
            out = self._out()
        except InputError as exc:
            self.notify(exc.message, severity="error", markup=False)
            return
        self.start_loading("#split-results")
        self.verify(out)

    def action_refresh_saved(self) -> None:
        self.list_saved()

    # ------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, group="split-build")
    @reports_errors("building the split preview")
    def build_preview(self, params: Any) -> None:
        from hvuaudit.splits import build_split

        with self.session.cursor() as cur:
            result = build_split(cur, params)
        self.post_fresh(self.SplitPreviewed(params, result))

    @work(thread=True, exclusive=True, group="split-build")
    @reports_errors("exporting the split")
    def export(self, params: Any, out: Path, *, force: bool) -> None:
        from hvuaudit.splits import build_split, export_split, verify_split

        # export_split saves the membership from the temporary tables that build_split leaves on its
        # connection, so both run on the same cursor (a preview built on another cursor is not reused).
        try:
            with self.session.cursor(write=True) as cur:
                result = build_split(cur, params)
                written = export_split(cur, result, out, force=force)
        except ConflictError as exc:
            self.post_message(self.ExportRefused(out, params, exc.message))
            return
        with self.session.cursor() as cur:
            report = verify_split(cur, written)
        self.post_message(self.SplitExported(written, result, report))

    @work(thread=True, exclusive=True, group="split-build")
    @reports_errors("verifying the split folder")
    def verify(self, out: Path) -> None:
        from hvuaudit.splits import verify_split

        with self.session.cursor() as cur:
            report = verify_split(cur, out)
        self.post_fresh(self.SplitVerified(out, report))

    @work(thread=True, exclusive=True, group="split-list")
    @reports_errors("listing the saved splits")
    def list_saved(self) -> None:
        from hvuaudit.splits import list_splits

        with self.session.cursor() as cur:
            splits = list_splits(cur)
        self.post_fresh(self.SavedSplitsListed(splits))

    # ------------------------------------------------------------ handlers

    @on(SplitPreviewed)
    def show_preview(self, event: SplitPreviewed) -> None:
        self.preview, self.preview_params = event.result, event.params
        self._show_result(
            event.result, f"Preview of {event.params.variant} (nothing written yet; F6 exports it)"
        )

    @on(SplitExported)
    def show_exported(self, event: SplitExported) -> None:
        self.preview = event.result
        self._show_result(event.result, f"Exported to {event.out}")
        self._show_verify(event.out, event.verify)
        self.notify(
            f"Wrote {event.out} and saved it in the store; verification "
            f"{'passed' if event.verify.ok else 'FAILED'}.",
            title="Split exported",
            severity="information" if event.verify.ok else "error",
            markup=False,
        )
        self.list_saved()

    @on(ExportRefused)
    def confirm_replace(self, event: ExportRefused) -> None:
        self.stop_loading("#split-results")

        def answered(replace: bool | None) -> None:
            if replace:
                self.start_loading("#split-results")
                self.export(event.params, event.out, force=True)

        self.app.push_screen(
            ConfirmModal(
                "Replace the folder?",
                f"{event.message}.\nReplace it with this split?",
                yes="Replace",
                no="Keep it",
            ),
            answered,
        )

    @on(SplitVerified)
    def show_verified(self, event: SplitVerified) -> None:
        self.stop_loading("#split-results")
        self._show_verify(event.out, event.verify)

    @on(SavedSplitsListed)
    def show_saved(self, event: SavedSplitsListed) -> None:
        table = self.query_one("#saved", FrameTable)
        table.show_frame(
            event.splits.with_columns(pl.col("created_at").cast(pl.String).str.slice(0, 19))
            if "created_at" in event.splits.columns
            else event.splits,
            labels={
                "train_clips": "train",
                "select_clips": "select",
                "val_clips": "val",
                "out_dir": "folder",
            },
        )
        table.border_subtitle = f"{event.splits.height} saved"

    def _show_result(self, result: Any, title: str) -> None:
        self.stop_loading("#split-results")
        report = result.report
        sides = pl.DataFrame(
            [
                {"side": side, **{k: report.get(side, {}).get(k) for k in ("clips", "actions", "pairs")}}
                for side in SIDES
            ],
            schema={"side": pl.String, "clips": pl.Int64, "actions": pl.Int64, "pairs": pl.Int64},
        )
        self.query_one("#preview-title", Static).update(Text(title, style="bold"))
        self.query_one("#preview-table", FrameTable).show_frame(sides)
        details = Table(box=None, show_header=False, padding=(0, 1))
        details.add_column(style="dim")
        details.add_column(justify="right")
        shown = [
            ("scene_only_baseline", "scene-only baseline accuracy on val", lambda v: f"{v:.1%}"),
            ("scene_only_baseline_all_tags", "scene-only baseline, every scene tag", lambda v: f"{v:.1%}"),
            (
                "conditional_entropy_action_given_scene_bits",
                "H(action | scene) on train, bits",
                lambda v: f"{v + 0.0:.3f}",
            ),
            ("median_scenes_per_action_train", "median scenes per action (train)", lambda v: f"{v:g}"),
            ("candidate_clips", "candidate clips", lambda v: f"{v:,}"),
        ]
        for key, label, fmt in shown:
            if isinstance(report.get(key), int | float):
                details.add_row(label, fmt(report[key]))
        leak = report.get("any_tag_leakage")
        if isinstance(leak, dict):  # val clips with a scene tag seen with their action in training
            details.add_row(
                "val clips sharing a scene tag with train", f"{leak['clips']:,} ({leak['share']:.1%})"
            )
        strict = report.get("strict") or {}
        if strict.get("enabled"):
            details.add_row(
                "strict: dropped train / val clips, actions",
                f"{strict['dropped_train_clips']:,} / {strict['dropped_val_clips']:,}, "
                f"{len(strict['dropped_actions'])}",
            )
        videos = report.get("videos") or {}
        if videos.get("scanned"):
            for side in SIDES:
                if side in videos:
                    details.add_row(
                        f"{side} clips with a video file",
                        f"{videos[side]['with_video']:,} of {videos[side]['clips']:,}",
                    )
        for reason, count in (report.get("left_out") or {}).items():
            details.add_row(f"left out: {reason.replace('_', ' ')}", format_cell(count))
        self.query_one("#preview-details", Static).update(details)

    def _show_verify(self, out: Path, verify: Any) -> None:
        frame = pl.DataFrame(
            [
                {"check": name, "ok": "ok" if ok else "FAILED", "detail": detail}
                for name, ok, detail in verify.checks
            ]
        )
        table = self.query_one("#verify-table", FrameTable)
        table.show_frame(frame, styles={"ok": {"ok": "bold green", "FAILED": "bold red"}})
        table.border_subtitle = f"{out}: {'all checks passed' if verify.ok else 'some checks FAILED'}"
