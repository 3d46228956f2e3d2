"""``DvcPath``: a file or directory of a DVC project at a git revision, as a feature input.

    clicks = DvcPath("https://github.com/org/data-registry", "clicks/2026-03.parquet", rev="v3")

It is fingerprinted from what DVC recorded at that revision (``dvc.api.DVCFileSystem``): the md5
in the ``.dvc`` file or ``dvc.lock`` (``md5:…``; directories ``md5:….dir``; legacy DVC 2 entries
``md5-dos2unix:…``), or the git blob id (``git-blob-sha1:…``) of a file git itself tracks.
Those records are content addresses only because the revision is fixed: the revision is
resolved to its commit once per object and every read goes to that same commit, so the bytes
a feature reads are the bytes its key names, even when a branch moves meanwhile. (A workspace
file whose record may be out of date is passed as a ``pathlib.Path`` instead: see
``dvc_state``.) Nothing is downloaded to fingerprint it.

The fingerprint covers the repository-relative path and the recorded hash, not the repository
URL or revision name: the same bytes at another tag or in a fork give the same key.

``dvc`` is imported when a DvcPath is first resolved or read, never at import time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from featurecache.errors import (
    DvcError,
    InputNotFoundError,
    MissingDependencyError,
    UnsupportedInputError,
)
from featurecache.fingerprint.files import human_size
from featurecache.fingerprint.inputs import register_input_type
from featurecache.fingerprint.types import InputFingerprint
from featurecache.hashing import HASH_ALGO, hash_struct

KIND = "dvc"


@dataclass(frozen=True)
class DvcRecord:
    """What DVC (or git) recorded for a DvcPath at its resolved commit."""

    commit: str
    content: str  # algorithm-prefixed: "md5:<hex>", "md5:<hex>.dir", "git-blob-sha1:<hex>"
    size: int | None
    is_dir: bool


class DvcPath:
    """A DVC-tracked (or git-tracked) file or directory of ``repo`` at revision ``rev``.

    ``repo`` is a local path or a git URL (anything ``dvc.api`` accepts); ``path`` is relative
    to the repository root; ``rev`` is a commit, tag or branch (required: the recorded hash is
    only authoritative at a fixed revision). Read it with ``open()``, ``read_bytes()``,
    ``read_text()`` or ``local_path()``. Immutable and hashable."""

    __slots__ = ("_record", "_resolving", "path", "repo", "rev")

    repo: str
    path: str
    rev: str
    _record: DvcRecord | None
    _resolving: threading.Lock

    def __init__(self, repo: str | os.PathLike[str], path: str, *, rev: str) -> None:
        if not isinstance(rev, str) or not rev.strip():
            raise TypeError(
                "DvcPath needs rev= (a commit, tag or branch): DVC's recorded hash names the "
                "content only at a fixed revision. Pass a pathlib.Path for a workspace file."
            )
        text = os.fspath(repo)
        if "://" not in text and not text.startswith("git@"):
            text = os.path.abspath(text)
        relative = Path(os.fspath(path)).as_posix().strip("/")
        if not relative or relative.startswith("../") or relative == "..":
            raise ValueError(f"DvcPath path {path!r} must name a file inside the repository")
        object.__setattr__(self, "repo", text)
        object.__setattr__(self, "path", relative)
        object.__setattr__(self, "rev", rev.strip())
        object.__setattr__(self, "_record", None)
        object.__setattr__(self, "_resolving", threading.Lock())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"DvcPath is immutable (cannot set {name!r})")

    # -- identity ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def uri(self) -> str:
        """``<repo>#<path>@<rev>``: where it came from, for lineage."""
        repo = Path(self.repo).as_uri() if os.path.isabs(self.repo) else self.repo
        commit = self._record.commit if self._record is not None else self.rev
        return f"{repo}#{self.path}@{commit}"

    def __str__(self) -> str:
        return f"{self.repo}#{self.path}@{self.rev}"

    def __repr__(self) -> str:
        return f"DvcPath({self.repo!r}, {self.path!r}, rev={self.rev!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DvcPath):
            return NotImplemented
        return (self.repo, self.path, self.rev) == (other.repo, other.path, other.rev)

    def __hash__(self) -> int:
        return hash((DvcPath, self.repo, self.path, self.rev))

    def __reduce__(self) -> tuple[Any, ...]:
        # For Dask / Ray workers: the resolved commit travels along, so a worker reads the
        # very bytes the driver's key names.
        return (_rebuild, (self.repo, self.path, self.rev, self._record))

    # -- what DVC recorded ---------------------------------------------------------------------

    def record(self) -> DvcRecord:
        """The commit ``rev`` resolves to and the hash recorded there (resolved once)."""
        if self._record is None:
            with self._resolving:
                if self._record is None:
                    object.__setattr__(self, "_record", _resolve(self))
        assert self._record is not None
        return self._record

    @property
    def commit(self) -> str:
        return self.record().commit

    # -- reading (always from the resolved commit) ----------------------------------------------

    def open(self, mode: str = "rb", encoding: str | None = None) -> IO[Any]:
        """A file object on the content at the resolved commit (``with p.open() as f:``)."""
        if mode not in ("r", "rb"):
            raise ValueError(f"DvcPath opens for reading only ('r' or 'rb'), not {mode!r}")
        fs = _filesystem(self.repo, self.record().commit)
        handle: IO[Any] = fs.open(self.path, mode="rb")
        if mode == "r":
            import io

            return io.TextIOWrapper(handle, encoding=encoding or "utf-8")
        return handle

    def read_bytes(self) -> bytes:
        with self.open("rb") as handle:
            data: bytes = handle.read()
        return data

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def local_path(self) -> Path:
        """A local copy (file or directory), downloaded once per content into a
        content-addressed folder under the temp directory; for readers that need a path
        (``pl.read_parquet(p.local_path())``). Treat it as read-only."""
        record = self.record()
        folder = Path(tempfile.gettempdir()) / "featurecache-dvc" / _safe(record.content)
        target = folder / self.name
        if target.exists():
            return target
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
        try:
            fs = _filesystem(self.repo, record.commit)
            fs.get(self.path, str(staging / self.name), recursive=record.is_dir)
            try:
                os.replace(staging / self.name, target)
            except OSError:
                if not target.exists():  # another process won the race otherwise
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target


