"""The HVU tag categories and the NCA defaults, named once for the store, the CLI and the TUI.

Standard library only, so that the CLI can offer them as choices without loading DuckDB.
docs/nca.md ("Defaults") explains each default; tests/core/test_nca.py checks that every
command and the TUI use these.
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
# labelled: a missing label is not an absence (14,971 of the 31,171 validation clips carry no
# scene tag at all); `all` is the paper's own count and stays one option away.
DEFAULT_CLIPS = "labelled"
# Necessary when n11/n12 <= 0.2: the tag is on at least 5 of every 6 of the action's clips.
# The roles' band is anchored here (docs/nca.md "The roles rule").
DEFAULT_THRESHOLD = 0.2


def with_article(category: str) -> str:
    """ "an event", "a scene": for messages that name a category."""
    return f"{'an' if category[:1] in 'aeiou' else 'a'} {category}"
