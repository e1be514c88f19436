"""Every key binding of the TUI, in one place.

Screens take their ``BINDINGS`` from here, the footer shows the ones marked
``show``, and the help screen (``?``) lists all of them from :data:`HELP_SECTIONS`,
so what the help says is what the keys do.
"""

from __future__ import annotations

from textual.binding import Binding

# Screens, in the order of their keys 1..5: (mode name, footer label, description).
SCREENS: tuple[tuple[str, str, str], ...] = (
    ("overview", "Overview", "the store's sources, clip counts, tags per category, tags-per-clip histograms"),
    ("browser", "Browse", "actions and their scenes/objects: co-occurrence, NCA cells, clips, reverse view"),
    ("nca", "NCA", "necessary condition analysis per category, threshold sweep, task roles"),
    ("annotate", "Annotate", "answer 'is this tag necessary for this action?' one pair at a time"),
    ("splits", "Splits", "build, preview, export and verify default / SI-1 / SI-2 splits"),
)

APP = [
    # priority: taken before the key is handed to the focused widget, and the switch is awaited
    # (HvuauditApp.action_switch_mode), so that keys typed right after it ("3 t 0.35") reach the new
    # screen. In a text field the digits are text (HvuauditApp.check_action).
    *[
        Binding(str(i), f"switch_mode('{mode}')", label, priority=True)
        for i, (mode, label, _about) in enumerate(SCREENS, start=1)
    ],
    Binding("question_mark", "help", "Help", key_display="?"),
    Binding("f1", "help", "Help", show=False),
    Binding(
        "escape",
        "leave_field",
        "Leave a text field (letter keys act again); also closes dialogs",
        key_display="esc",
        show=False,
    ),
]

OVERVIEW = [
    Binding(
        "left_square_bracket",
        "category(-1)",
        "Previous category of the histogram",
        key_display="[",
        show=False,
    ),
    Binding(
        "right_square_bracket",
        "category(1)",
        "Histogram",
        tooltip="Next category of the tags-per-clip histogram",
        key_display="]",
    ),
]

BROWSER = [
    # priority: handled before the key reaches the focused widget, so that the letters typed right
    # after it (a fast typist, a paste, tmux send-keys) already land in the search field
    Binding("slash", "focus_search", "Search", key_display="/", priority=True),
    Binding("left_square_bracket", "category(-1)", "Previous category tab", key_display="[", show=False),
    Binding("right_square_bracket", "category(1)", "Tab", tooltip="Next category tab", key_display="]"),
    Binding("r", "reverse", "Reverse"),
    Binding("l", "app.toggle_clips", "Clips", tooltip="Count labelled clips only, or all clips (NCA cells)"),
    Binding("escape", "back_to_actions", "Actions", show=False),
]

CLIPS = [
    Binding("c", "copy_url", "Copy URL"),
    Binding("o", "open_url", "Open URL"),
    Binding("escape", "dismiss", "Back"),
]

REVERSE = [
    Binding("escape", "dismiss", "Back"),
]

NCA = [
    Binding(
        "plus,equals_sign",
        "threshold(0.05)",
        "Threshold",
        tooltip="Raise the threshold by 0.05",
        key_display="+",
    ),
    Binding("minus", "threshold(-0.05)", "Lower", tooltip="Lower the threshold by 0.05", key_display="-"),
    Binding("t", "type_threshold", "Type", tooltip="Type a threshold", priority=True),
    Binding("left_square_bracket", "category(-1)", "Previous category tab", key_display="[", show=False),
    Binding("right_square_bracket", "category(1)", "Tab", tooltip="Next category tab", key_display="]"),
    Binding("l", "app.toggle_clips", "Clips", tooltip="Count labelled clips only, or all clips"),
    Binding(
        "n", "necessary_only", "Necessary", tooltip="Only the actions whose top tag is necessary, or all"
    ),
    Binding("p", "toggle_plot", "Plot", tooltip="The plot and roles in the table's place (narrow windows)"),
    Binding("w", "write_tasks", "tasks.json"),
]

ANNOTATE = [
    Binding("y", "answer('necessary')", "Necessary"),
    Binding("n", "answer('not_necessary')", "Not necessary"),
    Binding("u", "answer('unsure')", "Unsure"),
    Binding("b", "back", "Back"),
    Binding("o", "open_example", "Open clip"),
    Binding("a", "annotator", "Annotator"),
    Binding("left_square_bracket", "category(-1)", "Prev category", key_display="[", show=False),
    Binding("right_square_bracket", "category(1)", "Next category", key_display="]", show=False),
    Binding("question_mark", "guidelines", "Guidelines", key_display="?"),
    # The guidelines (shared with `hvuaudit annotate run`) say "q quit"; every answer is already saved.
    Binding("q", "app.quit", "Quit"),
]

# The splits form is mostly text fields, which take printable keys: its actions use function keys.
SPLITS = [
    Binding("f5", "preview", "Preview"),
    Binding("f6", "export", "Export"),
    Binding("f7", "verify", "Verify"),
    Binding("f8", "refresh_saved", "Saved splits"),
]

MODAL = [
    Binding("escape", "dismiss", "Close"),
]

# Every table (FrameTable), when it has the focus; a click on a column header sorts by it too. Not in the
# footer, which the screens' own keys fill: the help screen (?) lists them.
TABLE = [
    Binding("s", "sort_next", "Sort by the next column (a header click sorts by that one)", show=False),
    Binding("S", "sort_reverse", "Turn the sort order round", key_display="S", show=False),
    # (on the browser's screen / is its search, which filters the actions)
    Binding(
        "slash",
        "filter",
        "Filter the rows: keep those with a cell that contains a text",
        key_display="/",
        show=False,
    ),
    Binding("e", "export", "Save the table as shown: .csv, .json or .parquet", show=False),
]

# (section title, bindings) for the help screen.
HELP_SECTIONS: tuple[tuple[str, list[Binding]], ...] = (
    ("Everywhere", APP),
    ("Overview", OVERVIEW),
    ("Co-occurrence browser", BROWSER),
    ("Clips of a pair", CLIPS),
    ("NCA", NCA),
    ("Annotate", ANNOTATE),
    ("Splits", SPLITS),
    ("Any table", TABLE),
)

EXTRA_HELP: tuple[tuple[str, str, str], ...] = (
    # (section, key, what it does) for keys handled by widgets rather than bindings.
    ("Everywhere", "ctrl+p", "command palette: jump to a screen, open help, change the theme"),
    ("Everywhere", "ctrl+q", "quit"),
    ("Everywhere", "tab / shift+tab", "move the focus between panes"),
    (
        "Co-occurrence browser",
        "enter",
        "on an action: show its tags; on a tag: drill down to the clips of the pair",
    ),
    ("Reverse view", "enter", "open that action in the browser"),
    ("NCA", "enter", "open the highlighted action in the co-occurrence browser"),
    ("Splits", "enter", "in a field: build the preview"),
)
