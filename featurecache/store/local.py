"""The local-directory artifact store: content-addressed, sharded ``ab/cdef….parquet`` files,
published write-once and crash-safe.

Publication follows git's loose objects: the bytes go to a temp file in the destination
directory, are fsynced and made read-only, then get their final name with ``link()``, which
cannot overwrite; ``rename`` is the fallback only where hard links are unsupported. A process
killed at any point leaves at most a ``.tmp-*`` file, which ``iter_temp`` reports and
``remove_object`` deletes; a visible artifact is always complete.

A file already at the final name is not adopted on trust (it may be damaged, or planted, or
what a crash left when the file system lost unsynced data). Every publish writes its own file
first, then the existing file must prove it holds the artifact (``_settle``, ``proves_artifact``): the same bytes as
ours, or a Parquet file whose content (read back, ``fingerprint_table``) is the artifact id or
the same as ours read back the same way. Then it wins and ours is discarded (write-once). A
Parquet file of ours replaces an existing file that cannot prove itself, atomically
(``os.replace``). When ours is not Parquet either (callers that store opaque bytes) nothing can
be judged and the existing file wins.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import json
import logging
import mmap
import os
import secrets
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TypeVar

from featurecache.background import ProcessPool, process_gone
from featurecache.errors import ArtifactNotFoundError, StoreError
from featurecache.hashing import digest_bytes
from featurecache.store.base import Encoded, ScanTarget, StoredFile, StoredObject
from featurecache.store.layout import (
    ARTIFACT_SUFFIX,
    QUARANTINE_DIR,
    TEMP_PREFIX,
    artifact_id_of_file,
    artifact_id_of_name,
    artifact_name,
    is_shard,
    quarantine_stem,
)

log = logging.getLogger(__name__)

# errno values meaning "this file system has no hard links": fall back to rename.
_NO_LINK_ERRNOS = frozenset(
    {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}
)
# An existing artifact can vanish between "link failed: exists" and reading it (a concurrent
# delete); like git, retry linking our own copy a few times before giving up.
_VANISH_RETRIES = 3
_READ_ONLY = 0o444
_T = TypeVar("_T")
_R = TypeVar("_R")
_PATHS_KEPT = 4096


class LocalStore:
    """Artifacts as files under ``root``; safe for many processes on one file system."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().absolute()
        self.location = str(self.root)
        # Paths of artifacts named lately: every hit asks for one, and a ``Path`` costs a few
        # µs to build. Bounded (forgotten whole when full); a path is a pure function of the id.
        self._paths: dict[str, Path] = {}

    def __repr__(self) -> str:
        return f"LocalStore({self.location!r})"

    # -- names ------------------------------------------------------------------------------

    def _path(self, artifact_id: str) -> Path:
        path = self._paths.get(artifact_id)
        if path is None:
            path = self.root / artifact_name(artifact_id)  # checks the id first
            if len(self._paths) >= _PATHS_KEPT:
                self._paths.clear()
            self._paths[artifact_id] = path
        return path

    def artifact_uri(self, artifact_id: str) -> str:
        return self._path(artifact_id).as_uri()

    def local_path(self, artifact_id: str) -> Path | None:
        return self._path(artifact_id)

    def scan_target(self, artifact_id: str) -> ScanTarget:
        return ScanTarget(str(self._path(artifact_id)))

    # -- publish ----------------------------------------------------------------------------

    def publish(self, artifact_id: str, write: Callable[[Path], None]) -> StoredFile:
        outcome = self.publish_many([(artifact_id, write)])[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def publish_many(
        self, items: Sequence[tuple[str, Callable[[Path], None]]]
    ) -> list[StoredFile | BaseException]:
        """``publish`` of several artifacts, each outcome in its place (a ``StoredFile`` or the
        exception ``publish`` would raise). The files are written and made durable on a small
        pool, concurrently (the file system commits concurrent fsyncs together), then each
        gets its final name, then their folders are made durable (concurrently too)."""
        shards: set[Path] = set()
        # Bytes encoded in memory are encoded here first, one after another: on the pool's
        # workers the encodings took the GIL from each other (200 queued tiny publishes, two
        # sets of 3 interleaved pairs: 1.22 -> 0.91 and 1.31 -> 1.03 ms a job). An error is
        # raised again, and judged, where the file is written (``_written_temp``).
        for _, write in items:
            if isinstance(write, Encoded):
                with contextlib.suppress(Exception):
                    write.data()
        done = _concurrently(lambda item: self._sealed_temp(*item, shards), items)
        try:
            outcomes: list[StoredFile | BaseException] = []
            for (artifact_id, _), result in zip(items, done, strict=True):
                if isinstance(result, BaseException):
                    outcomes.append(result)
                else:
                    temp, seal = result
                    outcomes.append(self._placed(artifact_id, temp.path, seal))
        finally:
            for result in done:
                if not isinstance(result, BaseException):
                    # After a successful link the temp name is only a second name for the
                    # artifact.
                    _unlink_quietly(result[0].path)
            _concurrently(_fsync_dir_quietly, sorted(shards))
        return outcomes

    def _sealed_temp(
        self, artifact_id: str, write: Callable[[Path], None], shards: set[Path]
    ) -> tuple[_Temp, tuple[int, str] | BaseException]:
        """``_written_temp``, then ``_seal``: the temp file and its seal (or why it failed)."""
        temp = self._written_temp(artifact_id, write, shards)
        try:
            return temp, _outcome(_seal, temp)
        finally:
            temp.close()

    def _written_temp(
        self, artifact_id: str, write: Callable[[Path], None], shards: set[Path]
    ) -> _Temp:
        """A temp file in the artifact's shard, written by ``write``; the shard is added to
        ``shards`` (to be fsynced) once the temp exists. Writing into the store failed (a full
        disk, a read-only mount): a ``StoreError``, which callers degrade on. Writers do not
        all raise OSError for it (polars raises a ComputeError naming os error 28); their
        other errors are the caller's own and propagate unchanged."""
        # Always written, even when the artifact seems to exist: what sits at the final name is
        # compared with this file before it is kept (module docstring).
        shard = self._path(artifact_id).parent
        try:
            if isinstance(write, Encoded):
                return self._encoded_temp(write.data(), shard, shards)
            tmp = self._new_temp(shard)
            shards.add(shard)
            try:
                write(tmp)
            except BaseException:
                _unlink_quietly(tmp)
                raise
            return _Temp(tmp)
        except StoreError:
            raise
        except Exception as exc:
            if not isinstance(exc, OSError) and not _out_of_space(exc, shard):
                raise
            raise StoreError(f"writing {artifact_id} in {self.root} failed: {exc}") from exc

    def _encoded_temp(self, data: memoryview, shard: Path, shards: set[Path]) -> _Temp:
        """``_written_temp`` of bytes in memory: written on the new temp file's descriptor,
        which stays open for ``_seal``, and hashed here: no reopen, no mapping and no read
        back of its own file."""
        name, fd = self._open_temp(shard)
        shards.add(shard)
        temp = _Temp(name, fd, (len(data), digest_bytes(data)))
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
        except BaseException:
            temp.close()
            _unlink_quietly(name)
            raise
        return temp

    def _placed(
        self, artifact_id: str, tmp: Path, seal: tuple[int, str] | BaseException
    ) -> StoredFile | BaseException:
        """The sealed ``tmp`` under its final name (``_put_in_place``), or the error."""
        try:
            if isinstance(seal, BaseException):
                raise seal
            size, file_hash = seal
            return self._put_in_place(artifact_id, tmp, self._path(artifact_id), size, file_hash)
        except FileNotFoundError as exc:
            if exc.filename is not None and Path(exc.filename) == tmp:
                return _store_error(
                    f"publishing {artifact_id}: the writer removed its temp file {tmp}", exc
                )
            return _store_error(f"publishing {artifact_id} in {self.root} failed: {exc}", exc)
        except StoreError as exc:
            return exc
        except OSError as exc:
            return _store_error(f"publishing {artifact_id} in {self.root} failed: {exc}", exc)
        except BaseException as exc:  # noqa: BLE001 - raised by publish, kept here
            return exc

    def _new_temp(self, shard: Path) -> Path:
        name, fd = self._open_temp(shard)
        os.close(fd)
        return name

    def _open_temp(self, shard: Path) -> tuple[Path, int]:
        """A new temp file in ``shard`` (made if need be), open for writing."""
        name = shard / f"{TEMP_PREFIX}{secrets.token_hex(8)}{ARTIFACT_SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            try:
                return name, os.open(name, flags, 0o600)
            except FileNotFoundError:  # the first artifact of this shard
                self._make_dir(shard)
                return name, os.open(name, flags, 0o600)
        except OSError as exc:
            raise StoreError(
                f"cannot create a temp file in {shard} ({exc.strerror or exc}); check that the "
                "artifact store directory is writable (FEATURECACHE_STORE)"
            ) from exc

    def _make_dir(self, folder: Path) -> None:
        if folder.is_dir():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(folder)
        except FileExistsError:
            return
        # The new directory entry must be durable before anything inside it is.
        _fsync_dir_quietly(folder.parent)

    def _put_in_place(
        self, artifact_id: str, tmp: Path, final: Path, size: int, file_hash: str
    ) -> StoredFile:
        for _ in range(_VANISH_RETRIES):
            if _link_no_replace(tmp, final):
                return StoredFile(artifact_id, final.as_uri(), size, file_hash, created=True)
            existing = self._settle(artifact_id, tmp, final, file_hash)
            if existing is not None:
                return existing
        raise StoreError(
            f"publishing {artifact_id}: {final} repeatedly vanished while being published "
            "(is a garbage collection deleting it concurrently?)"
        )

    def _settle(
        self, artifact_id: str, tmp: Path, final: Path, file_hash: str
    ) -> StoredFile | None:
        """A file exists at ``final``: keep it if it proves it is the artifact, else replace it
        with ours (``tmp``, sealed). None when it vanished meanwhile (link again)."""
        try:
            fd = os.open(final, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read existing artifact {final}: {exc}") from exc
        try:
            stat = os.fstat(fd)
            size = stat.st_size
            with _mapped(fd, size) as theirs:
                existing_hash = digest_bytes(theirs)
            keep = existing_hash == file_hash or proves_artifact(artifact_id, final, tmp)
            if not _same_file(stat, final):
                return None  # replaced while being read: judge the new one
        finally:
            os.close(fd)
        if keep:
            return StoredFile(artifact_id, final.as_uri(), size, existing_hash, created=False)
        log.warning(
            "featurecache: %s did not hold artifact %s (%d bytes, not its content): replaced",
            final,
            artifact_id,
            size,
        )
        tmp_size = tmp.stat().st_size
        os.replace(tmp, final)
        return StoredFile(artifact_id, final.as_uri(), tmp_size, file_hash, created=True)

    # -- read -------------------------------------------------------------------------------

    def read_bytes(self, artifact_id: str) -> memoryview:
        path = self._path(artifact_id)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise ArtifactNotFoundError(artifact_id, self.location) from None
        except OSError as exc:
            raise StoreError(f"cannot read artifact {path}: {exc}") from exc
        try:
            if os.fstat(fd).st_size == 0:
                return memoryview(b"")
            # Zero-copy: the mapping outlives the descriptor and stays valid even if the file
            # is unlinked meanwhile (artifacts are never modified in place).
            mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise StoreError(f"cannot map artifact {path}: {exc}") from exc
        finally:
            os.close(fd)
        if hasattr(mmap, "MADV_WILLNEED"):
            mapped.madvise(mmap.MADV_WILLNEED)  # callers read all of it: start readahead now
        return memoryview(mapped)

    def exists(self, artifact_id: str) -> bool:
        return self._path(artifact_id).is_file()

    def size(self, artifact_id: str) -> int | None:
        try:
            return self._path(artifact_id).stat().st_size
        except FileNotFoundError:
            return None

    def sweep_holds(self) -> int:
        """Remove the holds folders of processes on this host that no longer exist (killed
        before their exit hook ran); the number removed. Holds of live processes, and of other
        hosts (whose processes cannot be checked), are kept."""
        removed = 0
        host = socket.gethostname()
        for entry in _sorted_entries(self.root / HOLDS_DIR):
            owner_host, _, pid_text = entry.name.rpartition("-")
            if owner_host != host or not pid_text.isdigit() or not process_gone(int(pid_text)):
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += not os.path.lexists(entry.path)
        return removed

    # -- remove -----------------------------------------------------------------------------

    def delete(self, artifact_id: str) -> bool:
        path = self._path(artifact_id)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(f"cannot delete artifact {path}: {exc}") from exc
        _fsync_dir_quietly(path.parent)
        return True

    def quarantine(self, artifact_id: str, reason: str) -> None:
        """Move the artifact to ``quarantine/<id>-<UTC time>.parquet`` beside a JSON sidecar
        saying why. Quarantining an absent artifact does nothing (another process won)."""
        source = self._path(artifact_id)
        folder = self.root / QUARANTINE_DIR
        stem = quarantine_stem(artifact_id)
        target = folder / f"{stem}{ARTIFACT_SUFFIX}"
        try:
            size = source.stat().st_size
            self._make_dir(folder)
            os.rename(source, target)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StoreError(f"cannot quarantine {source}: {exc}") from exc
        _fsync_dir_quietly(source.parent)
        sidecar = {
            "artifact_id": artifact_id,
            "reason": reason,
            "quarantined_at": datetime.now(UTC).isoformat(),
            "original_name": artifact_name(artifact_id),
            "size_bytes": size,
        }
        _write_json_atomically(folder / f"{stem}.json", sidecar)

    def remove_object(self, obj: StoredObject) -> None:
        path = self._object_path(obj.name)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StoreError(f"cannot remove {path}: {exc}") from exc

    def _object_path(self, name: str) -> Path:
        # Only names this store hands out (artifacts and temp files) may be removed: a listing
        # must never become a way to delete arbitrary files.
        parts = PurePosixPath(name).parts
        removable = artifact_id_of_name(name) is not None or (
            0 < len(parts) <= 2
            and parts[-1].startswith(TEMP_PREFIX)
            and (len(parts) == 1 or is_shard(parts[0]) or parts[0] == QUARANTINE_DIR)
        )
        if not removable:
            raise StoreError(f"refusing to remove {name!r}: not an artifact or temp file name")
        return self.root.joinpath(*parts)

    # -- list -------------------------------------------------------------------------------

    def iter_artifacts(self) -> Iterator[StoredObject]:
        for shard in self._shards():
            for entry in _sorted_entries(self.root / shard):
                artifact_id = artifact_id_of_file(shard, entry.name)
                if artifact_id is not None:
                    found = _describe(entry, f"{shard}/{entry.name}", artifact_id)
                    if found is not None:
                        yield found

    def iter_temp(self) -> Iterator[StoredObject]:
        """Temp files left by interrupted publishes (``modified_at`` gives their age)."""
        folders = ["", *self._shards(), QUARANTINE_DIR]
        for folder in folders:
            for entry in _sorted_entries(self.root / folder if folder else self.root):
                if entry.name.startswith(TEMP_PREFIX):
                    name = f"{folder}/{entry.name}" if folder else entry.name
                    found = _describe(entry, name, None)
                    if found is not None:
                        yield found

    def _shards(self) -> list[str]:
        return [entry.name for entry in _sorted_entries(self.root) if is_shard(entry.name)]

    # -- capabilities -----------------------------------------------------------------------

    def check_capabilities(self) -> None:
        """Local directories honour ``link()``; check only that the root is writable."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}probe-", dir=self.root)
            os.close(fd)
            os.unlink(name)
        except OSError as exc:
            raise StoreError(
                f"artifact store directory {self.root} is not writable "
                f"({exc.strerror or exc}); fix its permissions or set FEATURECACHE_STORE "
                "to a writable directory"
            ) from exc


# -- holds: files a lazy result still scans ----------------------------------------------------

# A lazy hit hands out a scan that opens its file only at ``.collect()``; GC may delete the
# artifact before then. So the scan reads a hold instead: a hard link to the verified file in
# ``<root>/.holds/<hostname>-<pid>/<artifact_id>-<inode>.hold``. Deleting the artifact's name
# leaves the inode alive under the hold. Holds are neither artifacts nor temp files (a dot
# folder, not a shard; no ``.parquet`` suffix), are removed when the process exits, and those of
# processes that died without exiting are swept by ``sweep_holds`` (gc, verify --repair).
HOLDS_DIR = ".holds"
HOLD_SUFFIX = ".hold"

_holds_lock = threading.Lock()
_hold_folders: dict[Path, int] = {}  # holds folders created, with the pid that owns each
_release_registered = False


def hold_file(path: Path, artifact_id: str) -> Path:
    """A hard link to ``path`` (an artifact of a local store) in this process's holds folder,
    reused while it is still the same file; ``path`` itself where hard links cannot be made
    (no support, a read-only store). ``FileNotFoundError`` when ``path`` is gone."""
    folder = path.parent.parent / HOLDS_DIR / f"{socket.gethostname()}-{os.getpid()}"
    for _ in range(_VANISH_RETRIES):
        target = os.stat(path)
        hold = folder / f"{artifact_id}-{target.st_ino}{HOLD_SUFFIX}"
        if _is_same(hold, target):
            return hold
        _unlink_quietly(hold)  # an old hold whose inode number was reused: not this file
        try:
            _remember_hold_folder(folder)
            os.link(path, hold)
        except FileExistsError:
            continue  # another thread made it: check it again
        except FileNotFoundError:
            continue  # the artifact vanished (stat raises) or the folder was released
        except OSError as exc:
            log.debug("featurecache: cannot hold %s (%s): scanning it in place", path, exc)
            return path
        if _is_same(hold, target):
            return hold
        _unlink_quietly(hold)  # the artifact was replaced between stat and link: again
    return path


def _is_same(hold: Path, target: os.stat_result) -> bool:
    try:
        held = os.stat(hold)
    except FileNotFoundError:
        return False
    return (held.st_dev, held.st_ino) == (target.st_dev, target.st_ino)


def _remember_hold_folder(folder: Path) -> None:
    global _release_registered
    folder.mkdir(parents=True, exist_ok=True)
    with _holds_lock:
        _hold_folders[folder] = os.getpid()
        if not _release_registered:
            atexit.register(release_holds)
            _release_registered = True


def release_holds() -> None:
    """Remove this process's holds folders (at exit; scans handed out before no longer read
    from a file GC may have deleted). A forked child never removes its parent's."""
    pid = os.getpid()
    with _holds_lock:
        mine = [folder for folder, owner in _hold_folders.items() if owner == pid]
        for folder in mine:
            del _hold_folders[folder]
    for folder in mine:
        shutil.rmtree(folder, ignore_errors=True)


# -- file helpers ---------------------------------------------------------------------------


def _hash_fd(fd: int) -> tuple[int, str]:
    size = os.fstat(fd).st_size
    with _mapped(fd, size) as view:
        return size, digest_bytes(view)


@contextlib.contextmanager
def _mapped(fd: int, size: int) -> Iterator[memoryview]:
    """The file's bytes, memory-mapped (page cache, not a heap copy)."""
    if size == 0:
        yield memoryview(b"")
        return
    with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mapped, memoryview(mapped) as view:
        yield view


def _same_file(stat: os.stat_result, path: Path) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (stat.st_dev, stat.st_ino)


def _content_digest(path: Path) -> str | None:
    """``fingerprint_table`` of a Parquet file read back by pyarrow (memory-mapped); None when it
    is not a readable Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from featurecache.fingerprint.arrow.content import fingerprint_table

    try:
        return fingerprint_table(pq.read_table(path, memory_map=True, use_threads=True))
    except (pa.ArrowException, ValueError, OSError, TypeError, IndexError):
        return None


def proves_artifact(artifact_id: str, theirs: Path, ours: Path) -> bool:
    """Whether an existing file with other bytes than ours holds the artifact: its content read
    back is the artifact id, or equals ours read back the same way (a read back is not always
    the table that was fingerprinted: a dictionary of integers comes back decoded, polars'
    types come back as pyarrow reads them). True as well when ours is not Parquet: opaque
    bytes cannot be judged, and write-once keeps the first."""
    their_digest = _content_digest(theirs)
    if their_digest == artifact_id:
        return True
    our_digest = _content_digest(ours)
    return our_digest is None or their_digest == our_digest


class _Temp:
    """A written temp file of ``publish_many``; for bytes written from memory, its descriptor
    (still open, for ``_seal``) and ``(size, xxh3)``."""

    def __init__(
        self, path: Path, fd: int | None = None, sealed: tuple[int, str] | None = None
    ) -> None:
        self.path = path
        self.fd = fd
        self.sealed = sealed

    def close(self) -> None:
        """Close the descriptor, if still open (idempotent)."""
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)


def _seal(temp: _Temp) -> tuple[int, str]:
    """Hash the finished temp file (still in page cache; bytes written from memory were hashed
    there), make it durable and read-only."""
    if temp.fd is not None and temp.sealed is not None:
        try:
            os.fsync(temp.fd)
            os.fchmod(temp.fd, _READ_ONLY)
        finally:
            temp.close()
        return temp.sealed
    fd = os.open(temp.path, os.O_RDONLY)
    try:
        size, file_hash = _hash_fd(fd)
        os.fsync(fd)
        os.fchmod(fd, _READ_ONLY)
    finally:
        os.close(fd)
    return size, file_hash


def _link_no_replace(tmp: Path, final: Path) -> bool:
    """Give ``tmp`` the name ``final`` unless it exists; True when this call created it."""
    try:
        os.link(tmp, final)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_LINK_ERRNOS:
            raise
    # No hard links here: check-then-rename is racy, but both racers hold a complete file
    # with the same logical content, so whichever lands is a valid artifact.
    if final.exists():
        return False
    os.replace(tmp, final)
    return True


_NO_SPACE_TEXT = ("no space left", "os error 28", "disk quota exceeded", "os error 122")


def _out_of_space(exc: BaseException, folder: Path) -> bool:
    """Whether a writer's failure (of any type) came from the file system being full."""
    text = str(exc).lower()
    if any(marker in text for marker in _NO_SPACE_TEXT):
        return True
    try:
        return os.statvfs(folder).f_bavail == 0
    except (OSError, AttributeError):
        return False


def _store_error(message: str, cause: BaseException) -> StoreError:
    error = StoreError(message)
    error.__cause__ = cause
    return error


# Concurrent fsyncs of a batch (``publish_many``): the file system commits them together.
# Raw fsyncs of small files cost ~0.55 ms each one by one, ~0.23 ms with eight threads; but
# the workers also create, write and link files, taking the GIL, and four did better than
# eight (200 queued tiny publishes, 3 interleaved pairs: 1.10 -> 0.97 ms a job).
_SYNC_WORKERS = 4
_SYNC_POOL = ProcessPool("featurecache-sync", _SYNC_WORKERS)


def _concurrently(work: Callable[[_T], _R], items: Sequence[_T]) -> list[_R | BaseException]:
    """``work`` of every item, each result (or exception) in its place; on this thread when
    there is one item, else on a small shared pool, one task per worker (a task per item cost
    the publish thread more in ``submit`` than its catalog transaction)."""
    if len(items) <= 1:
        return [_outcome(work, item) for item in items]
    pool = _SYNC_POOL.get()
    tasks = min(len(items), _SYNC_WORKERS)
    futures = [pool.submit(_each, work, items[first::tasks]) for first in range(tasks)]
    chunks = [future.result() for future in futures]
    return [chunks[i % tasks][i // tasks] for i in range(len(items))]


def _each(work: Callable[[_T], _R], items: Sequence[_T]) -> list[_R | BaseException]:
    return [_outcome(work, item) for item in items]


def _outcome(work: Callable[[_T], _R], item: _T) -> _R | BaseException:
    try:
        return work(item)
    except BaseException as exc:  # noqa: BLE001 - handed back in the item's place
        return exc


def _fsync_dir_quietly(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories; the file itself was synced
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _write_json_atomically(path: Path, payload: dict[str, object]) -> None:
    fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(name, path)
    except BaseException:
        _unlink_quietly(Path(name))
        raise
    _fsync_dir_quietly(path.parent)


def _sorted_entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _describe(entry: os.DirEntry[str], name: str, artifact_id: str | None) -> StoredObject | None:
    try:
        if not entry.is_file(follow_symlinks=False):
            return None
        stat = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None  # removed while listing
    return StoredObject(
        name=name,
        artifact_id=artifact_id,
        size_bytes=stat.st_size,
        modified_at=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
    )
