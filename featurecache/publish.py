"""Publishing a computed result: the artifact is made durable in the store, then its catalog
row is committed, on the caller's thread or in the background.

A miss hands its result back while the artifact is written when the result cannot change
meanwhile: polars and pyarrow results are immutable, a pandas result is published from a
copy-on-write snapshot, and what was written is re-fingerprinted before it is committed.
Background publishes wait while the process computes a miss, then go in batches: files on
the store's pool, catalog transactions on a second thread (``_drain``).

Invariants kept: the catalog row is committed only after the file is durable; a read of a key
that is still being published waits for it (``wait_for``); the process waits for every pending
publish at exit, and a forked child forgets its parent's (they run in the parent).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from featurecache import background
from featurecache.catalog.records import (
    ArtifactRecord,
    CodeVersionRecord,
    EntryRecord,
    Hit,
    LineageEdge,
    PublishRow,
    ReturnKind,
    UsageEvent,
)
from featurecache.errors import (
    ArtifactBeingSweptError,
    ArtifactCorruptError,
    CatalogError,
    StoreError,
)
from featurecache.hooks import CallListener, resolved_event, upstream_of
from featurecache.store.base import Encoded

if TYPE_CHECKING:
    import pyarrow as pa

    from featurecache.catalog import Catalog
    from featurecache.fingerprint.types import InputFingerprint
    from featurecache.keys import CacheKey
    from featurecache.settings import Settings
    from featurecache.store.base import ArtifactStore, StoredFile

log = logging.getLogger("featurecache")
_T = TypeVar("_T")
# The uri of a composite artifact's row: it has no file of its own, only parts.
COMPOSITE_URI = "composite:"
# At most this many queued background jobs are published in one catalog transaction.
_BATCH_MAX = 64
# Background jobs wait while a miss is being computed (``computing``) and until
# ``_QUIET_SECONDS`` after the last one ended: a burst of misses then runs without
# the publish thread, which would otherwise take the GIL each time the caller lets it go (in
# the feature's body, in SQLite) and make it wait for it back. 200 tiny misses in one
# process (interleaved runs): the calls 2.8 -> 1.3 ms each, the calls and the publishes
# together 3.3 -> 2.8 ms (the publishes now run after the burst). A job
# never waits more than ``_MAX_DELAY_SECONDS``, nor once ``_QUEUE_MAX`` jobs or
# ``_QUEUE_MAX_BYTES`` of their tables wait (each holds its result and its lease), nor while
# anyone waits for a publish (``wait_for``, ``flush``, at exit).
_QUIET_SECONDS = 0.002
_COMPUTING_POLL_SECONDS = 0.02
_MAX_DELAY_SECONDS = 1.0
_QUEUE_MAX = 1024
_QUEUE_MAX_BYTES = 64 * 1024 * 1024


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

    def row(self) -> tuple[str, str] | None:
        """``(key_id, owner)`` of the lease's catalog row; None when there is no row."""
        ...

    def released_by_caller(self) -> None:
        """The caller deleted the row in its own transaction: stop renewing it."""
        ...


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
        self._wake = threading.Condition(self._lock)  # the drain's wait (``_next_batch``)
        self._pending: dict[str, Future[Any]] = {}
        self._queue: list[tuple[PublishJob, Future[Hit]]] = []
        self._draining = False  # a _drain task is queued or running
        self._executor: ThreadPoolExecutor | None = None
        self._committer: ThreadPoolExecutor | None = None  # ``_commit_batch`` (``_drain``)
        self._last_miss = 0.0  # monotonic: when a miss last ended (jobs are submitted in one)
        self._queued_since = 0.0  # when the queue last went from empty to not
        self._waiters = 0  # callers blocked until some publish ends: no more quiet wait
        self._queued_bytes = 0  # of the queued jobs' tables
        self._computing = 0  # misses being computed now (``computing``)

    # -- durable publish ----------------------------------------------------------------

    def publish(self, job: PublishJob) -> Hit:
        """Store the artifact durably, then commit the catalog row; release the lease either
        way. Returns the winning hit (another process's, when it committed first)."""
        try:
            hit, edges = self._store_then_commit(job)
            self._report(job, hit, edges)
            try:
                self._catalog.record_events([_miss_event(job, hit)])
            except CatalogError as exc:  # the row is in: a lost statistic, not a lost result
                warn_once("usage", "featurecache: could not record usage events: %s", exc)
            return hit
        finally:
            job.lease.release()

    def _store_batch(
        self, batch: Sequence[tuple[PublishJob, Future[Hit]]]
    ) -> list[tuple[PublishJob, Future[Hit], tuple[str, str], PublishRow]]:
        """The first half of publishing background jobs that queued up together: every file
        made durable; what ``_commit_batch`` then commits. A job whose file cannot be stored
        fails alone; a job that cannot go in a batch is published on its own here."""
        together: list[tuple[PublishJob, Future[Hit], tuple[str, str]]] = []
        for job, future in batch:
            lease = job.lease.row()
            if lease is None or job.table is None or job.replace or job.observed is not None:
                self._run_into(job, future)
            else:
                together.append((job, future, lease))
        files = self._store.publish_many(
            [(job.artifact_id, self._writer(job)) for job, _, _ in together]
        )
        stored: list[tuple[PublishJob, Future[Hit], tuple[str, str], PublishRow]] = []
        for (job, future, lease), file in zip(together, files, strict=True):
            try:
                if isinstance(file, BaseException):
                    raise file
                job.lease.check()  # an owner that lost its lease must not publish
                stored.append((job, future, lease, self._row(job, self._artifact(job, file))))
            except BaseException as exc:  # noqa: BLE001 - set on its future, as an executor does
                job.lease.release()
                self._failed(job, exc)
                future.set_exception(exc)
        return stored

    def _commit_batch(
        self, stored: Sequence[tuple[PublishJob, Future[Hit], tuple[str, str], PublishRow]]
    ) -> None:
        """The second half: one catalog transaction that commits the rows of ``stored`` (their
        files durable), deletes their leases and records their miss events
        (``Catalog.publish_batch``). When it fails (a GC sweep claims one of the artifacts,
        the catalog refuses it) each job is published on its own, as a single job is."""
        if not stored:
            return
        try:
            hits = self._catalog.publish_batch(
                [row for _, _, _, row in stored],
                leases=[lease for _, _, lease, _ in stored],
                events=[_miss_event(job, None) for job, _, _, _ in stored],
            )
        except Exception as exc:  # noqa: BLE001 - each job then reports its own outcome
            log.debug("batched publish of %d results failed (%s); one by one", len(stored), exc)
            for job, future, _, _ in stored:
                self._run_into(job, future)
            return
        for (job, future, _, row), hit in zip(stored, hits, strict=True):
            job.lease.released_by_caller()
            self._report(job, hit, row.lineage)
            future.set_result(hit)

    def _store_then_commit(self, job: PublishJob) -> tuple[Hit, Sequence[LineageEdge]]:
        """The file made durable, then the catalog row. A row a GC sweep has claimed (its file
        is being deleted right now) is not revived: wait until the sweep has purged it, then
        store the file anew, within ``remote_timeout_seconds``."""

        deadline = time.monotonic() + self._settings.remote_timeout_seconds
        while True:
            parts: list[ArtifactRecord] = []
            if job.table is not None:
                artifact = self._store_file(job)
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
            row = self._row(job, artifact, parts)
            try:
                replace = job.replace or job.observed is not None
                commit = self._catalog.replace if replace else self._catalog.publish
                return commit(*row), row.lineage
            except ArtifactBeingSweptError as exc:
                if not self._wait_for_sweep(exc.artifact_id, deadline):
                    raise StoreError(
                        f"artifact {job.artifact_id} of {job.feature} stayed claimed by a "
                        "garbage collection; not stored"
                    ) from None

    def _store_file(self, job: PublishJob) -> ArtifactRecord:
        """Make a single-file job's artifact durable in the store; its catalog record."""
        stored = self._store.publish(job.artifact_id, self._writer(job))
        return self._artifact(job, stored)

    def _artifact(self, job: PublishJob, stored: StoredFile) -> ArtifactRecord:
        """The catalog record of a single-file job's artifact, ``stored``."""
        assert job.table is not None
        return _stored_record(job.artifact_id, job.table, stored, job.compute_seconds)

    def _row(
        self, job: PublishJob, artifact: ArtifactRecord, parts: Sequence[ArtifactRecord] = ()
    ) -> PublishRow:
        """What the catalog records for ``job`` once ``artifact`` (and ``parts``) are durable."""
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
        record = CodeVersionRecord(
            code_digest=code.digest,
            feature=job.feature,
            source=code.source,
            components=code.components,
        )
        return PublishRow(entry, artifact, self._edges(job), record, tuple(parts))

    def _store_part(self, job: PublishJob, part: CompositePart) -> ArtifactRecord:
        from featurecache.parquet import write_parquet

        def write(path: Path) -> None:
            write_parquet(part.table, path, self._settings, kind=part.kind)

        stored = self._store.publish(part.artifact_id, write)
        return _stored_record(part.artifact_id, part.table, stored, job.compute_seconds)

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

    def _report(self, job: PublishJob, hit: Hit, edges: Sequence[LineageEdge]) -> None:
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

    def _writer(self, job: PublishJob) -> Callable[[Path], None]:
        """What writes a single-file job's artifact (``ArtifactStore.publish``): a small table
        is encoded in memory (``Encoded``), a larger one written to the store's temp path."""
        from featurecache.parquet import is_small

        assert job.table is not None
        if is_small(job.table):
            return Encoded(functools.partial(self._encoded, job))
        return functools.partial(self._write, job)

    def _encoded(self, job: PublishJob) -> memoryview:
        from featurecache.parquet import encode_small

        assert job.table is not None
        data = encode_small(job.table, self._settings, polars_types=job.kind in ("polars", "lazy"))
        self._check_unchanged(job)
        return memoryview(data)

    def _write(self, job: PublishJob, path: Path) -> None:
        from featurecache.parquet import write_parquet

        assert job.table is not None
        write_parquet(job.table, path, self._settings, kind=job.kind)
        self._check_unchanged(job)

    def _check_unchanged(self, job: PublishJob) -> None:
        """Raise ``ArtifactCorruptError`` when a background job's table, just written, is no
        longer what was fingerprinted: the caller already has the result and its memory may
        be shared with an array it can still write to."""
        from featurecache.fingerprint.arrow.content import fingerprint_table

        assert job.table is not None
        if not job.background:
            return
        now = fingerprint_table(job.table)
        if now != job.artifact_id:
            raise ArtifactCorruptError(
                job.artifact_id,
                f"the result of {job.feature} was modified while it was being "
                f"published (now {now[:12]}); it was not stored",
            )

    # -- in the background --------------------------------------------------------------

    def submit(self, job: PublishJob) -> None:
        """Publish ``job`` on the background thread; the lease is released when it ends.
        Jobs are published once the caller pauses (``_next_batch``), those that queued up
        together (``_store_batch``, ``_commit_batch``)."""
        future: Future[Hit] = Future()
        try:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        1, thread_name_prefix="featurecache-publish"
                    )
                    self._committer = ThreadPoolExecutor(
                        1, thread_name_prefix="featurecache-commit"
                    )
                    background.register(self)
                    _running.add(self)
                if not self._queue:
                    self._queued_since = time.monotonic()
                self._queue.append((job, future))
                self._queued_bytes += _table_bytes(job)
                self._pending[job.key.key_id] = future
                if self._queue_full():
                    self._wake.notify()
                if not self._draining:
                    self._executor.submit(self._drain)
                    self._draining = True
        except BaseException:
            with self._lock:
                if self._queue and self._queue[-1][0] is job:
                    self._queue.pop()
                    self._queued_bytes -= _table_bytes(job)
                if self._pending.get(job.key.key_id) is future:
                    del self._pending[job.key.key_id]
            job.lease.release()  # nothing will publish it: let the next caller compute
            raise
        future.add_done_callback(functools.partial(self._done, job.key.key_id))

    def _drain(self) -> None:
        """The background thread's work: publish what is queued, in batches, until nothing
        is. A batch's catalog transaction (``_commit_batch``) runs on a second thread while
        the next batch's files are written: the transaction, mostly Python holding the GIL,
        then overlaps the fsyncs, which let it go."""
        committing: Future[None] | None = None
        try:
            while True:
                with self._lock:
                    batch = self._next_batch()
                    if not batch:
                        self._draining = False
                        return
                if len(batch) == 1:
                    self._run_into(*batch[0])  # sets its future whatever happens
                    continue
                stored = self._settled(batch, functools.partial(self._store_batch, batch))
                if not stored:
                    continue  # every job already failed, or was published alone
                if committing is not None:
                    committing.result()  # one transaction at a time
                assert self._committer is not None
                committing = self._committer.submit(
                    self._settled, batch, functools.partial(self._commit_batch, stored)
                )
        finally:
            if committing is not None:
                committing.result()

    def _settled(
        self, batch: Sequence[tuple[PublishJob, Future[Hit]]], work: Callable[[], _T]
    ) -> _T | None:
        """``work()``; when it fails unexpectedly, every job of ``batch`` still waiting fails
        with its error and gives its lease back (none may be left waiting, nor its key
        blocked)."""
        try:
            return work()
        except BaseException as exc:  # noqa: BLE001 - no job may be left waiting
            for job, future in batch:
                if not future.done():
                    job.lease.release()  # idempotent; a lease left held blocks its key
                    self._failed(job, exc)
                    future.set_exception(exc)
            return None

    def _next_batch(self) -> list[tuple[PublishJob, Future[Hit]]]:
        """The next batch to publish, once the queue is due (``_QUIET_SECONDS``); empty when
        nothing is queued. Called with the lock held."""
        while self._queue:
            now = time.monotonic()
            overdue = self._queued_since + _MAX_DELAY_SECONDS
            if now >= overdue or self._waiters or self._queue_full():
                break
            quiet = self._last_miss + _QUIET_SECONDS
            if now >= quiet and not self._computing:
                break
            # While a miss computes, look again now and then (waking at every miss's end would
            # cost the caller the GIL once a miss in a burst).
            again = now + _COMPUTING_POLL_SECONDS if self._computing else quiet
            self._wake.wait(min(again, overdue) - now)
        batch = self._queue[:_BATCH_MAX]
        del self._queue[:_BATCH_MAX]
        self._queued_bytes -= sum(_table_bytes(job) for job, _ in batch)
        return batch

    def _queue_full(self) -> bool:
        return len(self._queue) >= _QUEUE_MAX or self._queued_bytes >= _QUEUE_MAX_BYTES

    @contextlib.contextmanager
    def computing(self) -> Iterator[None]:
        """Around a miss's computation (the engine's): queued jobs wait until it ends."""
        with self._lock:
            self._computing += 1
        try:
            yield
        finally:
            with self._lock:
                self._computing -= 1
                self._last_miss = time.monotonic()

    @contextlib.contextmanager
    def _waiting(self) -> Iterator[None]:
        """While someone waits for a publish to end, queued jobs are published at once."""
        with self._lock:
            self._waiters += 1
            self._wake.notify()
        try:
            yield
        finally:
            with self._lock:
                self._waiters -= 1

    def _run_into(self, job: PublishJob, future: Future[Hit]) -> None:
        """Publish one job, its outcome set on ``future``."""
        try:
            future.set_result(self.publish(job))
        except BaseException as exc:  # noqa: BLE001 - set on its future, as an executor does
            self._failed(job, exc)
            future.set_exception(exc)

    def _failed(self, job: PublishJob, exc: BaseException) -> None:
        """Say that a background publish failed (its caller already has its result)."""
        if isinstance(exc, StoreError | CatalogError):
            # A full disk or a read-only store would otherwise warn at every miss.
            warn_once(
                "store" if isinstance(exc, StoreError) else "catalog",
                "featurecache: could not publish %s (%s); results are computed and returned "
                "but not cached while this lasts",
                job.feature,
                exc,
            )
        elif isinstance(exc, Exception):
            log.warning(
                "featurecache: could not publish %s (key %s): %s; it will be recomputed next time",
                job.feature,
                job.key.key_id[:12],
                exc,
            )

    def _done(self, key_id: str, future: Future[Any]) -> None:
        with self._lock:
            if self._pending.get(key_id) is future:
                del self._pending[key_id]

    def wait_for(self, key_id: str) -> None:
        """Block until a pending publish of ``key_id`` (if any) has finished."""
        with self._lock:
            future = self._pending.get(key_id)
        if future is not None and not future.done():
            with self._waiting():
                future.exception()  # waits; the failure was already logged

    def flush(self) -> None:
        """Block until every pending publish has finished."""
        with self._lock:
            futures = list(self._pending.values())
        if not futures:
            return
        with self._waiting():
            for future in futures:
                future.exception()

    def close(self) -> None:
        self.flush()
        with self._lock:
            executor, self._executor = self._executor, None
            committer, self._committer = self._committer, None
        if executor is not None:
            executor.shutdown(wait=True)  # its last drain waits for its last commit
            background.unregister(self)
            _running.discard(self)
        if committer is not None:
            committer.shutdown(wait=True)

    def forget_after_fork(self) -> None:
        """In a forked child: the pending publishes and their thread belong to the parent."""
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._waiters = 0
        self._queued_bytes = 0
        self._computing = 0
        self._pending = {}
        self._queue = []
        self._draining = False
        self._executor = None
        self._committer = None


