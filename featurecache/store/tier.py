"""The local tier: a bounded, content-addressed local copy of a remote (S3) store's artifacts,
so that a hit downloads an artifact once per host instead of once per call.

Layout: the store's own (``ab/cdef….parquet``, ``store.layout``) under the tier folder
(``<state_dir>/tier`` by default, ``FEATURECACHE_LOCAL_TIER``), beside each file a
``….used`` sidecar whose modification time is its last use. A file is only ever a copy of
what the catalog recorded:

* **Verified on download.** The object is streamed into a temp file in its shard folder and
  hashed on the way; unless its size and xxh3-128 equal the catalog's record it is discarded
  and ``ArtifactCorruptError`` raised (the remote object is bad: the engine quarantines it).
  A good file is made read-only and linked into place (``link`` cannot overwrite: two
  processes downloading the same artifact at once both end with one good file).
* **Verified again before use.** Every process hashes a tier file before its first use and
  again whenever its (device, inode, size, mtime, ctime) changes, as it does a local store's
  file (the engine's ``_verified_local``); a copy that fails is dropped here and downloaded
  again, never served, and never quarantines the remote object. The LRU stamp is a sidecar so
  that touching it does not change the artifact file's ctime (which would make every hit
  re-hash the file).
* **Bounded.** Before a download, files are evicted, least recently used first, until the new
  one fits under ``FEATURECACHE_LOCAL_TIER_MAX``. A file a lazy result still scans is never
  evicted: the scan reads a hold (a hard link, ``store.local.hold_file``), so its link count
  is above one; eviction skips it, and even a hold made just after the check keeps the inode
  alive. An eager hit maps the file while it decodes; on POSIX an unlinked file stays readable
  through a map. A file evicted between being found and being opened is downloaded again.
  Evictors on one host take turns through an ``flock``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

from featurecache.errors import ArtifactCorruptError, StoreError
from featurecache.settings import Settings, local_tier_dir
from featurecache.store.base import ArtifactStore
from featurecache.store.layout import (
    ARTIFACT_SUFFIX,
    TEMP_PREFIX,
    artifact_id_of_file,
    artifact_name,
    is_shard,
)
from featurecache.store.local import LocalStore

log = logging.getLogger(__name__)

USED_SUFFIX = ".used"
LOCK_NAME = ".evict.lock"
LEDGER_NAME = ".ledger"
# A ledger this old is rebuilt by a walk (a process killed between its download and the
# ledger's update would otherwise leave the ledger short of what is here).
LEDGER_MAX_AGE_SECONDS = 3600.0
# A temp file untouched this long is a killed download's leftover (a live one grows steadily).
STALE_TEMP_SECONDS = 3600.0
_READ_ONLY = 0o444
_warned: set[Path] = set()  # tier folders found unusable (warned once per process)
# How stale a copy's last-use stamp may get (LRU order is that coarse); copies stamped when.
TOUCH_INTERVAL = 10.0
_TOUCHED_LIMIT = 4096
_touched: dict[tuple[str, str], float] = {}  # (tier folder, artifact id) -> monotonic
_touched_lock = threading.Lock()


@runtime_checkable
class Downloadable(Protocol):
    """A remote store the tier can copy from (``S3Store``)."""

    location: str

    def download_to(self, artifact_id: str, path: Path) -> tuple[int, str]:
        """Stream the artifact into ``path``: its size and xxh3-128."""
        ...


@dataclass(frozen=True)
class TierUsage:
    """What the tier holds now."""

    folder: Path
    max_bytes: int
    files: int
    bytes: int


class LocalTier:
    """The tier folder of this host; safe for many processes and threads at once."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root).expanduser().absolute()
        self.max_bytes = max_bytes
        # Listing, temp files and holds are the local store's, over the same layout.
        self._files = LocalStore(self.root)
        self._prefix = f"{self.root}{os.sep}"

    def __repr__(self) -> str:
        return f"LocalTier({str(self.root)!r}, max_bytes={self.max_bytes})"

    def path_of(self, artifact_id: str) -> Path:
        # One string join, not pathlib's parsing of each part: this is on every hit.
        return Path(f"{self._prefix}{artifact_name(artifact_id)}")

    # -- the hit path ---------------------------------------------------------------------

    def fetch(
        self, remote: Downloadable, artifact_id: str, size_bytes: int, file_hash: str
    ) -> Path | None:
        """The tier's copy of the artifact, downloaded and verified first when it is not here.
        None when the tier cannot hold it (larger than the bound, or the tier folder cannot be
        written): read the remote store directly. A copy already here is returned unhashed when
        its size is right; the caller verifies it before use. Raises ``ArtifactNotFoundError``
        (the remote object is gone), ``ArtifactCorruptError`` (its bytes are not the
        catalog's) and ``StoreError`` (the remote could not be read)."""
        final = self.path_of(artifact_id)
        try:
            if os.stat(final).st_size == size_bytes:
                self._touch(artifact_id)
                return final
            self.discard(artifact_id)  # a copy of another record of this id: replace it
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._unusable(exc)
            return None
        if size_bytes > self.max_bytes:
            return None
        try:
            self.reserve(size_bytes)
            tmp = self._new_temp(final.parent)
        except OSError as exc:
            self._unusable(exc)
            return None
        try:
            self._download(remote, artifact_id, tmp, size_bytes, file_hash)
            _link_or_keep(tmp, final)
            self._touch(artifact_id)
        except StoreError:
            raise
        except OSError as exc:
            self._unusable(exc)
            return None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return final

    def _download(
        self, remote: Downloadable, artifact_id: str, tmp: Path, size_bytes: int, file_hash: str
    ) -> None:
        started = time.perf_counter()
        size, actual = remote.download_to(artifact_id, tmp)
        if (size, actual) != (size_bytes, file_hash):
            raise ArtifactCorruptError(
                artifact_id,
                f"{remote.location} sent {size} bytes hashing {actual[:12]}; the catalog "
                f"recorded {size_bytes} bytes hashing {file_hash[:12]}",
            )
        os.chmod(tmp, _READ_ONLY)
        log.debug(
            "featurecache: local tier: downloaded %s (%d bytes) in %.2f s",
            artifact_id,
            size,
            time.perf_counter() - started,
        )

    def discard(self, artifact_id: str) -> None:
        """Drop the tier's copy (damaged, or of another record); a reader holding it keeps
        its hold or its map."""
        final = self.path_of(artifact_id)
        for path in (final, _used_path(final)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _touch(self, artifact_id: str) -> None:
        """Stamp the copy's last use (its sidecar's mtime: one ``utime``), at most once per
        ``TOUCH_INTERVAL`` per copy and process: a hit then costs one ``stat`` here."""
        now = time.monotonic()
        with _touched_lock:
            last = _touched.get((self._prefix, artifact_id))
            if last is not None and now - last < TOUCH_INTERVAL:
                return
            if len(_touched) >= _TOUCHED_LIMIT:
                _touched.clear()
            _touched[self._prefix, artifact_id] = now
        used = f"{self._prefix}{artifact_name(artifact_id)[: -len(ARTIFACT_SUFFIX)]}{USED_SUFFIX}"
        try:
            os.utime(used)
        except FileNotFoundError:
            with contextlib.suppress(OSError):
                os.close(os.open(used, os.O_WRONLY | os.O_CREAT, 0o644))
        except OSError:
            pass  # an unstamped copy is just evicted earlier

    def _new_temp(self, shard: Path) -> Path:
        shard.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=ARTIFACT_SUFFIX, dir=shard)
        os.close(fd)
        return Path(name)

    def _unusable(self, exc: OSError) -> None:
        if self.root in _warned:
            return
        _warned.add(self.root)
        log.warning(
            "featurecache: the local tier %s cannot be used (%s): reading the remote store "
            "directly; set FEATURECACHE_LOCAL_TIER to a writable folder, or =off",
            self.root,
            exc,
        )

    # -- bound ----------------------------------------------------------------------------

    def reserve(self, incoming: int) -> None:
        """Make room for a download of ``incoming`` bytes. The ledger (``.ledger``: bytes
        held, time of the last full walk) answers without a walk while it says the download
        fits; otherwise (or when it is missing, or its walk is older than
        ``LEDGER_MAX_AGE_SECONDS``) ``evict`` walks the folder and rewrites it. The ledger may
        only overstate what is here (a copy dropped outside ``evict`` is not subtracted),
        which makes the walk come sooner, never the bound looser."""
        with self._evict_lock():
            ledger = self._read_ledger()
            fresh = ledger is not None and time.time() - ledger[1] < LEDGER_MAX_AGE_SECONDS
            if ledger is not None and fresh and ledger[0] + incoming <= self.max_bytes:
                self._write_ledger(ledger[0] + incoming, ledger[1])
                return
            self._evict_locked(incoming)

    def evict(self, incoming: int = 0) -> int:
        """Remove least recently used copies until what is here plus ``incoming`` bytes fits
        under ``max_bytes``; copies a reader holds are kept. Also removes leftover temp files
        and the holds of processes that died. Returns the bytes freed."""
        with self._evict_lock():
            return self._evict_locked(incoming)

    def _evict_locked(self, incoming: int) -> int:
        self._files.sweep_holds()
        walk = self._walk()
        freed = 0
        cutoff = time.time() - STALE_TEMP_SECONDS
        for name, size, modified in walk.temps:
            if modified < cutoff:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.root / name)
                freed += size
            else:
                incoming += size  # another download in flight
        total = sum(entry.size for entry in walk.entries)
        for entry in sorted(walk.entries, key=lambda entry: entry.last_used):
            if total + incoming <= self.max_bytes:
                break
            if entry.links > 1:
                continue  # held by a lazy result's scan (a hold is a hard link)
            self.discard(entry.artifact_id)
            total -= entry.size
            freed += entry.size
        self._write_ledger(total + incoming, walk.started)
        return freed

    def usage(self) -> TierUsage:
        entries = self._walk().entries
        return TierUsage(
            self.root, self.max_bytes, len(entries), sum(entry.size for entry in entries)
        )

    def _walk(self) -> _Walk:
        """One pass over the shard folders: each file is stat'ed once (copies, their
        ``.used`` stamps, temp files)."""
        started = time.time()
        entries: dict[str, _Entry] = {}
        used: dict[str, float] = {}
        temps: list[tuple[str, int, float]] = []
        for shard in _scandir(self.root):
            if not is_shard(shard.name) or not shard.is_dir(follow_symlinks=False):
                continue
            for entry in _scandir(Path(shard.path)):
                name = entry.name
                try:
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if name.startswith(TEMP_PREFIX):
                    temps.append((f"{shard.name}/{name}", stat.st_size, stat.st_mtime))
                elif name.endswith(USED_SUFFIX):
                    used[shard.name + name[: -len(USED_SUFFIX)]] = stat.st_mtime
                elif (artifact_id := artifact_id_of_file(shard.name, name)) is not None:
                    entries[artifact_id] = _Entry(
                        artifact_id, stat.st_size, stat.st_mtime, stat.st_nlink
                    )
        for artifact_id, stamp in used.items():
            if (found := entries.get(artifact_id)) is not None and stamp > found.last_used:
                entries[artifact_id] = replace(found, last_used=stamp)
        return _Walk(started, list(entries.values()), temps)

    def _read_ledger(self) -> tuple[int, float] | None:
        try:
            held, walked = (self.root / LEDGER_NAME).read_text().split()
            return int(held), float(walked)
        except (OSError, ValueError):
            return None

    def _write_ledger(self, held: int, walked: float) -> None:
        with contextlib.suppress(OSError):
            (self.root / LEDGER_NAME).write_text(f"{max(held, 0)} {walked}\n")

    @contextlib.contextmanager
    def _evict_lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                import fcntl
            except ImportError:  # Windows: evictors may overlap, which only wastes work
                yield
                return
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock


@dataclass(frozen=True)
class _Walk:
    started: float  # time.time() when the walk began
    entries: list[_Entry]
    temps: list[tuple[str, int, float]]  # (shard/name, size, mtime) of temp files


@dataclass(frozen=True)
class _Entry:
    artifact_id: str
    size: int
    last_used: float
    links: int


def _scandir(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _used_path(final: Path) -> Path:
    return final.with_suffix(USED_SUFFIX)


def _link_or_keep(tmp: Path, final: Path) -> None:
    """Give the verified ``tmp`` the name ``final``, unless another process already did (its
    copy was verified the same way, and is verified again before use)."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        return
    except OSError:
        if not final.exists():  # no hard links here: rename (racers hold the same bytes)
            os.replace(tmp, final)


def open_tier(settings: Settings, store: ArtifactStore) -> LocalTier | None:
    """The local tier for ``store``: only a remote store that can download into a file has
    one (a local store's files are local already), and only while the tier is not off."""
    folder = local_tier_dir(settings)
    if folder is None or not isinstance(store, Downloadable):
        return None
    return LocalTier(folder, settings.local_tier_max_bytes)
