"""The prepared-videos folder: what ``hvuaudit videos prepare`` writes and the trainer reads.

Where it sits: between the audit core (``hvuaudit.videos.prepare`` re-encodes a split's clips
into it) and the trainer, which finds the clips of any split by this folder's own name
template when it is given as ``--videos``. A prepared folder holds one file per clip and:

* ``videos.json``: ``format`` (:data:`VIDEOS_FORMAT`), ``name_template`` (how a split row names
  its file here), the encoding settings, the split it was made from, and the clips that failed;
* ``prepare_problems.csv``: ``clip_id,source,problem`` for every clip that could not be prepared;
* ``prepared.csv``: ``clip_id,source,size,mtime`` (no header) of every clip prepared, appended as each
  one is done, so that a resumed run re-encodes a clip whose source file changed;
* ``.hvuaudit-owned.json``: the ownership marker (:mod:`hvucontracts.files`).

Standard library only. Never imports ``hvuaudit`` or ``trainer``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VIDEOS_FORMAT = "hvuaudit-videos/1"
VIDEOS_KIND = "videos"  # the kind in a prepared folder's ownership marker
VIDEOS_MANIFEST = "videos.json"
PROBLEMS = "prepare_problems.csv"
PREPARED_LOG = "prepared.csv"  # clip_id,source,size,mtime of each finished clip: what a resumed run reuses
# A prepared clip is already cut to its times, so a clip id names it.
PREPARED_TEMPLATE = "{clip_id}.mp4"


def read_video_folder(folder: Path | str) -> dict[str, Any] | None:
    """The manifest of a prepared folder, or None when ``folder`` is not one (a folder of downloads)."""
    path = Path(folder) / VIDEOS_MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != VIDEOS_FORMAT:
        return None
    return manifest


def folder_template(folder: Path | str) -> str | None:
    """The name template a prepared folder declares for its files (None for any other folder)."""
    manifest = read_video_folder(folder)
    template = manifest.get("name_template") if manifest else None
    return template if isinstance(template, str) else None
