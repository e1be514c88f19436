"""The HVU tag categories, named once for the store, the CLI and the TUI.

Standard library only, so that the CLI can offer them as choices without loading DuckDB.
"""

from __future__ import annotations

HVU_CATEGORIES = ("action", "attribute", "concept", "event", "object", "scene")
# Categories an action can co-occur with (everything but action itself).
SIDE_CATEGORIES = ("scene", "object", "event", "attribute", "concept")
# The two the paper studies: its NCA figures, the human necessity study and the trainer's heads.
STUDY_CATEGORIES = ("scene", "object")
# Which clips NCA counts for a category: every clip (the paper), or only those that carry at
# least one tag of the category (a clip without any scene tag says nothing about its scene).
CLIP_MODES = ("all", "labelled")
DEFAULT_CLIPS = "all"
