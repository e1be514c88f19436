"""Small helpers that several trainer and evaluator modules use: devices, precision, RNG, checkpoints.

torchvision's references keep such helpers in one ``utils.py``; so does the trainer.
Imports torch; never imports ``hvuaudit``.
"""

from __future__ import annotations

import io
import random
import subprocess
import zipfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from hvucontracts.files import write_atomically
from hvucontracts.runfolder import CHECKPOINT_FORMAT
from trainer.config import ConfigError
from trainer.errors import MissingArtifactError


def code_version() -> str:
    """The git commit of the trainer's source tree (``+dirty`` with local changes), or 'unknown'."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no", "--", "."],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}+dirty" if dirty else sha


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save through :func:`hvucontracts.files.write_atomically` (a full disk becomes exit 7).

    The checkpoint is serialised in memory first and then written by Python: torch's own
    file writer reports a full disk as an opaque RuntimeError ("iostream error", "unexpected
    pos"), Python's as OSError(ENOSPC). The cost is one checkpoint's size of memory.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomically(path, lambda tmp: tmp.write_bytes(buffer.getbuffer()), doing=f"could not save {path}")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda, but torch sees no CUDA device here; use --device cpu or auto")
    return torch.device(name)


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """auto = bf16 on CUDA and off on CPU."""
    if mode == "auto":
        mode = "bf16" if device.type == "cuda" else "off"
    return {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[mode]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states in a form torch.load(weights_only=True) accepts."""
    # numpy's stubs say the default (legacy=True) returns a dict; it is the legacy 5-tuple
    legacy_state = cast("tuple[str, np.ndarray, int, int, float]", np.random.get_state())
    kind, keys, pos, has_gauss, cached = legacy_state
    state = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": pos,
            "has_gauss": has_gauss,
        },
        "numpy_cached": cached,
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], state["numpy_cached"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def verify_checkpoint_checksums(path: Path) -> None:
    """Refuse (exit 4) a checkpoint whose bytes changed since it was written.

    torch.save writes a zip archive whose every record (the pickled structure and each
    tensor's bytes) carries a CRC-32 that torch.load never checks. Reading them all back
    costs about a millisecond per 4 MB, and leaves checkpoints loadable by plain torch.load.
    """
    damaged = f"{path}: the checkpoint is damaged"
    hint = "; it cannot be trusted: retrain, or resume from a copy you kept"
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except Exception as exc:  # noqa: BLE001 - damaged headers raise BadZipFile, OSError, EOFError, ValueError, ...
        raise MissingArtifactError(f"{damaged} ({type(exc).__name__}: {exc}){hint}") from exc
    if bad is not None:
        raise MissingArtifactError(
            f"{damaged}: the checksum of its record {bad!r} does not match its bytes{hint}"
        )


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by this trainer, its checksums verified (weights-only load: no code runs)."""
    if not path.is_file():
        raise MissingArtifactError(f"{path}: no such checkpoint; train the run first with `hvuaudit train`")
    verify_checkpoint_checksums(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise MissingArtifactError(
            f"{path}: could not be read ({exc}); it may be truncated, retrain"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise MissingArtifactError(f"{path}: not a checkpoint of this trainer (format {CHECKPOINT_FORMAT})")
    return ckpt
