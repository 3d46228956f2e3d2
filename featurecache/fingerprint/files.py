"""Fingerprints of local files and directories: content hashes behind a host-local stat cache.

A file's fingerprint covers its path (relative to the project root when inside it, so clones
on other machines agree) and its content: xxh3-128 of its bytes. A function given a path may
use the path itself (a partition date in a folder name, an output named after the input), so
two files with equal bytes at different paths are different inputs. Directories are a Merkle
hash over their sorted relative entries (files with their content hashes, sub-directories,
symlink cycles, broken links, special files); nothing is skipped, hidden files included. The
matches of a glob (``tree_content``, for ``str`` arguments: ``pathstr``) are hashed the same
way. Folders and globs also keep a listing of their files with short content hashes, so that
``why`` can name the file that changed; past ``LISTED_FILES_MAX`` files only the count and
the digest are kept (the key still covers every file).

The stat cache (SQLite under ``state_dir``, WAL, shared by the processes of one host) maps an
absolute path to the content hash last computed for it together with the file's (st_dev,
st_ino, st_size, st_mtime_ns, st_ctime_ns). An entry is used only when the file's stat is
identical *and* the file was last changed at least ``racy_window_ns`` before it was hashed:
within the same timestamp tick a write need not change the stat at all (git's "racy git"
problem), so such files are hashed again until their change is old enough to be trusted.

Resolvers (``add_resolver``) are asked first; the DVC integration uses one to return the md5
DVC's own state database holds for a tracked file. A resolver receives the absolute path and
its ``os.stat_result`` and returns an algorithm-prefixed content hash ("md5:…") valid for
exactly that stat, or None to pass.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat as statmod
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from featurecache.errors import InputNotFoundError, UnsupportedInputError
from featurecache.fingerprint.listing import TreeContent, file_listing
from featurecache.fingerprint.types import InputFingerprint
from featurecache.hashing import HASH_ALGO, hash_readable, hash_struct

FileResolver = Callable[[Path, os.stat_result], str | None]

DB_NAME = "file-hashes.sqlite"
_SCHEMA_VERSION = 1
# read() rather than mmap: ~10 GB/s from the page cache against mmap's ~18, but a file truncated
# while it is being hashed raises instead of killing the process with SIGBUS.
_CHUNK = 2 << 20
_RETRIES = 3  # re-reads of a file whose stat changed while it was being hashed

_Key = tuple[int, int, int, int, int]  # dev, ino, size, mtime_ns, ctime_ns
# Up to this many glob matches, each file's stat-cache row is looked up on its own.
_FEW_MATCHES = 32


def _signed(value: int) -> int:
    """st_dev / st_ino are unsigned 64-bit; SQLite integers are signed."""
    return value - (1 << 64) if value >= (1 << 63) else value


def _key(st: os.stat_result) -> _Key:
    return (_signed(st.st_dev), _signed(st.st_ino), st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


class FileFingerprinter:
    """Content fingerprints of paths, cached per host. Thread-safe; fork-safe (a child process
    opens its own connection)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        project_root: Path | None = None,
        racy_window_ns: int = 2_000_000_000,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.project_root = Path(os.path.abspath(project_root)) if project_root else None
        self.racy_window_ns = racy_window_ns
        self._clock = clock
        self._resolvers: list[FileResolver] = []
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._disabled = False
        # Counters, for tests and ``featurecache stats``.
        self.files_hashed = 0
        self.bytes_hashed = 0
        self.cache_hits = 0

    # ----------------------------------------------------------------- public API
    @property
    def resolvers(self) -> tuple[FileResolver, ...]:
        return tuple(self._resolvers)

    def add_resolver(self, resolver: FileResolver) -> None:
        """Ask ``resolver(path, stat)`` for a file's content hash before our own cache."""
        self._resolvers.append(resolver)

    def fingerprint(self, argument: str, path: str | os.PathLike[str]) -> InputFingerprint:
        """The fingerprint of a path argument (a file or a directory)."""
        absolute = Path(os.path.abspath(os.fspath(path)))
        try:
            st = os.stat(absolute)
        except FileNotFoundError:
            raise InputNotFoundError(argument, str(path)) from None
        logical = self.logical_path(absolute)
        if statmod.S_ISDIR(st.st_mode):
            return self._directory(argument, absolute, logical)
        if not statmod.S_ISREG(st.st_mode):
            raise UnsupportedInputError(
                argument,
                f"path to a special file ({path})",
                ("regular files", "directories"),
                "featurecache fingerprints the content of regular files and directories only.",
            )
        content = self.content_fingerprint(absolute, st)
        return InputFingerprint(
            argument=argument,
            kind="file",
            fingerprint=f"{HASH_ALGO}:{hash_struct(['file', logical, content])}",
            summary=f"file {logical} ({human_size(st.st_size)})",
            value={"path": logical, "content": content, "size": st.st_size},
            source_uri=absolute.as_uri(),
        )

    def content_fingerprint(self, path: Path, st: os.stat_result | None = None) -> str:
        """Algorithm-prefixed content hash of a regular file ("xxh3_128:<hex>", or a resolver's
        answer such as "md5:<hex>")."""
        path = Path(os.path.abspath(path))
        st = os.stat(path) if st is None else st
        return self._content(path, st, None)

    def logical_path(self, absolute: Path) -> str:
        """The path as it enters fingerprints: project-relative when inside the project."""
        if self.project_root is not None:
            try:
                return absolute.relative_to(self.project_root).as_posix()
            except ValueError:
                pass
        return absolute.as_posix()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> FileFingerprinter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- content hashing
    def _content(self, path: Path | str, st: os.stat_result, known: dict[str, Any] | None) -> str:
        # The stat cache first: it answers in microseconds, while a resolver may have to import
        # and open DVC (a third of a second per process). A resolver's answer is remembered
        # like our own hash, under the same stat key and racy-write rule.
        key = str(path)
        row = known.get(key) if known is not None else self._lookup(key)
        if row is not None and tuple(row[:5]) == _key(st):
            digest, hashed_at_ns = row[5], row[6]
            if hashed_at_ns - max(st.st_mtime_ns, st.st_ctime_ns) >= self.racy_window_ns:
                self.cache_hits += 1
                return str(digest)
        for resolver in self._resolvers:
            started_ns = self._clock()
            answer = resolver(Path(path), st)
            if answer:
                self._store(key, _key(st), answer, started_ns)
                return answer
        return self._hash_and_store(path, key)

    def _hash_and_store(self, path: Path | str, key: str) -> str:
        for _ in range(_RETRIES):
            started_ns = self._clock()
            with open(path, "rb") as handle:
                before = os.fstat(handle.fileno())
                digest = f"{HASH_ALGO}:{self._hash_handle(handle)}"
                after = os.fstat(handle.fileno())
            if _key(before) == _key(after):
                self._store(key, _key(before), digest, started_ns)
                return digest
        # Still being written: use the hash of what was read, but never cache it.
        return digest

    def _hash_handle(self, handle: Any) -> str:
        digest, count = hash_readable(handle, _CHUNK)
        self.bytes_hashed += count
        self.files_hashed += 1
        return digest

    # ----------------------------------------------------------------- directories
    def _directory(self, argument: str, absolute: Path, logical: str) -> InputFingerprint:
        known = self._rows_under(str(absolute))
        entries: list[list[Any]] = []
        totals = [0, 0]  # files, bytes
        self._walk(absolute, "", frozenset(), entries, totals, known)
        content = f"{HASH_ALGO}:{hash_struct(['directory', entries])}"
        files, size = totals
        return InputFingerprint(
            argument=argument,
            kind="directory",
            fingerprint=f"{HASH_ALGO}:{hash_struct(['directory', logical, content])}",
            summary=f"directory {logical} ({files:,} files, {human_size(size)})",
            value={
                "path": logical,
                "content": content,
                "files": files,
                "size": size,
                "listing": file_listing(entries, prefix=logical),
            },
            source_uri=absolute.as_uri(),
        )

    def tree_content(self, matches: Sequence[str], base: str) -> TreeContent:
        """The content of the paths a glob matched (as ``glob`` spelled them): each file by its
        content hash, each matched folder walked as a directory argument is. ``base`` is the
        folder every match lies under: for many matches its stat-cache rows are read in one
        query, for a few each is looked up (``*.csv`` at the top of a big project must not
        read the whole project's rows)."""
        bulk = len(matches) > _FEW_MATCHES
        known = self._rows_under(os.path.abspath(base)) if bulk else None
        entries: list[list[Any]] = []
        totals = [0, 0]  # files, bytes
        for name in matches:
            absolute = Path(os.path.abspath(name))
            try:
                st = os.stat(absolute)
            except FileNotFoundError:  # a broken link, or removed since glob listed it
                entries.append(["missing", name])
                continue
            if statmod.S_ISDIR(st.st_mode):
                entries.append(["dir", name])
                rows = known if known is not None else self._rows_under(str(absolute))
                self._walk(absolute, name, frozenset(), entries, totals, rows)
            elif statmod.S_ISREG(st.st_mode):
                entries.append(["file", name, self._content(absolute, st, known)])
                totals[0] += 1
                totals[1] += st.st_size
            else:  # fifo, socket, device: never read
                entries.append(["special", name, statmod.S_IFMT(st.st_mode)])
        files, size = totals
        return TreeContent(
            content=f"{HASH_ALGO}:{hash_struct(['glob', entries])}",
            files=files,
            size=size,
            listing=file_listing(entries, prefix=""),
        )

    def _walk(
        self,
        folder: Path,
        relative: str,
        ancestors: frozenset[tuple[int, int]],
        entries: list[list[Any]],
        totals: list[int],
        known: dict[str, Any],
    ) -> None:
        here = os.stat(folder)
        ancestors = ancestors | {(here.st_dev, here.st_ino)}
        with os.scandir(folder) as scan:
            items = sorted(scan, key=lambda entry: entry.name)
        for item in items:
            name = f"{relative}/{item.name}" if relative else item.name
            try:
                st = os.stat(item.path)  # follows symlinks: their targets are the content
            except FileNotFoundError:
                entries.append(["broken-link", name, os.readlink(item.path)])
                continue
            if statmod.S_ISDIR(st.st_mode):
                if (st.st_dev, st.st_ino) in ancestors:
                    entries.append(["cycle", name])
                    continue
                entries.append(["dir", name])
                self._walk(Path(item.path), name, ancestors, entries, totals, known)
            elif statmod.S_ISREG(st.st_mode):
                # item.path as it is: a Path per file costs more than the stat cache lookup.
                entries.append(["file", name, self._content(item.path, st, known)])
                totals[0] += 1
                totals[1] += st.st_size
            else:  # fifo, socket, device: never read
                entries.append(["special", name, statmod.S_IFMT(st.st_mode)])

    # ----------------------------------------------------------------- the SQLite cache
    def _db(self) -> sqlite3.Connection | None:
        if self._disabled:
            return None
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        path = self.state_dir / DB_NAME
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if conn.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                # Checked again under the write lock: another process may just have done it.
                if conn.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
                    conn.execute("DROP TABLE IF EXISTS file_hashes")  # a cache: rebuilt
                    conn.execute(
                        "CREATE TABLE file_hashes (path TEXT PRIMARY KEY, dev INTEGER,"
                        " ino INTEGER, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER,"
                        " digest TEXT NOT NULL, hashed_at_ns INTEGER NOT NULL) WITHOUT ROWID"
                    )
                    conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
                conn.execute("COMMIT")
        except (OSError, sqlite3.Error) as exc:
            warnings.warn(
                f"featurecache: file hash cache {path} is unusable ({exc}); path inputs will be "
                "re-read on every call. Fix its permissions or set FEATURECACHE_STATE_DIR.",
                stacklevel=4,
            )
            self._disabled = True
            return None
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _lookup(self, key: str) -> tuple[Any, ...] | None:
        with self._lock:
            conn = self._db()
            if conn is None:
                return None
            try:
                row: tuple[Any, ...] | None = conn.execute(
                    "SELECT dev, ino, size, mtime_ns, ctime_ns, digest, hashed_at_ns"
                    " FROM file_hashes WHERE path = ?",
                    (key,),
                ).fetchone()
            except sqlite3.Error:
                return None  # a cache miss: the file is hashed instead
            return row

    def _rows_under(self, folder: str) -> dict[str, Any]:
        """Every cached entry below ``folder``, in one query (directories of many files)."""
        prefix = folder.rstrip(os.sep) + os.sep
        with self._lock:
            conn = self._db()
            if conn is None:
                return {}
            try:
                rows = conn.execute(
                    "SELECT path, dev, ino, size, mtime_ns, ctime_ns, digest, hashed_at_ns"
                    " FROM file_hashes WHERE path >= ? AND path < ?",
                    (prefix, prefix[:-1] + chr(ord(os.sep) + 1)),
                ).fetchall()
            except sqlite3.Error:
                return {}
        return {row[0]: row[1:] for row in rows}

    def _store(self, key: str, stat_key: _Key, digest: str, hashed_at_ns: int) -> None:
        with self._lock:
            conn = self._db()
            if conn is None:
                return
            # Best effort: a failure (another process holding the lock too long) only costs a
            # rehash next time.
            with contextlib.suppress(sqlite3.Error):
                conn.execute(
                    "INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (key, *stat_key, digest, hashed_at_ns),
                )