def _rebuild(repo: str, path: str, rev: str, record: DvcRecord | None) -> DvcPath:
    value = DvcPath(repo, path, rev=rev)
    object.__setattr__(value, "_record", record)
    return value


def fingerprint_dvc_path(argument: str, value: DvcPath) -> InputFingerprint:
    """The fingerprint of a DvcPath argument: its recorded hash, nothing downloaded."""
    try:
        record = value.record()
    except FileNotFoundError:
        raise InputNotFoundError(argument, str(value)) from None
    if record.is_dir and record.content.startswith("git-"):
        raise UnsupportedInputError(
            argument,
            "DvcPath to a folder tracked by git, not DVC",
            ("DvcPath to a file, or to a folder tracked by DVC",),
            "Point it at the files, or track the folder with dvc add.",
        )
    size = "" if record.size is None else f"{human_size(record.size)}, "
    return InputFingerprint(
        argument=argument,
        kind=KIND,
        fingerprint=f"{HASH_ALGO}:{hash_struct(['dvc', value.path, record.content])}",
        summary=f"dvc {value.path}@{value.rev} ({size}{record.content[:18]}, "
        f"commit {record.commit[:12]})",
        value={
            "repo": value.repo,
            "path": value.path,
            "rev": value.rev,
            "commit": record.commit,
            "content": record.content,
            "size": record.size,
        },
        source_uri=value.uri,
    )


# -- DVC access --------------------------------------------------------------------------------

_filesystems: dict[tuple[str, str], Any] = {}
_filesystems_lock = threading.Lock()


def _filesystem(repo: str, rev: str) -> Any:
    """One ``DVCFileSystem`` per (repository, commit) for the process: opening one costs a
    ``Repo`` (and, for a URL, a clone)."""
    key = (repo, rev)
    with _filesystems_lock:
        fs = _filesystems.get(key)
        if fs is None:
            try:
                from dvc.api import DVCFileSystem
            except ImportError:
                raise MissingDependencyError("dvc", "dvc", "reading a DvcPath input") from None
            try:
                fs = DVCFileSystem(repo, rev=rev)
            except Exception as exc:  # DVC's errors become one typed error (re-raised)
                raise _dvc_error(repo, rev, exc) from exc
            _filesystems[key] = fs
        return fs


def _resolve(value: DvcPath) -> DvcRecord:
    fs = _filesystem(value.repo, value.rev)
    try:
        commit = str(fs.repo.get_rev())
        info = fs.info(value.path)
    except FileNotFoundError:
        raise
    except Exception as exc:  # re-raised as a DvcError
        raise _dvc_error(value.repo, value.rev, exc) from exc
    # Later reads go through the filesystem of the commit itself, which a moving branch
    # cannot change; the one opened by rev name is reused for it.
    with _filesystems_lock:
        _filesystems.setdefault((value.repo, commit), fs)
    is_dir = info.get("type") == "directory"
    dvc_info = info.get("dvc_info") or {}
    entry = dvc_info.get("entry")
    hash_info = getattr(entry, "hash_info", None)
    if hash_info is not None and hash_info.value:
        content = f"{hash_info.name}:{hash_info.value}"
    elif dvc_info.get("md5"):
        content = f"md5:{dvc_info['md5']}"
    else:
        sha = (info.get("fs_info") or {}).get("sha")
        if not sha:
            raise DvcError(
                str(value),
                "neither DVC nor git records a hash for it",
                "Track it with dvc add (or commit it to git) at that revision.",
            )
        content = f"git-blob-sha1:{sha}"
    size = info.get("size")
    return DvcRecord(commit, content, int(size) if size is not None else None, is_dir)


def _dvc_error(repo: str, rev: str, exc: Exception) -> DvcError:
    name = type(exc).__name__
    if name == "RevError":
        return DvcError(repo, f"unknown git revision {rev!r}", "Check the tag, branch or commit.")
    if name in ("CloneError", "NotDvcRepoError", "SCMError"):
        return DvcError(
            repo, f"is not a readable git + DVC repository ({exc})", "Check the path or URL."
        )
    return DvcError(repo, f"DVC failed at revision {rev!r}: {name}: {exc}", "See DVC's message.")


def _safe(content: str) -> str:
    return content.replace(":", "-").replace("/", "-")


register_input_type(DvcPath, fingerprint_dvc_path)
