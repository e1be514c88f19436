"""The HVU tag categories, named once for the store, the CLI and the TUI.

Standard library only, so that the CLI can offer them as choices without loading DuckDB.
"""

from __future__ import annotations

HVU_CATEGORIES = ("action", "attribute", "concept", "event", "object", "scene")
# Categories an action can co-occur with (everything but action itself).
SIDE_CATEGORIES = ("scene", "object", "event", "attribute", "concept")
# The two the paper studies: its NCA figures, the human necessity study and the trainer's heads.
STUDY_CATEGORIES = ("scene", "object")
