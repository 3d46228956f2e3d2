"""Observed inputs: which of the files a body read count as inputs of its result, their
fingerprints as recorded with the cache entry, and their re-validation on a later lookup.

A recorded read (``observed.Reads``) is *not data*, and is dropped, when it is: under the
interpreter's prefixes or a ``site-packages`` folder, Python source or bytecode (imports), in
``/proc``, ``/sys`` or ``/dev``, in the cache's own state folder, store or catalog, a file
the body itself wrote, or already covered by the key (a path argument, or below a folder that
is one). What remains is fingerprinted with the file fingerprinter (stat cache: an unchanged
file is never re-read) and stored in the entry's components under ``"observed"``, with the
path literals of the code (``fingerprint.literals``)::

    {"files": [{"path", "kind", "fingerprint", "summary"}, ...],
     "replaced": [...]}   # what the entry this one replaced had observed (for ``why``)

An entry is fresh while every observed input still has its recorded fingerprint. A read the
library cannot attribute gets fingerprint ``None``, which is never fresh (the key recomputes
at every call), and a warning, once per file: a file gone before it could be fingerprinted,
one that changed between the read and its fingerprint, a special file, a remote location
given to a reader inside the body.
"""

from __future__ import annotations

import glob
import os
import site
import stat as statmod
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.observed import Reads, stat_key
from featurecache.fingerprint.types import InputFingerprint
from featurecache.hashing import HASH_ALGO, hash_struct

OBSERVED = "observed"
# The kind and fingerprint of a path literal that named nothing when the entry was computed:
# fresh while the path still names nothing (``fingerprint.literals``).
ABSENT = "absent"
_CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyi", ".pyd", ".so", ".pth", ".dylib")
_SYSTEM_ROOTS = ("/proc/", "/sys/", "/dev/")
_MAX_OBSERVED = 10_000


class ObservedInputWarning(UserWarning):
    """A miss read a file featurecache cannot re-validate later."""


@dataclass(frozen=True)
class ObservedInput:
    """One file (or folder, or glob) the body read, as recorded with the entry."""

    path: str  # logical: project-relative inside the project, else absolute (posix)
    kind: str  # "file" | "directory" | "glob"
    fingerprint: str | None  # None: could not be fingerprinted, never fresh
    summary: str
    # A file's content hash alone: re-validation compares it without rebuilding the
    # fingerprint (the path is the recorded one by construction).
    content: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "fingerprint": self.fingerprint,
            "summary": self.summary,
            "content": self.content,
        }


@dataclass(frozen=True)
class Exclusions:
    """Where reads are not data: absolute folder prefixes (ending in a separator) and files."""

    prefixes: tuple[str, ...]
    files: frozenset[str] = frozenset()

    @classmethod
    def for_cache(cls, own: Iterable[Path], own_files: Iterable[Path] = ()) -> Exclusions:
        """The interpreter's folders, plus the cache's own folders and files."""
        folders = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
        folders.update(site.getsitepackages())
        folders.add(site.getusersitepackages())
        folders.update(os.fspath(p) for p in own)
        prefixes = tuple(sorted({os.path.join(os.path.abspath(f), "") for f in folders if f}))
        files = set()
        for path in own_files:
            base = os.path.abspath(path)
            files.update({base, f"{base}-wal", f"{base}-shm", f"{base}-journal"})
        return cls(prefixes=prefixes + _SYSTEM_ROOTS, files=frozenset(files))

    def excludes(self, path: str) -> bool:
        return (
            path in self.files
            or path.endswith(_CODE_SUFFIXES)
            or "/__pycache__/" in path
            or path.startswith(self.prefixes)
        )


def covered_paths(inputs: Mapping[str, InputFingerprint]) -> tuple[str, ...]:
    """Absolute paths the key already fingerprints (files and folders given as arguments or
    found as literals)."""
    from urllib.parse import unquote, urlparse

    paths = []
    for fp in inputs.values():
        uri = fp.source_uri or ""
        if fp.kind in ("file", "directory") and uri.startswith("file:"):
            paths.append(unquote(urlparse(uri).path))
    return tuple(paths)


def is_covered(path: str, covered: Sequence[str]) -> bool:
    return any(path == c or path.startswith(os.path.join(c, "")) for c in covered)


def settle(
    reads: Reads,
    *,
    files: FileFingerprinter,
    exclude: Exclusions,
    covered: Sequence[str],
) -> tuple[list[ObservedInput], dict[str, str]]:
    """The observed inputs of a finished body, and the reads it could not attribute (path ->
    why). Fingerprints are taken now; a file whose stat moved since the body opened it was
    changed while it was read, and is not attributed."""
    # A remote location read inside the body cannot be re-validated: never fresh.
    observed = [ObservedInput(src, "remote", None, f"remote {src}") for src in reads.unseen]
    problems: dict[str, str] = {
        src: f"{why}, which featurecache cannot re-validate" for src, why in reads.unseen.items()
    }
    for path, opened in sorted(reads.read.items()):
        if path in reads.written or exclude.excludes(path) or is_covered(path, covered):
            continue
        item, problem = observe_path(path, opened, files)
        observed.append(item)
        if problem:
            problems[item.path] = problem
    for pattern in reads.globs:
        if not is_covered(pattern, covered):
            observed.append(glob_input(pattern, files))
    unique = {(o.kind, o.path): o for o in observed}
    return list(unique.values())[:_MAX_OBSERVED], problems


