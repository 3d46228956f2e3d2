"""Publishing a computed result: the artifact is made durable in the store, then its catalog
row is committed, on the caller's thread or on one background thread.

A miss hands its result back while the artifact is written when the result cannot change
meanwhile: polars and pyarrow results are immutable, a pandas result is published from a
copy-on-write snapshot, and what was written is re-fingerprinted before it is committed.

Invariants kept: the catalog row is committed only after the file is durable; a read of a key
that is still being published waits for it (``wait_for``); the process waits for every pending
publish at exit, and a forked child forgets its parent's (they run in the parent).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from featurecache import background
from featurecache.catalog.records import (
    ArtifactRecord,
    CodeVersionRecord,
    EntryRecord,
    Hit,
    LineageEdge,
    ReturnKind,
)
from featurecache.errors import (
    ArtifactBeingSweptError,
    ArtifactCorruptError,
    CatalogError,
    StoreError,
)
from featurecache.hooks import CallListener, resolved_event, upstream_of

if TYPE_CHECKING:
    import pyarrow as pa

    from featurecache.catalog import Catalog
    from featurecache.fingerprint.types import InputFingerprint
    from featurecache.keys import CacheKey
    from featurecache.settings import Settings
    from featurecache.store.base import ArtifactStore

log = logging.getLogger("featurecache")
# The uri of a composite artifact's row: it has no file of its own, only parts.
COMPOSITE_URI = "composite:"


# What has been warned about in this process (``warn_once``): a backend that cannot be written
# (a read-only mount or credentials, a full disk) is reported once, not at every call.
_WARNED: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(topic: str, message: str, *args: object) -> None:
    """Log ``message`` as a warning the first time ``topic`` comes up in this process, at debug
    level after that."""
    with _warned_lock:
        first = topic not in _WARNED
        _WARNED.add(topic)
    log.log(logging.WARNING if first else logging.DEBUG, message, *args)


class Lease(Protocol):
    """The single-flight lease a publish holds (``singleflight.LeaseKeeper`` or ``NoLease``)."""

    def check(self) -> None: ...

    def release(self) -> None: ...


@dataclass(eq=False, slots=True)
class PublishJob:
    """Everything needed to publish one computed result."""

    feature: str
    key: CacheKey  # carries the code identity the key was built from: the row records that one
    inputs: dict[str, InputFingerprint]
    table: pa.Table | None  # None for a composite
    kind: ReturnKind
    artifact_id: str
    compute_seconds: float
    started: float
    lease: Lease
    # Each listener's scope, captured on the caller's thread (a background publish reports
    # from another thread).
    scopes: tuple[Any, ...] = ()
    # A pandas result's copy-on-write snapshot, which ``table`` may share memory with: held
    # until the publish ends, so the caller's writes to its frame copy first.
    snapshot: object = None
    background: bool = False
    # A composite result (``results.codec``): ``table`` is unused, each part is stored as its
    # own artifact and ``artifact_id`` is the composite's id. Always published synchronously.
    composite: CompositeResult | None = None
    # The files the body read (``fingerprint.observed_inputs.block_for``), recorded in the
    # entry's components; an entry with them replaces whatever the key held (a stale entry).
    observed: dict[str, Any] | None = None
    # Replace whatever entry the key holds (a recompute asked for, FEATURECACHE_REFRESH).
    replace: bool = False


@dataclass(frozen=True)
class CompositePart:
    """One part of a composite result: a table stored as its own artifact, read back as
    ``kind``."""

    table: pa.Table
    kind: ReturnKind
    artifact_id: str


@dataclass(frozen=True)
class CompositeResult:
    """A composite result ready to publish: its structure (with each part's kind) and parts."""

    structure: dict[str, Any]
    parts: tuple[CompositePart, ...]


class Publisher:
    """Publishes jobs durably to one store and catalog; thread-safe."""

    def __init__(
        self,
        *,
        store: ArtifactStore,
        catalog: Catalog,
        settings: Settings,
        listeners: Sequence[CallListener],
        produced_by_cache: Callable[[InputFingerprint], str | None],
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._settings = settings
        self._listeners = tuple(listeners)
        # A frame input whose content is an artifact this process produced or loaded is a
        # lineage edge to it even when the frame was not carried (a cold run's misses).
        self._produced_by_cache = produced_by_cache
        self._lock = threading.Lock()
        self._pending: dict[str, Future[Any]] = {}
        self._executor: ThreadPoolExecutor | None = None

    # -- durable publish ----------------------------------------------------------------

    def publish(self, job: PublishJob) -> Hit:
        """Store the artifact durably, then commit the catalog row; release the lease either
        way. Returns the winning hit (another process's, when it committed first)."""
        try:
            hit, edges = self._store_then_commit(job)
            self._report(job, hit, edges)
            try:
                self._catalog.record_event(
                    "miss",
                    key_id=job.key.key_id,
                    feature=job.feature,
                    artifact_id=hit.artifact.artifact_id,
                    duration_seconds=time.perf_counter() - job.started,
                    compute_seconds=job.compute_seconds,
                )
            except CatalogError as exc:  # the row is in: a lost statistic, not a lost result
                warn_once("usage", "featurecache: could not record usage events: %s", exc)
            return hit
        finally:
            job.lease.release()

    def _store_then_commit(self, job: PublishJob) -> tuple[Hit, list[LineageEdge]]:
        """The file made durable, then the catalog row. A row a GC sweep has claimed (its file
        is being deleted right now) is not revived: wait until the sweep has purged it, then
        store the file anew, within ``remote_timeout_seconds``."""
        from featurecache.frames import describe_schema

        deadline = time.monotonic() + self._settings.remote_timeout_seconds
        while True:
            parts: list[ArtifactRecord] = []
            if job.table is not None:
                stored = self._store.publish(job.artifact_id, functools.partial(self._write, job))
                artifact = ArtifactRecord(
                    artifact_id=job.artifact_id,
                    uri=stored.uri,
                    rows=job.table.num_rows,
                    columns=job.table.num_columns,
                    schema=describe_schema(job.table),
                    size_bytes=stored.size_bytes,
                    file_hash=stored.file_hash,
                    compute_seconds=job.compute_seconds,
                )
            else:
                # Every part durable first; the composite row commits with them.
                assert job.composite is not None
                parts = [self._store_part(job, part) for part in job.composite.parts]
                artifact = ArtifactRecord(
                    artifact_id=job.artifact_id,
                    uri=COMPOSITE_URI + job.artifact_id,
                    rows=0,
                    columns=len(parts),
                    schema=[],
                    size_bytes=sum(part.size_bytes for part in parts),
                    file_hash="",
                    compute_seconds=job.compute_seconds,
                    structure=job.composite.structure,
                )
            job.lease.check()  # an owner that lost its lease must not publish
            code = job.key.code
            entry = EntryRecord(
                key_id=job.key.key_id,
                feature=job.feature,
                code_digest=code.digest,
                artifact_id=job.artifact_id,
                return_kind=job.kind,
                components=job.key.components
                if job.observed is None
                else {**job.key.components, "observed": job.observed},
            )
            edges = self._edges(job)
            record = CodeVersionRecord(
                code_digest=code.digest,
                feature=job.feature,
                source=code.source,
                components=code.components,
            )
            try:
                replace = job.replace or job.observed is not None
                commit = self._catalog.replace if replace else self._catalog.publish
                return commit(entry, artifact, edges, record, parts), edges
            except ArtifactBeingSweptError as exc:
                if not self._wait_for_sweep(exc.artifact_id, deadline):
                    raise StoreError(
                        f"artifact {job.artifact_id} of {job.feature} stayed claimed by a "
                        "garbage collection; not stored"
                    ) from None

    def _store_part(self, job: PublishJob, part: CompositePart) -> ArtifactRecord:
        from featurecache.frames import describe_schema
        from featurecache.parquet import write_parquet

        def write(path: Path) -> None:
            write_parquet(part.table, path, self._settings, kind=part.kind)

        stored = self._store.publish(part.artifact_id, write)
        return ArtifactRecord(
            artifact_id=part.artifact_id,
            uri=stored.uri,
            rows=part.table.num_rows,
            columns=part.table.num_columns,
            schema=describe_schema(part.table),
            size_bytes=stored.size_bytes,
            file_hash=stored.file_hash,
            compute_seconds=job.compute_seconds,
        )

    def _wait_for_sweep(self, artifact_id: str, deadline: float) -> bool:
        """Wait until no sweep claims ``artifact_id`` (its row purged or handed back)."""
        from featurecache.catalog.maintenance import SWEEP_CLAIM

        delay = 0.02
        while time.monotonic() < deadline:
            states = self._catalog.artifact_states([artifact_id])
            if not states or states[0].deleted_at != SWEEP_CLAIM:
                return True
            time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
            delay = min(delay * 2, 0.5)
        return False

    def _edges(self, job: PublishJob) -> list[LineageEdge]:
        edges = []
        for name, fp in job.inputs.items():
            upstream = fp.upstream_artifact_id or self._produced_by_cache(fp)
            if upstream or fp.source_uri:
                edges.append(
                    LineageEdge(
                        argument=name,
                        fingerprint=fp.fingerprint,
                        upstream_artifact_id=upstream,
                        source_uri=fp.source_uri,
                    )
                )
        return edges

    def _report(self, job: PublishJob, hit: Hit, edges: list[LineageEdge]) -> None:
        if not self._listeners:
            return
        won = hit.artifact.artifact_id == job.artifact_id
        event = resolved_event(
            hit,
            "miss" if won else "hit",
            code_source=job.key.code.source,
            upstream=upstream_of(edges, self._store.artifact_uri) if won else (),
        )
        scopes = job.scopes or (None,) * len(self._listeners)
        for listener, scope in zip(self._listeners, scopes, strict=True):
            listener.on_resolved(event, scope=scope)

    def _write(self, job: PublishJob, path: Path) -> None:
        from featurecache.fingerprint.arrow.content import fingerprint_table
        from featurecache.parquet import write_parquet

        assert job.table is not None
        write_parquet(job.table, path, self._settings, kind=job.kind)
        if job.background:
            # The caller already has the result and its memory may be shared with an array it
            # can still write to: make sure what was written is what was fingerprinted.
            now = fingerprint_table(job.table)
            if now != job.artifact_id:
                raise ArtifactCorruptError(
                    job.artifact_id,
                    f"the result of {job.feature} was modified while it was being "
                    f"published (now {now[:12]}); it was not stored",
                )

    # -- in the background --------------------------------------------------------------

    def submit(self, job: PublishJob) -> None:
        """Publish ``job`` on the background thread; the lease is released when it ends."""
        try:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        1, thread_name_prefix="featurecache-publish"
                    )
                    background.register(self)
                future = self._executor.submit(self._run, job)
                self._pending[job.key.key_id] = future
        except BaseException:
            job.lease.release()  # nothing will publish it: let the next caller compute
            raise
        future.add_done_callback(functools.partial(self._done, job.key.key_id))

    def _run(self, job: PublishJob) -> None:
        try:
            self.publish(job)
        except (StoreError, CatalogError) as exc:
            # A full disk or a read-only store would otherwise warn at every miss.
            warn_once(
                "store" if isinstance(exc, StoreError) else "catalog",
                "featurecache: could not publish %s (%s); results are computed and returned "
                "but not cached while this lasts",
                job.feature,
                exc,
            )
            raise
        except Exception as exc:
            log.warning(
                "featurecache: could not publish %s (key %s): %s; it will be recomputed next time",
                job.feature,
                job.key.key_id[:12],
                exc,
            )
            raise

    def _done(self, key_id: str, future: Future[Any]) -> None:
        with self._lock:
            if self._pending.get(key_id) is future:
                del self._pending[key_id]

    def wait_for(self, key_id: str) -> None:
        """Block until a pending publish of ``key_id`` (if any) has finished."""
        with self._lock:
            future = self._pending.get(key_id)
        if future is not None:
            future.exception()  # waits; the failure was already logged

    def flush(self) -> None:
        """Block until every pending publish has finished."""
        with self._lock:
            futures = list(self._pending.values())
        for future in futures:
            future.exception()

    def close(self) -> None:
        self.flush()
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
            background.unregister(self)

    def forget_after_fork(self) -> None:
        """In a forked child: the pending publishes and their thread belong to the parent."""
        self._lock = threading.Lock()
        self._pending = {}
        self._executor = None
