"""Writing files without losing anything: atomic writes, owned folders, protected paths.

Every file and folder that hvuaudit writes goes through this module, so that three
promises hold everywhere (docs/conventions.md, "What is never lost"):

* **Nothing is half-written.** A file is written to a temporary name in its own folder,
  flushed, and renamed over the target (:func:`write_atomically`). A killed command
  leaves the old file or the new one, and at most a ``.NAME.hvuaudit-tmp-*`` leftover,
  which the next write of the same file removes.
* **Outputs follow the umask**, like any file made with ``open()``: the temporary
  files of :mod:`tempfile` are 0600 and would otherwise stay so.
* **--force replaces only what hvuaudit made.** A folder that hvuaudit may later
  replace carries a marker, ``.hvuaudit-owned.json``, written *before* its contents,
  that lists every file it put there (relative paths inside the folder, nothing else).
  :func:`check_replaceable` accepts a folder only when the marker is valid and nothing
  else is in it; anything else is refused with a list of what is there. No command may
  ever replace or delete ``/``,
  the home folder, the current folder, or a folder that holds the store or the videos
  (:func:`refuse_protected`).

Standard library only: the audit core and the trainer both import it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hvucontracts.errors import ConflictError, InputError, system_refusal

OWNER_FILE = ".hvuaudit-owned.json"
OWNER_FORMAT = "hvuaudit-owned/1"
OWNER_TOOL = "hvuaudit"
TMP_TAG = ".hvuaudit-tmp-"  # in every temporary name, so leftovers can be recognised


def _current_umask() -> int:
    """The process's umask: read from /proc where it can be (setting it to read it is not thread-safe)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open()`` would give a new file under the current umask."""
    return 0o666 & ~_current_umask()


def dir_mode() -> int:
    """The mode ``mkdir()`` would give a new folder under the current umask."""
    return 0o777 & ~_current_umask()


def temporary_sibling(path: Path) -> Path:
    """A fresh, empty temporary file next to ``path`` (same file system, so the rename is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TMP_TAG}", dir=path.parent)
    os.close(fd)
    return Path(tmp)


LEFTOVER_AGE_S = 60.0  # younger temporary files may belong to a write still running in another process


def remove_leftovers(path: Path) -> None:
    """Delete the temporary files that a killed write of ``path`` left beside it (a minute old or more)."""
    if path.parent.is_dir():
        now = time.time()
        for leftover in path.parent.glob(f".{path.name}{TMP_TAG}*"):
            try:
                stale = (
                    leftover.is_file()
                    and not leftover.is_symlink()
                    and now - leftover.stat().st_mtime >= LEFTOVER_AGE_S
                )
            except OSError:
                continue
            if stale:
                leftover.unlink(missing_ok=True)


def write_atomically(path: Path | str, writer: Callable[[Path], Any], *, doing: str | None = None) -> None:
    """Call ``writer(tmp)`` on a temporary sibling, then rename it over ``path``.

    The result has the umask's mode. A full disk or a refused permission becomes a
    :class:`~hvucontracts.errors.SystemRefusal` that names the file; the old ``path`` is
    left as it was.
    """
    path = Path(path)
    refuse_special(path)
    remove_leftovers(path)
    tmp = temporary_sibling(path)
    try:
        writer(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        refusal = system_refusal(exc, doing or f"could not write {path}")
        if refusal is not None:
            raise refusal from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomically(path: Path | str, data: bytes) -> None:
    write_atomically(path, lambda tmp: tmp.write_bytes(data))


def write_text_atomically(path: Path | str, text: str) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomically(path: Path | str, data: Any) -> None:
    write_text_atomically(path, json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def read_json(path: Path | str, what: str, hint: str | None = None) -> Any:
    """A JSON document, or an :class:`InputError` naming the file, the line and what it should be."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
        return json.loads(text)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file ({what})", hint=hint) from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: the {what} is not UTF-8 text (byte {exc.start})", hint=hint) from exc
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}, line {exc.lineno}: the {what} is not valid JSON ({exc.msg})", hint=hint
        ) from exc


# --------------------------------------------------------------------------- protected paths

DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file


def refuse_special(path: Path | str) -> None:
    """Refuse (exit 5) to replace anything but a regular file: a symbolic link, a device, a FIFO, a socket.

    Renaming over them would turn ``/dev/null`` or a link into a plain file (and open a FIFO to
    check it would hang): give a regular file's path, or leave ``-o`` out to write to stdout.
    """
    path = Path(path)
    if path.is_symlink():
        raise ConflictError(
            f"refused to write {path}: it is a symbolic link (to {os.readlink(path)})",
            hint="give the path of a regular file (the link's target, for instance)",
        )
    if path.exists() and not path.is_file() and not path.is_dir():
        raise ConflictError(
            f"refused to write {path}: it is not a regular file (a device, FIFO or socket)",
            hint="give the path of a regular file, or leave -o out to write to stdout",
        )


