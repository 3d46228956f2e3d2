"""DVC-aware file fingerprints: a ``FileFingerprinter`` resolver that reuses what DVC's own state
database knows about a tracked file, so large DVC data is not read again to build a key.

Which fingerprint enters the key (why keys stay stable): always our own ``xxh3_128:`` content
hash. DVC's md5 is only a lookup key into the catalog's alias table (``md5`` → ``xxh3_128:…``),
so a key never depends on whether DVC is installed, whether DVC's state still knows the file,
or which machine computed it: editing a tracked file, running the pipeline, then ``dvc add``
and running it again is a hit, and a teammate without DVC shares every key.

For a DVC-tracked regular file whose current (inode, mtime, size) DVC's state confirms:

1. alias known (this process's memo, then the catalog): the canonical xxh3 digest; no byte of
   the file is read;
2. first sight of that content anywhere in the catalog: the file is read once, computing md5
   and xxh3 together; the alias is recorded only when *our* md5 equals DVC's (the table holds
   verified pairs only, so a stale DVC state on one machine cannot poison another's keys), and
   the xxh3 of what was read is returned.

Anything else returns None and the fingerprinter's own stat cache and xxh3 hashing answer: not
tracked, dvc not installed, no state entry, a state that does not match the stat, a legacy
``md5-dos2unix`` hash (which our md5 cannot verify), any exception from DVC's internal API.

Doubt: DVC's state compares (inode, mtime, size) only, and an in-place rewrite of the same
size followed by setting the old mtime back (``cp -p``, ``touch -d``, ``rsync --inplace -t``,
archive tools) would fool it. Such a rewrite always leaves ctime (which nobody can set)
different from mtime, while an ordinary write, ``git checkout`` and DVC's copy checkout leave
them equal. So DVC's answer is used only when ctime == mtime; any other file (also one that
was chmod-ed, renamed, or linked from DVC's cache in hardlink/symlink mode) is hashed by us
once and then served by our own stat cache, which keys on ctime too. Residual risk, shared
with DVC itself: the state has no "hashed at" time, so a same-size write landing in the same
timestamp tick right after DVC hashed the file is invisible to it.

Cost: nothing DVC-related is imported unless the file is at least ``min_size`` bytes (1 MiB:
below that, reading it costs less than asking DVC and the catalog), sits in a DVC repository (a
``.dvc/`` directory above it) *and* is tracked there (a ``<file>.dvc`` sidecar on it or an
ancestor folder, or a ``dvc.lock`` that names it). Then ``dvc`` is imported once per process
(~0.35 s with finding DVC's state folder) and each lookup costs tens of microseconds plus one
catalog read per distinct content (memoised). ``dvc_data.hashfile.state`` is internal DVC API
(pinned ``dvc>=3,<4``): every failure means "don't know", never an error.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import stat as statmod
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from featurecache.hashing import HASH_ALGO, new_hasher

log = logging.getLogger("featurecache.dvc")

ALIAS_ALGO = "md5"  # the only DVC algorithm whose value we can verify byte for byte
_MD5 = re.compile(r"[0-9a-f]{32}")
_CHUNK = 2 << 20
_MEMO_LIMIT = 100_000
MIN_SIZE = 1 << 20
_StatKey = tuple[int, int, int, int, int]


class AliasBook(Protocol):
    """Where md5 → canonical fingerprint aliases live (the catalog satisfies it)."""

    def lookup_alias(self, algo: str, value: str) -> str | None: ...

    def add_alias(self, algo: str, value: str, canonical: str) -> None: ...


@dataclass
class DvcStateStats:
    """What the resolver did in this process (for tests and ``featurecache stats``)."""

    state_hits: int = 0  # answered from DVC's state + a known alias: nothing read
    first_sights: int = 0  # DVC's state answered but no alias was known: read once
    aliases_recorded: int = 0
    mismatches: int = 0  # our md5 differed from DVC's state: DVC's state was stale
    state_misses: int = 0  # tracked, but DVC's state did not confirm the current stat
    doubts: int = 0  # tracked, but the stat itself is not trustworthy (ctime != mtime)
    errors: int = 0
    files_hashed: int = 0
    bytes_hashed: int = 0


def _stat_key(st: os.stat_result) -> _StatKey:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def trustworthy_stat(st: os.stat_result) -> bool:
    """Can (inode, mtime, size) stand for this file's content? Only when nothing changed the
    inode after the last write set its mtime (see the module docstring)."""
    return st.st_ctime_ns == st.st_mtime_ns


class _RepoState:
    """DVC's state database of one repository. It is opened only once DVC has created it
    (we never create DVC's files), and only ``get`` is called on it."""

    def __init__(self, root_dir: str, site_cache_dir: str) -> None:
        self.root_dir = root_dir
        self._database = os.path.join(site_cache_dir, "hashes", "local", "cache.db")
        self._site_cache_dir = site_cache_dir
        self._state: Any = None
        self._fs: Any = None
        self._opening = threading.Lock()

    @classmethod
    def open(cls, root: Path) -> _RepoState:
        from dvc.repo import Repo

        # Repo() only to learn where DVC keeps this clone's state (a per-user, per-clone
        # folder whose name DVC derives from its own version and the repository).
        repo = Repo(os.fspath(root))
        try:
            return cls(str(repo.root_dir), str(repo.site_cache_dir))
        finally:
            repo.close()

    def lookup(self, relative: str, st: os.stat_result) -> tuple[str, str] | None:
        """``(algorithm, value)`` DVC recorded for the file at exactly the stat ``st``."""
        if self._state is None:
            if not os.path.exists(self._database):
                return None  # DVC has hashed nothing in this clone yet
            from dvc_data.hashfile.state import State
            from dvc_objects.fs.local import LocalFileSystem

            with self._opening:
                if self._state is None:
                    # dvc_objects leaves LocalFileSystem.__init__ unannotated.
                    self._fs = LocalFileSystem()  # type: ignore[no-untyped-call]
                    self._state = State(self.root_dir, self._site_cache_dir)
        key = os.path.join(self.root_dir, relative)
        # DVC's own info dict, built from our stat so the answer is checked against the very
        # stat the fingerprinter holds (no window between two stat calls).
        info = {"ino": st.st_ino, "mtime": st.st_mtime, "size": st.st_size, "type": "file"}
        _meta, hash_info = self._state.get(key, self._fs, info)
        if hash_info is None or not hash_info.name or not hash_info.value:
            return None
        return str(hash_info.name), str(hash_info.value)


class DvcStateResolver:
    """``FileResolver`` for DVC-tracked files (see the module docstring). One per cache
    engine; thread-safe; repositories are found and opened once per process."""

    def __init__(self, aliases: AliasBook | None, *, min_size: int = MIN_SIZE) -> None:
        self.aliases = aliases
        self.min_size = min_size
        self.stats = DvcStateStats()
        self._lock = threading.Lock()
        self._roots: dict[str, Path | None] = {}  # folder -> DVC root above it
        self._states: dict[tuple[int, Path], _RepoState | None] = {}
        self._locks: dict[Path, tuple[int, int, str]] = {}  # dvc.lock -> (mtime, size, text)
        self._memo: dict[str, str] = {}  # md5 -> canonical content fingerprint
        self._dvc_installed: bool | None = None

    def __call__(self, path: Path, st: os.stat_result) -> str | None:
        if self.aliases is None or st.st_size < self.min_size or not statmod.S_ISREG(st.st_mode):
            return None
        root = self.dvc_root(path.parent)
        if root is None or not self.is_tracked(path, root) or not self._installed():
            return None
        if not trustworthy_stat(st):
            self.stats.doubts += 1
            return None
        try:
            state = self._state_for(root)
            answer = state.lookup(path.relative_to(root).as_posix(), st) if state else None
        except Exception as exc:  # noqa: BLE001 - internal DVC API: any failure is "don't know"
            self.stats.errors += 1
            log.debug("DVC state lookup failed for %s: %r", path, exc)
            return None
        if answer is None or answer[0] != ALIAS_ALGO or not _MD5.fullmatch(answer[1]):
            self.stats.state_misses += 1
            return None
        return self._canonical(path, st, answer[1])

    # -- aliases ---------------------------------------------------------------------------

    def _canonical(self, path: Path, st: os.stat_result, md5: str) -> str | None:
        known = self._known(md5)
        if known is not None:
            self.stats.state_hits += 1
            return known
        hashed = self._hash_both(path, st)
        if hashed is None:
            return None  # the file changed while it was read: let the normal path decide
        ours_md5, content = hashed
        self.stats.first_sights += 1
        if ours_md5 != md5:
            self.stats.mismatches += 1
            log.warning(
                "featurecache: DVC's state holds md5 %s for %s but its content hashes to %s; "
                "ignoring DVC's state for it (run `dvc status` to refresh it)",
                md5[:12],
                path,
                ours_md5[:12],
            )
            return content
        try:
            assert self.aliases is not None
            self.aliases.add_alias(ALIAS_ALGO, md5, content)
            recorded = self.aliases.lookup_alias(ALIAS_ALGO, md5)
        except Exception as exc:  # noqa: BLE001 - an alias is an optimisation, never a failure
            log.debug("recording the alias of %s failed: %r", path, exc)
            return content
        self.stats.aliases_recorded += 1
        if recorded == content:
            self._remember(md5, content)
        else:  # the first alias recorded wins; ours was just verified, so theirs is wrong
            log.warning(
                "featurecache: the catalog maps md5 %s to %s, but %s hashes to %s; using what "
                "was read. Delete that row of fingerprint_aliases if this repeats.",
                md5,
                recorded,
                path,
                content,
            )
        return content

    def _known(self, md5: str) -> str | None:
        with self._lock:
            memo = self._memo.get(md5)
        if memo is not None:
            return memo
        try:
            assert self.aliases is not None
            canonical = self.aliases.lookup_alias(ALIAS_ALGO, md5)
        except Exception as exc:  # noqa: BLE001 - catalog trouble: hash the file instead
            log.debug("alias lookup failed: %r", exc)
            return None
        if canonical is None or not canonical.startswith(f"{HASH_ALGO}:"):
            return None
        self._remember(md5, canonical)
        return canonical

    def _remember(self, md5: str, canonical: str) -> None:
        with self._lock:
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            self._memo[md5] = canonical  # md5 -> xxh3 of the same bytes never changes

    def _hash_both(self, path: Path, st: os.stat_result) -> tuple[str, str] | None:
        """(md5 hex, ``xxh3_128:<hex>``) of the file, or None if it is not the file ``st``
        describes from the first byte read to the last."""
        md5, xxh = hashlib.md5(usedforsecurity=False), new_hasher()
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        try:
            with open(path, "rb") as handle:
                if _stat_key(os.fstat(handle.fileno())) != _stat_key(st):
                    return None
                while count := handle.readinto(buffer):
                    md5.update(view[:count])
                    xxh.update(view[:count])
                    self.stats.bytes_hashed += count
                after = os.fstat(handle.fileno())
        except OSError:
            return None
        self.stats.files_hashed += 1
        if _stat_key(after) != _stat_key(st):
            return None
        return md5.hexdigest(), f"{HASH_ALGO}:{xxh.hexdigest()}"

    # -- finding DVC repositories and tracked files ------------------------------------------

    def dvc_root(self, folder: Path) -> Path | None:
        """The nearest folder at or above ``folder`` holding a ``.dvc/`` directory."""
        key = str(folder)
        with self._lock:
            if key in self._roots:
                return self._roots[key]
        found: Path | None = None
        for candidate in (folder, *folder.parents):
            if os.path.isdir(os.path.join(candidate, ".dvc")):
                found = candidate
                break
        with self._lock:
            self._roots[key] = found
        return found

    def is_tracked(self, path: Path, root: Path) -> bool:
        """A ``.dvc`` sidecar on the file or a folder above it (below ``root``), or a
        ``dvc.lock`` between it and ``root`` that names it or a folder above it. A false
        positive only costs a state lookup."""
        current = path
        while current != root and current != current.parent:
            if os.path.isfile(f"{current}.dvc"):
                return True
            current = current.parent
        folder = path.parent
        while True:
            text = self._lock_text(folder / "dvc.lock")
            if text:
                relative = path.relative_to(folder)
                names = [relative, *list(relative.parents)[:-1]]
                if any(name.as_posix() in text for name in names):
                    return True
            if folder == root or folder == folder.parent:
                return False
            folder = folder.parent

    def _lock_text(self, lock: Path) -> str | None:
        try:
            st = os.stat(lock)
        except OSError:
            return None
        with self._lock:
            cached = self._locks.get(lock)
        if cached is not None and cached[:2] == (st.st_mtime_ns, st.st_size):
            return cached[2]
        try:
            text = lock.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        with self._lock:
            self._locks[lock] = (st.st_mtime_ns, st.st_size, text)
        return text

    def _installed(self) -> bool:
        if self._dvc_installed is None:
            self._dvc_installed = (
                importlib.util.find_spec("dvc") is not None
                and importlib.util.find_spec("dvc_data") is not None
            )
        return self._dvc_installed

    def _state_for(self, root: Path) -> _RepoState | None:
        key = (os.getpid(), root)  # DVC's database handles are not shared with a fork
        with self._lock:
            if key in self._states:
                return self._states[key]
        try:
            state = _RepoState.open(root)
        except Exception as exc:  # noqa: BLE001 - not a usable DVC repository for us
            log.debug("cannot open DVC's state for %s: %r", root, exc)
            state = None
        with self._lock:
            return self._states.setdefault(key, state)