# Publishers with a publish thread. A fork waits for their pending publishes: the publish
# thread encodes with pyarrow, and a child forked while it held one of pyarrow's locks hung
# in its first Parquet write (a pool worker forked right after a burst of misses, whose
# publishes were still held back).
_running: weakref.WeakSet[Publisher] = weakref.WeakSet()


def _flush_before_fork() -> None:
    for publisher in list(_running):
        publisher.flush()


os.register_at_fork(before=_flush_before_fork)


def _table_bytes(job: PublishJob) -> int:
    return 0 if job.table is None else int(job.table.get_total_buffer_size())


def _stored_record(
    artifact_id: str, table: pa.Table, stored: StoredFile, compute_seconds: float
) -> ArtifactRecord:
    """The catalog record of ``table`` stored as ``artifact_id``."""
    from featurecache.frames import describe_schema

    return ArtifactRecord(
        artifact_id=artifact_id,
        uri=stored.uri,
        rows=table.num_rows,
        columns=table.num_columns,
        schema=describe_schema(table),
        size_bytes=stored.size_bytes,
        file_hash=stored.file_hash,
        compute_seconds=compute_seconds,
    )


def _miss_event(job: PublishJob, hit: Hit | None) -> UsageEvent:
    """The usage event of ``job``'s miss: the winning artifact's (``hit``), or, in a batch,
    the job's own, which the catalog replaces with the winner's when another process
    published the key first. Once its own entry is in, it happened when that entry was
    created (the catalog stamps a batch's events so too): events, like entries, are then in
    the order of the calls, which the database clock alone may not tell apart."""
    ours = hit is not None and hit.artifact.artifact_id == job.artifact_id
    return UsageEvent(
        "miss",
        job.key.key_id,
        job.feature,
        job.artifact_id if hit is None else hit.artifact.artifact_id,
        time.perf_counter() - job.started,
        job.compute_seconds,
        at=hit.entry.created_at if ours and hit is not None else None,
    )