def is_duckdb_file(path: Path | str) -> bool:
    """True when ``path`` is a regular file that starts like a DuckDB database (never opens anything else)."""
    if not Path(path).is_file():
        return False
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError:
        return False
    return len(head) == 12 and head[8:12] == DUCKDB_MAGIC


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return _resolved(a) == _resolved(b)


def refuse_overwriting(output: Path | str, inputs: Iterable[Path | str | None]) -> None:
    """Refuse (exit 5) an output file that is one of the command's inputs, the store, its log, any DuckDB
    file, or not a regular file."""
    output = Path(output)
    for item in inputs:
        if item is not None and _same_file(output, Path(item)):
            raise ConflictError(
                f"refused to write {output}: it is {item}, which this command also reads or writes",
                hint="choose another --output; an output never replaces the store, its .wal or an input file",
            )
    refuse_special(output)
    if is_duckdb_file(output):
        raise ConflictError(
            f"refused to write {output}: it is a DuckDB store",
            hint="choose another --output; an output never replaces a store",
        )


def _resolved(path: Path | str) -> Path:
    return Path(path).expanduser().resolve()


def refuse_protected(folder: Path | str, protected: Iterable[Path | str | None] = ()) -> None:
    """Refuse (exit 5) to replace ``folder`` when it is ``/``, home, the current folder, or holds a protected
    path."""
    target = _resolved(folder)
    fixed = {
        Path("/"): "the root folder",
        _resolved(Path.home()): "your home folder",
        _resolved(Path.cwd()): "the current folder",
    }
    for place, name in fixed.items():
        if target == place:
            raise ConflictError(
                f"refused to replace {folder}: it is {name}", hint="choose a new folder for --out"
            )
    for item in protected:
        if item is None:
            continue
        guarded = _resolved(item)
        if guarded == target or guarded.is_relative_to(target):
            raise ConflictError(
                f"refused to replace {folder}: it holds {item}, which no command may delete",
                hint="choose a new folder for --out, outside the store and the videos",
            )


# --------------------------------------------------------------------------- owned folders


def owner_marker(kind: str, files: Iterable[str]) -> bytes:
    """The bytes of a folder's ownership marker: every file it may hold, as a relative path."""
    doc = {"format": OWNER_FORMAT, "tool": OWNER_TOOL, "kind": kind, "files": sorted(set(files))}
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def write_owner_marker(folder: Path, kind: str, files: Iterable[str]) -> None:
    """Write (or rewrite) the marker of ``folder``; write it before the files it lists."""
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(folder / OWNER_FILE, owner_marker(kind, files))


def _inside(entry: object) -> bool:
    """A marker entry must be a plain relative path inside its folder: no "/..." , no "..", no "\\"."""
    if not isinstance(entry, str) or not entry or entry.startswith("/") or "\\" in entry or "\x00" in entry:
        return False
    return all(part not in ("", ".", "..") for part in entry.split("/"))


def read_owner_marker(folder: Path) -> dict | None:
    """The marker of a folder hvuaudit made, or None when there is none, it is not ours, or it was tampered
    with (an entry that is not a plain relative path inside the folder makes the whole marker invalid)."""
    marker = folder / OWNER_FILE
    if not marker.is_file() or marker.is_symlink():
        return None
    try:
        doc = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != OWNER_FORMAT or doc.get("tool") != OWNER_TOOL:
        return None
    if not isinstance(doc.get("files"), list) or not all(_inside(entry) for entry in doc["files"]):
        return None
    return doc


def adopt_files(folder: Path, under: Iterable[str]) -> None:
    """Add every file now under the sub-folders ``under`` of ``folder`` to its marker.

    For a folder filled by several writers over a long run (the demo): each step adopts
    what it wrote once it is done. A file a user adds afterwards stays foreign.
    """
    marker = read_owner_marker(folder)
    if marker is None:
        return
    files = set(marker["files"])
    for sub in under:
        root = folder / sub
        if root.is_dir() and not root.is_symlink():
            for path in root.rglob("*"):
                if path.is_file() and not path.is_symlink() and not _under_symlink(path, folder):
                    files.add(path.relative_to(folder).as_posix())
    write_owner_marker(folder, marker["kind"], files)


def _under_symlink(path: Path, folder: Path) -> bool:
    """True when a folder between ``folder`` and ``path`` is a symbolic link (never followed)."""
    return any(
        (folder / parent).is_symlink() for parent in path.relative_to(folder).parents if parent != Path(".")
    )