def observe_path(
    path: str, opened: Any, files: FileFingerprinter
) -> tuple[ObservedInput, str | None]:
    logical = files.logical_path(Path(path))
    try:
        st = os.stat(path)
    except OSError:
        return ObservedInput(logical, "file", None, f"file {logical} (gone)"), (
            "it was gone before it could be fingerprinted"
        )
    if not (statmod.S_ISREG(st.st_mode) or statmod.S_ISDIR(st.st_mode)):
        return ObservedInput(logical, "file", None, f"special file {logical}"), (
            "it is not a regular file"
        )
    fp = _fingerprint(path, files)
    if fp is None:
        return ObservedInput(logical, "file", None, f"file {logical} (gone)"), (
            "it was gone before it could be fingerprinted"
        )
    if statmod.S_ISREG(st.st_mode) and opened is not None and stat_key(os.stat(path)) != opened:
        return ObservedInput(logical, fp.kind, None, fp.summary), (
            "it changed while the feature read it"
        )
    content = fp.value.get("content") if fp.kind == "file" and isinstance(fp.value, dict) else None
    return ObservedInput(logical, fp.kind, fp.fingerprint, fp.summary, content), None


def _fingerprint(path: str, files: FileFingerprinter) -> InputFingerprint | None:
    from featurecache.errors import FeatureCacheError

    try:
        return files.fingerprint("observed", path)
    except (OSError, FeatureCacheError):
        return None


def glob_input(pattern: str, files: FileFingerprinter) -> ObservedInput:
    """A glob the body expanded: the sorted matches with each file's content, so that an
    added, removed or edited match changes it."""
    matches = sorted(glob.glob(pattern, recursive=True))
    entries = []
    for match in matches:
        fp = _fingerprint(match, files)
        entries.append([files.logical_path(Path(match)), fp.fingerprint if fp else None])
    logical = files.logical_path(Path(pattern))
    digest = f"{HASH_ALGO}:{hash_struct(['glob', logical, entries])}"
    return ObservedInput(logical, "glob", digest, f"glob {logical} ({len(matches)} files)")


def resolve(logical: str, files: FileFingerprinter) -> str:
    """An absolute path for a recorded logical path (project-relative ones against this
    process's project root)."""
    if os.path.isabs(logical) or files.project_root is None:
        return os.path.abspath(logical)
    return str(files.project_root / logical)


def first_change(recorded: Sequence[Mapping[str, Any]], files: FileFingerprinter) -> str | None:
    """The path of the first observed input whose fingerprint is not the recorded one (or that
    could never be fingerprinted), or None when all are unchanged. Costs a stat and a stat-cache
    lookup per unchanged file."""
    for item in recorded:
        logical, expected = str(item.get("path")), item.get("fingerprint")
        if expected is None:
            return logical
        absolute = resolve(logical, files)
        if item.get("kind") == ABSENT:
            if os.path.lexists(absolute):
                return logical
            continue
        content = item.get("content")
        if item.get("kind") == "file" and isinstance(content, str):
            if _content_now(absolute, files) != content:
                return logical
            continue
        if item.get("kind") == "glob":
            now: str | None = glob_input(absolute, files).fingerprint
        else:
            fp = _fingerprint(absolute, files)
            now = fp.fingerprint if fp is not None else None
        if now != expected:
            return logical
    return None


# Per process: absolute path -> (stat, content hash) of files re-validated here, kept only
# once the file's last change is older than the stat cache's racy window (the same rule the
# stat cache trusts), so that a hit re-validates an unchanged file with one stat and no query.
_CONFIRMED_LIMIT = 65_536
_confirmed: dict[str, tuple[tuple[int, int, int, int, int], str]] = {}


def _content_now(absolute: str, files: FileFingerprinter) -> str | None:
    """A regular file's content hash through the stat cache; None when it is gone or is
    no longer a regular file."""
    try:
        st = os.stat(absolute)
    except OSError:
        return None
    if not statmod.S_ISREG(st.st_mode):
        return None
    key = stat_key(st)
    known = _confirmed.get(absolute)
    if known is not None and known[0] == key:
        return known[1]
    try:
        content = files.content_fingerprint(Path(absolute), st)
    except OSError:
        return None
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) >= files.racy_window_ns:
        if len(_confirmed) >= _CONFIRMED_LIMIT:
            _confirmed.clear()
        _confirmed[absolute] = (key, content)
    return content


def recorded_of(components: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The observed inputs recorded in an entry's components ([] for none)."""
    block = components.get(OBSERVED)
    if not isinstance(block, Mapping):
        return []
    items = block.get("files")
    return [item for item in items if isinstance(item, Mapping)] if isinstance(items, list) else []


def block_for(
    observed: Sequence[ObservedInput], replaced: Sequence[Mapping[str, Any]] | None
) -> dict[str, Any] | None:
    """The ``"observed"`` component of a new entry; None when there is nothing to record."""
    if not observed and not replaced:
        return None
    block: dict[str, Any] = {"files": [item.to_json() for item in observed]}
    if replaced:
        block["replaced"] = [dict(item) for item in replaced]
    return block


_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_unattributed(feature: str, problems: Mapping[str, str]) -> None:
    """One warning per file and process for reads that cannot be re-validated."""
    for path, why in problems.items():
        with _warned_lock:
            if path in _warned:
                continue
            _warned.add(path)
        warnings.warn(
            f"featurecache: {feature} read {path}, but {why}: its result is recomputed at every "
            "call until it can be fingerprinted. Pass the file as a path argument, or read it "
            "before the call.",
            ObservedInputWarning,
            stacklevel=4,
        )


@dataclass
class Observation:
    """What one call learns about observed inputs: what the stale entry it found had
    recorded (``replaced``), and the block to record with its new entry (``block``)."""

    replaced: list[Mapping[str, Any]] | None = None
    block: dict[str, Any] | None = None
