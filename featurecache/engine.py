"""Resolve a call: key -> lookup -> load + verify -> single-flight -> compute -> publish.

Order of a hit: catalog row -> artifact. Every hit, eager or lazy, checks before it decodes or
hands out anything: the file's size and its whole-file xxh3 against what the catalog recorded
(``verify_file``), then the Parquet footer's row count, row-group row counts and top-level
column count against the catalog's rows and columns (``verify_footer``; the footer is all that
is read). Then:

* eager, local store: the verified file is read memory-mapped; a small one's decoded value is
  kept in this process (``parquet_memo``) and later hits on the same, unchanged file get a
  copy of it;
* lazy (a ``LazyFrame`` result, or ``lazy=True``), local store: a scan of the verified file.
  What the scan reads later is the file as it is then: artifacts are read-only and replaced
  only by a publish that proved its content (``store.local``). The scan reads a hold, a hard
  link to the verified file in this process's holds folder (``store.local.hold_file``), so a
  GC that deletes the artifact before ``.collect()`` does not take the file from under it;
* remote store (S3), eager or lazy: the local tier's copy (``store.tier``), downloaded and
  verified into it by the first hit on this host, is read as a local store's file is (above);
  a copy that fails verification is dropped and downloaded again. Without a tier (off, or an
  artifact larger than its bound) the object is downloaded, the downloaded bytes are
  verified, then decoded, or scanned from memory (the scan never reads S3 again).

A local file, eager or lazy, is hashed once per process while it stays the same file,
unchanged (same path, device, inode, size, mtime and ctime; ``_verified_local``); any later
write to it changes its ctime and makes the next hit hash it again.

A bad or missing artifact is quarantined, forgotten and recomputed, never served.

Order of a miss: lease (single-flight) -> compute -> fingerprint the output -> publish the
artifact (durable, write-once) -> commit the catalog row (``publish.Publisher``).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from featurecache import background, hooks, logs, parquet_memo
from featurecache.catalog import Catalog
from featurecache.catalog.records import ArtifactRecord, Hit, ReturnKind, UsageEvent
from featurecache.errors import (
    ArtifactCorruptError,
    ArtifactNotFoundError,
    CatalogError,
    ConfigError,
    LeaseLostError,
    StoreError,
)
from featurecache.fingerprint import observed
from featurecache.fingerprint.arguments import bound_arguments
from featurecache.fingerprint.carry import is_remembered, remember
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.inputs import fingerprint_input
from featurecache.fingerprint.observed_inputs import (
    Exclusions,
    Observation,
    block_for,
    covered_paths,
    first_change,
    recorded_of,
    resolve,
    settle,
    warn_unattributed,
)
from featurecache.hashing import digest_bytes, hash_file_bytes
from featurecache.keys import CacheKey, build_key
from featurecache.parquet import (
    read_artifact,
    read_artifact_file,
    read_footer,
    scan_artifact,
    scan_artifact_bytes,
)
from featurecache.publish import (
    CompositePart,
    CompositeResult,
    Lease,
    Publisher,
    PublishJob,
    warn_once,
)
from featurecache.results.codec import CompositeStructureError
from featurecache.settings import Settings, load_settings, local_tier_dir
from featurecache.singleflight import LeaseKeeper, NoLease, acquire_or_wait, new_owner
from featurecache.store.base import ArtifactStore, ScanTarget
from featurecache.store.cachedir import prepare_cache_dir
from featurecache.store.factory import check_for_cache, open_store
from featurecache.store.tier import Downloadable, open_tier
from featurecache.usage import PROCESS, SessionStats, UsageRecorder

if TYPE_CHECKING:
    import pyarrow as pa

    from featurecache.fingerprint.types import CodeIdentity, InputFingerprint

log = logging.getLogger("featurecache")
_SEEN_LIMIT = 100_000


class _ReleaseLeasesAtExit:
    """The exit hook of an engine's leases (``background.register``): pending publishes first
    (they release their own leases), then whatever this process still holds."""

    def __init__(self, engine: CacheEngine) -> None:
        self._engine = engine

    def close(self) -> None:
        if self._engine.stores:
            self._engine.publisher.flush()
            self._engine.release_own_leases()

    def forget_after_fork(self) -> None:
        """A forked child opens its own engine, with its own owner id."""


class FeatureSpec(Protocol):
    """What the engine needs of a decorated function (``feature.Feature`` provides it)."""

    @property
    def name(self) -> str: ...
    @property
    def func(self) -> Callable[..., Any]: ...
    @property
    def signature(self) -> inspect.Signature: ...
    @property
    def lazy(self) -> bool: ...
    @property
    def wait(self) -> bool: ...
    @property
    def values(self) -> tuple[str, ...]: ...
    def code_identity(self, track_library_versions: bool = True) -> CodeIdentity: ...


@dataclass
class CallNotes:
    """What the resolution of one call learned along the way."""

    reason: str | None = None
    replace: bool = False


@dataclass(frozen=True)
class Call:
    """One call of a feature: what it was called with and the key that names its result."""

    feature: FeatureSpec
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    key: CacheKey
    inputs: dict[str, InputFingerprint]
    started: float
    # Files the body read (``fingerprint.observed_inputs``): filled by the lookup (a stale
    # entry's) and by the body's run (this result's).
    observation: Observation = field(default_factory=Observation)
    # Why it misses, when the path that decided so knows (its log line says it), and whether
    # its result replaces the key's entry (``recompute``, ``FEATURECACHE_REFRESH``).
    notes: CallNotes = field(default_factory=CallNotes)


class _Missing:
    """What ``_load`` returns for an artifact that is gone or corrupt (then forgotten)."""


_MISSING: Any = _Missing()
# What ``_load`` returns when the store could not be read (unreachable, timed out): the
# artifact is kept, and the call computes without a lease (another reader would fail the same).
_UNREADABLE: Any = _Missing()
# What ``_read_from_tier`` returns when the local tier cannot serve an artifact.
_NOT_IN_TIER: Any = _Missing()


def verify_file(artifact: ArtifactRecord, size: int, file_hash: Callable[[], str]) -> None:
    """Raise ArtifactCorruptError unless the stored file has the recorded size and hash (the
    hash is computed only when the size matches)."""
    if size != artifact.size_bytes:
        raise ArtifactCorruptError(
            artifact.artifact_id, f"{size} bytes, the catalog recorded {artifact.size_bytes}"
        )
    actual = file_hash()
    if actual != artifact.file_hash:
        raise ArtifactCorruptError(
            artifact.artifact_id, f"file hash {actual[:12]} != recorded {artifact.file_hash[:12]}"
        )


def verify_footer(artifact: ArtifactRecord, source: Path | memoryview | bytes) -> None:
    """Raise ArtifactCorruptError unless the file's Parquet footer declares the rows and columns
    the catalog recorded. Read before any page is decoded: a file whose bytes match the
    catalog's hash but not its row count (a file adopted under the wrong id, a hand-edited
    catalog) cannot make a hit decode more than the catalog says it holds."""
    import pyarrow as pa

    try:
        footer = read_footer(source)
    except (pa.ArrowException, ValueError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ArtifactCorruptError(
            artifact.artifact_id, f"unreadable Parquet footer: {exc}"
        ) from None
    if (footer.rows, footer.row_group_rows, footer.columns) != (
        artifact.rows,
        artifact.rows,
        artifact.columns,
    ):
        raise ArtifactCorruptError(
            artifact.artifact_id,
            f"footer declares {footer.rows} rows ({footer.row_group_rows} in its row groups) "
            f"and {footer.columns} columns ({footer.uncompressed_bytes} bytes decoded); the "
            f"catalog recorded {artifact.rows} rows and {artifact.columns} columns",
        )


# Local files a lazy hit has verified in this process: (path, device, inode, size, mtime_ns,
# ctime_ns) -> (file hash, rows, columns) of the artifact record it matched. Any write to the
# file changes its ctime (which no user call can set back), a replacement changes its inode.
_VERIFIED_LIMIT = 4096
_verified: dict[tuple[str, int, int, int, int, int], tuple[str, int, int]] = {}
_verified_lock = threading.Lock()


def _file_identity(path: Path) -> tuple[str, int, int, int, int, int]:
    st = os.stat(path)
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _verified_local(artifact: ArtifactRecord, path: Path) -> None:
    """``verify_file`` and ``verify_footer`` for a local file, skipped when this process has
    already verified the same, unchanged file against the same record."""
    before = _file_identity(path)
    expected = (artifact.file_hash, artifact.rows, artifact.columns)
    with _verified_lock:
        if _verified.get(before) == expected:
            return
    verify_file(artifact, before[3], lambda: hash_file_bytes(str(path)))
    verify_footer(artifact, path)
    if _file_identity(path) != before:
        return  # changed while being verified: verified now, but not remembered
    with _verified_lock:
        _verified.pop(before, None)
        _verified[before] = expected
        if len(_verified) > _VERIFIED_LIMIT:
            del _verified[next(iter(_verified))]


def _read_verified_local(artifact: ArtifactRecord, path: Path, kind: ReturnKind) -> Any:
    """An eager hit's value from a local file: verified like a lazy hit's (``_verified_local``:
    hashed once per process while the file stays the same, unchanged file), then decoded, or
    copied from this process's memo of small decoded artifacts (``parquet_memo``), which serves
    only while a fresh ``stat`` shows the very file that was verified and decoded."""
    identity = _file_identity(path)
    record = (artifact.file_hash, artifact.rows, artifact.columns)
    served = parquet_memo.get_with_original(identity, record, kind)
    if served is not None:
        # A polars copy shares the kept frame's buffers: carried without an Arrow export.
        remember(served[0], artifact.artifact_id, like=served[1])
        return served[0]
    _verified_local(artifact, path)
    value = read_artifact_file(path, kind)
    if _file_identity(path) != identity:
        return value  # changed while read: verified then, but not remembered
    handed = parquet_memo.put(identity, record, kind, value)
    if handed is not value:
        remember(handed, artifact.artifact_id, like=value)
    return handed


def _held_and_verified(artifact: ArtifactRecord, path: Path) -> Path:
    """The file a lazy local hit scans: a hold of the artifact's file (a hard link in this
    process's holds folder, ``store.local.hold_file``), so a GC that deletes the artifact
    before ``.collect()`` leaves the scanned file in place; verified like the artifact. A hold
    that fails verification is dropped (the artifact is quarantined by the caller)."""
    from featurecache.store.local import hold_file

    held = hold_file(path, artifact.artifact_id)
    try:
        _verified_local(artifact, held)
    except ArtifactCorruptError:
        if held != path:
            with contextlib.suppress(OSError):
                os.unlink(held)
        raise
    return held


class CacheEngine:
    """An opened cache. Thread-safe; one per ``FeatureCache``."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        store: ArtifactStore,
        *,
        store_writable: bool = True,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        # A bounded local copy of a remote store's artifacts (None for a local store, or off).
        self.tier = open_tier(settings, store)
        # False: nothing is published and no lease is taken (``read_only``, or a store that
        # refused the write probe at open); hits are still served, misses computed.
        self.stores = store_writable and not settings.read_only and not catalog.read_only
        self.files = FileFingerprinter(settings.state_dir, project_root=settings.project_root)
        # DVC-tracked inputs: DVC's state + the catalog's md5 -> xxh3 aliases.
        # Reads of a body that are the cache's own files, never observed inputs.
        self.exclusions = _own_exclusions(settings, catalog, store)
        for resolver in hooks.resolvers_for(catalog):
            self.files.add_resolver(resolver)
        self.owner = new_owner()
        self.session = SessionStats(parent=PROCESS)
        # Keys computed lately, which a miss's log line compares with (``logs.RecentKeys``).
        self.recent_keys = logs.RecentKeys()
        # FEATURECACHE_REFRESH: keys already recomputed in this process (each only once).
        self._refreshed: set[str] = set()
        logs.expect_refreshed(settings.refresh)
        self._refresh_lock = threading.Lock()
        self.usage = UsageRecorder(
            catalog, give_up_on_failure=settings.read_only or catalog.read_only
        )
        self.listeners = hooks.listeners_for(settings, catalog.record_run_usage)
        # Artifacts this process produced or loaded: a frame input with one of their content
        # ids is a lineage edge to it even when the frame was not carried (a cold run's misses).
        # Bounded (oldest forgotten first) so a long-running process does not grow without
        # limit; forgetting one only loses a lineage edge, never correctness.
        self.seen_artifacts: dict[str, None] = {}
        self.publisher = Publisher(
            store=store,
            catalog=catalog,
            settings=settings,
            listeners=self.listeners,
            produced_by_cache=self._seen,
        )
        # A process that exits normally holds no lease, whatever path took one (background's
        # exit hook runs this after the pending publishes, which release their own).
        self._exit_leases = _ReleaseLeasesAtExit(self)
        background.register(self._exit_leases)
        # Every call hashes its function's code (and its inputs, and goes through Parquet I/O:
        # imported with this module): import that machinery with the cache rather than inside
        # the first call. ``import featurecache`` stays light (it does not import this module).
        import featurecache.fingerprint.code.identity  # noqa: F401

    @classmethod
    def open(
        cls,
        *,
        catalog: str | Catalog | None,
        store: str | Path | ArtifactStore | None,
        settings: Settings | None,
        overrides: Mapping[str, Any],
    ) -> CacheEngine:
        extra: dict[str, Any] = dict(overrides)
        if isinstance(catalog, str):
            extra["catalog_url"] = catalog
        if isinstance(store, str | Path):
            extra["store_url"] = str(store)
        if settings is None:
            settings = load_settings(**extra)
        elif extra:
            from featurecache.settings import with_overrides

            settings = with_overrides(settings, **extra)
        # The default folder first, with its .gitignore, before anything is written into it.
        prepare_cache_dir(settings)
        opened_catalog = (
            catalog
            if isinstance(catalog, Catalog)
            else Catalog.open(
                settings.catalog_url, connect_timeout_seconds=settings.remote_timeout_seconds
            )
        )
        problem: StoreError | None = None
        if store is None or isinstance(store, str | Path):
            opened_store = open_store(settings.store_url, settings, check=False)
            problem = check_for_cache(opened_store, settings)
        elif isinstance(store, ArtifactStore):
            opened_store = store
        else:
            raise ConfigError(
                "store",
                f"{type(store).__name__} is not a store",
                "Give a path, an s3:// URL or a store.",
            )
        if problem is not None:
            warn_once(
                "store",
                "featurecache: the artifact store %s cannot be written (%s): serving what it "
                "holds and computing misses without storing them",
                opened_store.location,
                problem,
            )
        return cls(settings, opened_catalog, opened_store, store_writable=problem is None)

    def flush(self) -> None:
        """Wait for pending publishes and write queued usage events."""
        self.publisher.flush()
        self.usage.flush()

    def close(self) -> None:
        self.publisher.close()
        self._exit_leases.close()
        background.unregister(self._exit_leases)
        self.usage.close()
        for listener in self.listeners:
            listener.close()
        self.catalog.close()

    def release_own_leases(self) -> None:
        """Delete every lease this process's threads hold (none, normally: each call
        releases its own); a catalog that cannot be written is left alone."""
        try:
            released = self.catalog.release_leases_of(f"{self.owner}:")
        except CatalogError as exc:
            log.debug("could not release this process's leases: %s", exc)
            return
        if released:
            log.debug("released %d lease(s) this process still held at exit", released)

    # -- the call -----------------------------------------------------------------------

    def call(
        self,
        feature: FeatureSpec,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        recompute: bool = False,
        keyed: tuple[CacheKey, dict[str, InputFingerprint]] | None = None,
    ) -> Any:
        """Resolve one call: a hit, or compute and publish. ``recompute``: compute even if
        the key is cached, and replace its entry (``Feature.recompute``). ``keyed``: the
        call's key and input fingerprints, when the caller has built them already."""
        started = time.perf_counter()
        key, inputs = keyed or self.key_for(feature, args, kwargs)
        self.publisher.wait_for(key.key_id)
        call = Call(feature, args, kwargs, key, inputs, started)
        if observed.current() is not None:  # inside another feature's body: its inputs too
            observed.note_paths(covered_paths(inputs))
        if recompute or self._refresh_now(feature.name, key.key_id):
            call.notes.replace = True
            call.notes.reason = (
                "recompute requested" if recompute else "refresh requested (FEATURECACHE_REFRESH)"
            )
            return self._miss(call)
        hit = self._fresh(self.catalog.lookup(key.key_id), call)
        if hit is not None:
            value = self._load(hit, feature.lazy)
            if value is _UNREADABLE:
                call.notes.reason = "its stored result could not be read"
                return self._compute(call, NoLease())
            if value is not _MISSING:
                self._record_hit(hit, time.perf_counter() - started)
                return value
            call.notes.reason = "its stored result was missing or corrupt"
        return self._miss(call)

    def stored_artifact(
        self, feature: FeatureSpec, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[str, str, ReturnKind, bool]:
        """Resolve one call to its stored artifact without handing its value back:
        ``(key_id, artifact_id, return_kind, hit)``. A hit's file is checked, not decoded (a local file:
        size, whole-file hash and footer, once per process while unchanged; a remote object:
        its size); a missing or damaged one is forgotten and the call computes, as a miss
        does. Raises ``PartitionNotStoredError`` when the result could not be stored (a
        read-only cache, a store or catalog refusing writes). Used by partitioned features,
        whose workers hand ids, never frames, back to the driver."""
        from featurecache.errors import PartitionNotStoredError

        started = time.perf_counter()
        key, inputs = self.key_for(feature, args, kwargs)
        self.publisher.wait_for(key.key_id)
        call = Call(feature, args, kwargs, key, inputs, started)
        hit = None
        if not self._refresh_pending(feature.name, key.key_id):
            hit = self._fresh(self.catalog.lookup(key.key_id), call)
        if hit is not None and self._intact(hit):
            self._record_hit(hit, time.perf_counter() - started)
            return key.key_id, hit.artifact.artifact_id, hit.entry.return_kind, True
        self.call(feature, args, kwargs, keyed=(key, inputs))
        self.publisher.wait_for(key.key_id)
        stored = self.catalog.lookup(key.key_id)
        if stored is None:
            raise PartitionNotStoredError(feature.name, key.key_id)
        return key.key_id, stored.artifact.artifact_id, stored.entry.return_kind, False

    def _intact(self, hit: Hit) -> bool:
        """Whether every file of ``hit`` is in the store as recorded (``stored_artifact``);
        a missing or damaged one is forgotten (quarantined) and False returned."""
        for artifact in hit.parts or (hit.artifact,):
            try:
                path = self.store.local_path(artifact.artifact_id)
                if path is not None:
                    try:
                        _verified_local(artifact, path)
                    except FileNotFoundError:
                        raise ArtifactNotFoundError(artifact.artifact_id, str(path)) from None
                else:
                    size = self.store.size(artifact.artifact_id)
                    if size is None:
                        raise ArtifactNotFoundError(artifact.artifact_id, self.store.location)
                    if size != artifact.size_bytes:  # the bytes are checked when read
                        raise ArtifactCorruptError(
                            artifact.artifact_id,
                            f"{size} bytes, the catalog recorded {artifact.size_bytes}",
                        )
            except ArtifactNotFoundError as exc:
                log.warning(
                    "artifact %s is missing from %s: recomputing", exc.ref, self.store.location
                )
                self._forget(artifact.artifact_id)
                return False
            except ArtifactCorruptError as exc:
                log.warning("%s: quarantined, recomputing", exc)
                self._forget(exc.artifact_id, quarantine=exc.reason)
                return False
            except StoreError as exc:  # unreachable now: kept, and the call decides
                log.warning("featurecache: cannot check %s (%s)", artifact.artifact_id, exc)
                return False
        self._saw(hit.artifact.artifact_id)
        return True

    def is_cached(
        self, feature: FeatureSpec, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> bool:
        """Whether ``feature(*args, **kwargs)`` would be served from the cache now (its
        entry exists, and no file its body read has changed); nothing is computed, counted
        or logged."""
        key, inputs = self.key_for(feature, args, kwargs)
        self.publisher.wait_for(key.key_id)
        if self._refresh_pending(feature.name, key.key_id):
            return False
        call = Call(feature, args, kwargs, key, inputs, time.perf_counter())
        hit = self._fresh(self.catalog.lookup(key.key_id), call)
        return hit is not None and hit.complete

    def _refresh_pending(self, feature: str, key_id: str) -> bool:
        refresh = self.settings.refresh
        if not refresh or (feature not in refresh and "*" not in refresh):
            return False
        with self._refresh_lock:
            return key_id not in self._refreshed

    def _refresh_now(self, feature: str, key_id: str) -> bool:
        """``FEATURECACHE_REFRESH`` names ``feature`` and this key has not been recomputed
        in this process yet (then it is, now)."""
        if not self._refresh_pending(feature, key_id):
            return False
        with self._refresh_lock:
            if key_id in self._refreshed:
                return False
            self._refreshed.add(key_id)
            return True

    def key_for(
        self, feature: FeatureSpec, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[CacheKey, dict[str, InputFingerprint]]:
        inputs = {
            name: fingerprint_input(
                name, value, files=self.files, str_paths=name not in feature.values
            )
            for name, value in bound_arguments(feature.signature, args, kwargs).items()
        }
        code = feature.code_identity(self.settings.track_library_versions)
        return build_key(feature.name, code, inputs), inputs

    # -- hit ----------------------------------------------------------------------------

    def _load(self, hit: Hit, lazy: bool) -> Any:
        """The artifact's value, or _MISSING when it is gone or corrupt (then forgotten)."""
        artifact = hit.artifact
        kind: ReturnKind = "lazy" if lazy else hit.entry.return_kind
        try:
            if artifact.is_composite:
                value: Any = self._read_composite(hit)
            else:
                value = self._read(artifact, kind)
        except ArtifactNotFoundError as exc:
            log.warning("artifact %s is missing from %s: recomputing", exc.ref, self.store.location)
            # Forgetting a part forgets every composite made of it.
            return self._forget(exc.ref)
        except ArtifactCorruptError as exc:
            log.warning("%s: quarantined, recomputing", exc)
            return self._forget(exc.artifact_id, quarantine=exc.reason)
        except CompositeStructureError as exc:
            # A composite whose NamedTuple class is not importable here (or changed its
            # fields): the parts are fine for other processes, so nothing is forgotten; this
            # call computes, and its publish records the structure this process can rebuild.
            log.warning(
                "featurecache: cannot rebuild %s here (%s): recomputing", artifact.artifact_id, exc
            )
            return _UNREADABLE
        except StoreError as exc:
            # Unreachable, slow past FEATURECACHE_REMOTE_TIMEOUT, or refusing reads: the
            # artifact may be fine, so it is kept; this call computes instead.
            log.warning(
                "featurecache: cannot read %s from %s (%s): recomputing",
                artifact.artifact_id,
                self.store.location,
                exc,
            )
            return _UNREADABLE
        if not artifact.is_composite and not is_remembered(value, artifact.artifact_id):
            remember(value, artifact.artifact_id)
        self._saw(artifact.artifact_id)
        return value

    def _read(self, artifact: ArtifactRecord, kind: ReturnKind) -> Any:
        """One single-file artifact as ``kind``, verified; raises ``ArtifactNotFoundError``
        (ref = the artifact id), ``ArtifactCorruptError`` or ``StoreError``."""
        lazy = kind == "lazy"
        if (path := self.store.local_path(artifact.artifact_id)) is not None:
            return self._load_local(artifact, path, kind, scan=lazy)
        if self.tier is not None:
            value = self._read_from_tier(artifact, kind)
            if value is not _NOT_IN_TIER:
                return value
        # A remote store without a usable tier: the download is verified (size, hash, footer)
        # and decoded or, lazily, scanned from memory; the scan never reads the store again.
        try:
            data = self.store.read_bytes(artifact.artifact_id)
        except ArtifactNotFoundError as exc:
            raise ArtifactNotFoundError(artifact.artifact_id, exc.where) from None
        verify_file(artifact, len(data), lambda: digest_bytes(data))
        verify_footer(artifact, data)
        return scan_artifact_bytes(data) if lazy else read_artifact(data, kind)

    def _read_from_tier(self, artifact: ArtifactRecord, kind: ReturnKind) -> Any:
        """A remote artifact read from the local tier's copy (``store.tier``), downloaded and
        verified first when it is not there; read and verified as a local store's file. A copy
        that fails verification (damaged on disk) is dropped and downloaded once more; one
        evicted meanwhile is downloaded again. ``_NOT_IN_TIER`` when the tier cannot hold it."""
        scan = kind == "lazy"
        return self.with_tier_copy(
            artifact, lambda path: self._load_local(artifact, path, kind, scan=scan)
        )

    def local_artifact_path(self, artifact: ArtifactRecord) -> Path | None:
        """Local bytes of a single-file artifact, verified against ``artifact`` (size,
        whole-file xxh3 and footer, once per process while the file stays unchanged): the
        local store's file, or the local tier's copy of a remote one, downloaded first when it
        is not there (a damaged copy is downloaded again). None when the store is remote and
        the tier is off or cannot hold it. For readers that need a path (a streaming merge); a
        lazy scan should hold the file (``store.local.hold_file``) against eviction and GC.
        Raises ``ArtifactNotFoundError``, ``ArtifactCorruptError`` (the store's bytes are not
        the catalog's) and ``StoreError``."""
        if (path := self.store.local_path(artifact.artifact_id)) is not None:
            try:
                _verified_local(artifact, path)
            except FileNotFoundError:
                raise ArtifactNotFoundError(artifact.artifact_id, str(path)) from None
            return path

        def verified(path: Path) -> Path:
            _verified_local(artifact, path)
            return path

        found = self.with_tier_copy(artifact, verified)
        return None if found is _NOT_IN_TIER else Path(found)

    def with_tier_copy(self, artifact: ArtifactRecord, use: Callable[[Path], Any]) -> Any:
        """``use`` the tier's copy of a remote artifact: a copy that fails verification is
        dropped and downloaded once more, one evicted before ``use`` opened it is downloaded
        again. ``_NOT_IN_TIER`` when the tier cannot serve it."""
        for _ in range(2):
            path = self._tier_copy(artifact)
            if path is None:
                return _NOT_IN_TIER
            try:
                return use(path)
            except ArtifactCorruptError as exc:
                log.warning(
                    "featurecache: local tier copy %s: %s; downloading it again", path, exc.reason
                )
                assert self.tier is not None
                self.tier.discard(artifact.artifact_id)
            except (ArtifactNotFoundError, FileNotFoundError):
                pass  # evicted between the fetch and the read
        return _NOT_IN_TIER

    def _tier_copy(self, artifact: ArtifactRecord) -> Path | None:
        """The tier's copy of a remote artifact (downloaded and verified when it was not
        there; a copy already there is verified by its reader), None without a usable tier."""
        if self.tier is None:
            return None
        assert isinstance(self.store, Downloadable)
        return self.tier.fetch(
            self.store, artifact.artifact_id, artifact.size_bytes, artifact.file_hash
        )

    def _read_composite(self, hit: Hit) -> Any:
        """A composite result: every part read and verified like a single artifact (a frame
        part is carried, so passing it to another feature costs no rehash), then rebuilt."""
        from featurecache.results.codec import join

        structure = hit.artifact.structure
        assert structure is not None
        values = []
        for part, kind in zip(hit.parts, structure["kinds"], strict=True):
            value = self._read(part, kind)
            if not is_remembered(value, part.artifact_id):
                remember(value, part.artifact_id)
            self._saw(part.artifact_id)
            values.append(value)
        return join(structure["codec"], values)

    def _forget(self, artifact_id: str, quarantine: str | None = None) -> Any:
        """Quarantine a damaged file and forget its row, so that no call is served it again.
        Where the store or the catalog cannot be written (read-only, full), this call still
        never serves it: it computes, without a lease (``_UNREADABLE``)."""
        try:
            if quarantine is not None:
                self.store.quarantine(artifact_id, quarantine)
            self.catalog.forget_artifact(artifact_id)
        except (StoreError, CatalogError) as exc:
            warn_once(
                "forget",
                "featurecache: could not quarantine or forget artifact %s (%s); computing",
                artifact_id,
                exc,
            )
            return _UNREADABLE
        return _MISSING

    @staticmethod
    def _load_local(artifact: ArtifactRecord, path: Path, kind: ReturnKind, *, scan: bool) -> Any:
        """A hit from the local store: verify the file by streaming it through the hash (page
        cache, not this process's memory) and its footer against the catalog, once per process
        while it stays unchanged (``_verified_local``), then let polars or pyarrow map it once
        (holding a second map of the file while it is decoded would count the file twice in
        RSS; small ones are memoised, ``_read_verified_local``), or hand out a scan of it
        (``scan``): a hold of the artifact's file (``_held_and_verified``) that GC cannot
        delete under it."""
        try:
            if scan:
                return scan_artifact(ScanTarget(str(_held_and_verified(artifact, path))))
            return _read_verified_local(artifact, path, kind)
        except FileNotFoundError:
            # Deleted since the catalog row was read (a concurrent GC): recompute.
            raise ArtifactNotFoundError(artifact.artifact_id, str(path)) from None

    def _record_hit(self, hit: Hit, seconds: float) -> None:
        self.session.add("hit", hit.artifact.compute_seconds, hit.entry.feature)
        if logs.enabled():
            logs.hit(
                hit.entry.feature,
                hit.entry.key_id,
                hit.artifact.artifact_id,
                seconds,
                hit.artifact.compute_seconds,
            )
        self.usage.add(
            UsageEvent(
                "hit",
                hit.entry.key_id,
                hit.entry.feature,
                hit.artifact.artifact_id,
                seconds,
                hit.artifact.compute_seconds,
            )
        )
        if self.listeners:
            event = hooks.resolved_event(hit, "hit", code_source="")
            for listener in self.listeners:
                listener.on_resolved(event)

    # -- miss ---------------------------------------------------------------------------

    def _miss(self, call: Call) -> Any:
        # Background publishes wait while it computes (``Publisher.computing``).
        with self.publisher.computing():
            return self._miss_now(call)

    def _miss_now(self, call: Call) -> Any:
        if not call.feature.wait or not self.stores:
            # Compute here even if another process holds the lease; publication stays
            # correct (write-once artifact, first catalog row wins). A cache that does not
            # store (read-only) takes no lease either.
            return self._compute(call, NoLease())
        # Per thread: threads of one process single-flight among themselves too.
        owner = f"{self.owner}:{threading.get_ident()}"
        while True:
            try:
                outcome = acquire_or_wait(
                    self.catalog,
                    call.key.key_id,
                    owner,
                    lease_seconds=self.settings.lease_seconds,
                    heartbeat_seconds=self.settings.heartbeat_seconds,
                    wait_timeout=self.settings.wait_timeout_seconds,
                    poll=lambda: (
                        None
                        if call.notes.replace
                        else self._fresh(self.catalog.lookup(call.key.key_id), call)
                    ),
                    feature=call.feature.name,
                )
            except CatalogError as exc:
                # The catalog refuses the lease's write (read-only, a full disk): compute
                # without one, as wait=False does. The write may have committed before the
                # error reached us (a connection lost after COMMIT): give back whatever lease
                # this thread may hold, or it would block the key until it expires.
                with contextlib.suppress(CatalogError):
                    self.catalog.release_lease(call.key.key_id, owner)
                warn_once(
                    "catalog",
                    "featurecache: the catalog cannot be written (%s): computing %s without "
                    "a lease; results are not cached while this lasts",
                    exc,
                    call.feature.name,
                )
                return self._compute(call, NoLease())
            if isinstance(outcome, LeaseKeeper):
                return self._compute(call, outcome)
            value = self._load(outcome, call.feature.lazy)
            if value is _UNREADABLE:
                return self._compute(call, NoLease())
            if value is not _MISSING:
                self._record_hit(outcome, time.perf_counter() - call.started)
                return value

    def _compute(self, call: Call, lease: Lease) -> Any:
        from featurecache.fingerprint.arrow.content import fingerprint_table
        from featurecache.frames import frame_kind, pandas_snapshot, to_arrow

        feature = call.feature
        snapshot = None
        try:
            out, compute_seconds = self._run_body(call)
            if is_composite(out):
                return self._compute_composite(call, lease, out, compute_seconds)
            if not self.stores:
                # Read-only: nothing is published; the value is checked (and made lazy) as a
                # published one would be.
                table, kind = to_arrow(out, feature.name)
                lease.release()
                return _as_lazy(table) if feature.lazy or kind == "lazy" else out
            if frame_kind(out) == "pandas" and self.settings.background_publish:
                snapshot = pandas_snapshot(out)
            table, kind = to_arrow(out if snapshot is None else snapshot, feature.name)
            artifact_id = fingerprint_table(table)
            self._saw(artifact_id)
            if feature.lazy:
                kind = "lazy"
            # Results publish in the background while the caller goes on: polars and pyarrow
            # results are immutable, and a pandas result is published from its copy-on-write
            # snapshot (without copy-on-write a pandas frame may share buffers the caller can
            # still write to, so it is published before the frame is handed back). Not when
            # the call holds no lease (wait=False): racing others, it may lose the commit and
            # must then hand back the winner's result, which only a synchronous publish knows.
            # Nor in a pool's worker process, which may be terminated (multiprocessing.Pool's
            # __exit__) before a background publish ends: the call returns once it is durable.
            job = self._job(
                call,
                lease,
                table=table,
                kind=kind,
                artifact_id=artifact_id,
                compute_seconds=compute_seconds,
                snapshot=snapshot,
                background=self.settings.background_publish
                and (kind in ("polars", "arrow") or (kind == "pandas" and snapshot is not None))
                and not isinstance(lease, NoLease)
                and not call.notes.replace  # replaced when recompute() returns
                and not background.may_be_terminated(),
            )
        except BaseException:
            lease.release()
            raise
        if job.background:
            # The function's own output is not carried over (it may share memory with an array
            # the caller still holds); only values the cache builds from artifact bytes are.
            self.publisher.submit(job)
            return out
        return self._publish_now(job, out, table)

    def _job(self, call: Call, lease: Lease, **result: Any) -> PublishJob:
        """The publish job of ``call``'s result (``result``: what differs between a frame
        and a composite: table, kind, artifact id, compute time, snapshot or parts)."""
        return PublishJob(
            feature=call.feature.name,
            key=call.key,
            inputs=call.inputs,
            started=call.started,
            lease=lease,
            scopes=tuple(listener.capture() for listener in self.listeners),
            observed=call.observation.block,
            replace=call.notes.replace,
            **result,
        )

    def _publish_now(self, job: PublishJob, out: Any, table: pa.Table | None) -> Any:
        """Publish ``job`` on this thread; the value to hand back (the winner's, when another
        process committed the key first)."""
        feature, kind, artifact_id = job.feature, job.kind, job.artifact_id
        try:
            hit = self.publisher.publish(job)
        except LeaseLostError:
            # We stalled past our lease and someone else took the key over: we must not
            # publish, but our result is still the right value for this key. Prefer what the
            # new owner committed, if it already has.
            log.warning("featurecache: lost the lease on %s; not publishing it", feature)
            committed = self.catalog.lookup(job.key.key_id)
            if committed is not None:
                return self._result(out, table, kind, committed, artifact_id)
            return _as_lazy(table) if kind == "lazy" else out
        except (StoreError, CatalogError) as exc:
            # The store or the catalog cannot take it now (unreachable, timed out, read-only,
            # full): the caller still gets its value; the next call tries to store it again.
            warn_once(
                "store" if isinstance(exc, StoreError) else "catalog",
                "featurecache: could not store %s: %s; results are computed and returned but "
                "not cached while this lasts",
                feature,
                exc,
            )
            return _as_lazy(table) if kind == "lazy" and table is not None else out
        return self._result(out, table, kind, hit, artifact_id)

    def _compute_composite(self, call: Call, lease: Lease, out: Any, compute_seconds: float) -> Any:
        """A composite result (a tuple, dict, Series, array, scalar...): split into parts and
        published synchronously (the caller keeps its own objects, which may share memory
        with the parts). Releases ``lease`` whatever happens."""
        feature = call.feature
        try:
            composite, artifact_id = composite_of(out, feature.name)
            if not self.stores:
                return out
            for part in composite.parts:
                self._saw(part.artifact_id)
            self._saw(artifact_id)
            job = self._job(
                call,
                lease,
                table=None,
                kind="composite",
                artifact_id=artifact_id,
                compute_seconds=compute_seconds,
                composite=composite,
            )
        except BaseException:
            lease.release()
            raise
        return self._publish_now(job, out, None)

    def _run_body(self, call: Call) -> tuple[Any, float]:
        """Run the feature's body (the one place it is called) and time it; exceptions reach
        the caller unchanged. An argument it changed in place is warned about (its change is
        not replayed on a hit): ``fingerprint.mutation``, not counted in the compute time."""
        from featurecache.fingerprint.mutation import watch_inputs

        inputs = watch_inputs(call, full=self.settings.check_input_mutation, files=self.files)
        t0 = time.perf_counter()
        with self._observing(call):
            out = call.feature.func(*call.args, **call.kwargs)
        seconds = time.perf_counter() - t0
        inputs.check()
        # Counted and logged once the body has run, whatever happens to the publish.
        self.session.add("miss", seconds, call.feature.name)
        name = call.feature.name
        if logs.enabled():
            reason = call.notes.reason or logs.miss_reason(
                self.catalog, name, call.key, self.recent_keys
            )
            logs.miss(name, call.key.key_id, reason, seconds)
        self.recent_keys.add(name, call.key)  # a few µs, on a miss only
        return out, seconds

    def _fresh(self, hit: Hit | None, call: Call) -> Hit | None:
        """``hit``, unless a file its body read (an observed input) has changed or vanished
        since it was stored: then None, and this call recomputes and replaces the entry.
        Costs a stat and a stat-cache lookup per unchanged file."""
        if hit is None:
            return None
        recorded = recorded_of(hit.entry.components)
        if not recorded:
            return hit
        changed = first_change(recorded, self.files)
        if changed is None:
            if observed.current() is not None:  # a nested hit: the outer body read them too
                paths = (resolve(str(item["path"]), self.files) for item in recorded)
                observed.note_paths(p for p in paths if os.path.isabs(p))
            return hit
        # Said by the call's miss record (``logs.miss``).
        call.notes.reason = f"file `{changed}` (read by the body) changed"
        call.observation.replaced = recorded
        return None

    @contextlib.contextmanager
    def _observing(self, call: Call) -> Iterator[None]:
        """Record the files the body reads (``fingerprint.observed``); when it returns, the
        ones that are data and not already in the key become the entry's observed inputs."""
        with observed.observing() as reads:
            yield
        covered = covered_paths(call.inputs)
        items, problems = settle(reads, files=self.files, exclude=self.exclusions, covered=covered)
        warn_unattributed(call.feature.name, problems)
        if call.key.code.path_literals:  # "data/labels.csv" in the code, read or not
            from featurecache.fingerprint.literals import literal_observations

            seen = {item.path for item in items}
            items += [
                item
                for item in literal_observations(
                    call.key.code.path_literals,
                    self.files,
                    self.exclusions,
                    written=reads.written,
                    covered=covered,
                )
                if item.path not in seen
            ]
        call.observation.block = block_for(items, call.observation.replaced)

    def _result(
        self, out: Any, table: pa.Table | None, kind: ReturnKind, hit: Hit, artifact_id: str
    ) -> Any:
        if kind == "lazy" or hit.artifact.artifact_id != artifact_id:
            # A lazy result is a scan of the artifact; a lost race returns the winner's value.
            value = self._load(hit, kind == "lazy")
            if value is not _MISSING and value is not _UNREADABLE:
                return value
        # The artifact could not be read back (a GC deleted it at once): our own value, of the
        # kind the feature promises.
        return _as_lazy(table) if kind == "lazy" and table is not None else out

    # -- artifacts this process has seen ------------------------------------------------

    def _saw(self, artifact_id: str) -> None:
        seen = self.seen_artifacts
        seen.pop(artifact_id, None)
        seen[artifact_id] = None
        if len(seen) > _SEEN_LIMIT:
            del seen[next(iter(seen))]

    def _seen(self, fp: InputFingerprint) -> str | None:
        algo, _, content = fp.fingerprint.partition(":")
        return content if algo == "xxh3_128" and content in self.seen_artifacts else None


def is_composite(out: object) -> bool:
    """Whether ``out`` is anything but one frame (the codec's answer, imported lazily)."""
    from featurecache.results.codec import is_composite as composite

    return composite(out)


def composite_of(out: object, feature: str) -> tuple[CompositeResult, str]:
    """``out`` split into parts (raises ``UnsupportedOutputError`` naming where a leaf cannot
    be stored), with the composite's artifact id: a hash of its structure (each part's kind
    included) and its parts' ids."""
    from featurecache.fingerprint.arrow.content import fingerprint_table
    from featurecache.results.codec import composite_id, split

    parts = split(out, feature)
    ids = [fingerprint_table(part.table) for part in parts.parts]
    structure = {"codec": parts.structure, "kinds": [part.kind for part in parts.parts]}
    result = CompositeResult(
        structure,
        tuple(
            CompositePart(part.table, part.kind, part_id)
            for part, part_id in zip(parts.parts, ids, strict=True)
        ),
    )
    return result, composite_id(structure, ids)


def _own_exclusions(settings: Settings, catalog: Catalog, store: ArtifactStore) -> Exclusions:
    """The cache's own state folder, local store and SQLite catalog file."""
    folders = [settings.state_dir]
    if (tier := local_tier_dir(settings)) is not None:
        folders.append(tier)
    root = getattr(store, "root", None)
    if isinstance(root, Path):
        folders.append(root)
    database = catalog.sqlite_file()
    return Exclusions.for_cache(folders, [database] if database else [])


def _as_lazy(table: pa.Table) -> Any:
    import polars as pl

    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame.lazy()