def foreign_entries(folder: Path, marker: dict) -> list[str]:
    """What is in ``folder`` that its marker does not list (relative paths; symlinks always count)."""
    files = set(marker["files"]) | {OWNER_FILE}
    foreign = []
    for root, dirs, names in os.walk(folder):
        rel_root = Path(root).relative_to(folder)
        for name in list(dirs):
            if (Path(root) / name).is_symlink():
                foreign.append((rel_root / name).as_posix())
                dirs.remove(name)
        for name in names:
            rel = (rel_root / name).as_posix()
            if rel not in files or (Path(root) / name).is_symlink():
                foreign.append(rel)
    return sorted(foreign)


def check_replaceable(
    folder: Path | str, *, kind: str, protected: Iterable[Path | str | None] = (), force: bool
) -> bool:
    """May ``folder`` be (re)written? True when it exists and will be replaced, False when it is absent or
    empty.

    Refuses (exit 5) a folder that is not empty unless ``force`` is given *and* it carries
    an hvuaudit marker of this ``kind`` *and* holds nothing the marker does not list.
    """
    folder = Path(folder)
    if folder.is_symlink():
        raise ConflictError(
            f"{folder} is a symbolic link; refused to write through it", hint="choose another --out"
        )
    if folder.exists() and not folder.is_dir():
        raise ConflictError(f"{folder} exists and is not a folder", hint="choose another --out")
    if folder.is_dir():
        refuse_protected(folder, protected)
    if not folder.is_dir() or not any(folder.iterdir()):
        return False
    marker = read_owner_marker(folder)
    if marker is None or marker.get("kind") != kind:
        listing = ", ".join(sorted(p.name for p in folder.iterdir())[:10])
        made = f"made by hvuaudit as a {marker['kind']} folder" if marker else "not made by hvuaudit"
        raise ConflictError(
            f"{folder} is not empty and is {made}; it holds: {listing}",
            hint=f"choose another --out; --force replaces only a {kind} folder that hvuaudit wrote",
        )
    if not force:
        raise ConflictError(
            f"{folder} already exists and holds a {kind}",
            hint="pass --force to replace it, or choose another --out",
        )
    foreign = foreign_entries(folder, marker)
    if foreign:
        shown = ", ".join(foreign[:10]) + (f" and {len(foreign) - 10} more" if len(foreign) > 10 else "")
        raise ConflictError(
            f"refused to replace {folder}: it holds {len(foreign)} file(s) that hvuaudit did not write: "
            f"{shown}",
            hint="move those files elsewhere first, or choose another --out",
        )
    return True


def remove_owned(folder: Path) -> list[str]:
    """Delete the files the marker of ``folder`` lists, then the folders that this emptied.

    Returns what was left because the marker does not list it (it appeared after the
    check), so that nothing foreign is ever deleted. Never follows a symbolic link.
    """
    marker = read_owner_marker(folder)
    if marker is None:
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    left = foreign_entries(folder, marker)
    for name in marker["files"]:
        path = folder / name
        if path.is_file() and not path.is_symlink() and not _under_symlink(path, folder):
            path.unlink()
    (folder / OWNER_FILE).unlink(missing_ok=True)
    for root, _dirs, _names in os.walk(folder, topdown=False):  # children before their parents
        try:
            Path(root).rmdir()  # only empty folders go
        except OSError:
            pass
    return left


def make_staging_dir(target: Path) -> Path:
    """A fresh temporary folder beside ``target`` (the umask's mode), to be renamed onto it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}{TMP_TAG}", dir=target.parent))
    os.chmod(staging, dir_mode())
    return staging


def remove_stale_staging(target: Path) -> None:
    """Remove the staging and retired folders that a killed replacement of ``target`` left behind.

    Only folders that carry a valid marker and nothing it does not list are removed. No age
    limit, unlike :func:`remove_leftovers`: a split export holds the store's write lock, so no
    other export of the same folder can be running.
    """
    if not target.parent.is_dir():
        return
    for leftover in target.parent.glob(f".{target.name}{TMP_TAG}*"):
        if leftover.is_dir() and not leftover.is_symlink():
            marker = read_owner_marker(leftover)
            if marker is not None and not foreign_entries(leftover, marker):
                remove_owned(leftover)


def replace_folder(staging: Path, target: Path) -> None:
    """Move a finished staging folder onto ``target``; an old ``target`` (already checked) is retired first.

    The old folder is renamed aside, the new one renamed in, then the old one's listed
    files are deleted. A kill at any point leaves either folder complete under ``target``
    and the other one as a leftover that :func:`remove_stale_staging` recognises.
    """
    if target.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}{TMP_TAG}old-", dir=target.parent))
        retired.rmdir()
        os.replace(target, retired)
        try:
            os.replace(staging, target)
        except BaseException:
            os.replace(retired, target)  # put the old folder back
            raise
        remove_owned(retired)
    else:
        os.replace(staging, target)
