"""Resolve, compute, publish: the cache engine composes catalog, store and fingerprints.

Order of a miss: compute → fingerprint the output → publish the artifact (durable, write-once)
→ commit the catalog row. Order of a hit: catalog row → artifact bytes, checked against the
size and file hash the catalog recorded; a bad or missing artifact is quarantined, forgotten
and recomputed, never served.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurecache.cache_parts import (
    _MISSING,
    NoLease,
    PublishJob,
    SessionStats,
    resolved_event,
    upstream_of,
    verify_file,
)
from featurecache.catalog.catalog import Catalog
from featurecache.catalog.records import (
    ArtifactRecord,
    CodeVersionRecord,
    EntryRecord,
    Hit,
    LineageEdge,
    ReturnKind,
)
from featurecache.errors import (
    ArtifactCorruptError,
    ArtifactNotFoundError,
    ConfigError,
    LeaseLostError,
)
from featurecache.events import EventRecorder
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.types import InputFingerprint
from featurecache.hashing import digest_bytes, hash_file_bytes
from featurecache.integrations.dvc_state import DvcStateResolver
from featurecache.integrations.mlflow_lineage import (
    lineage_from_settings,
)
from featurecache.keys import CacheKey, build_key
from featurecache.publisher import Publisher
from featurecache.settings import Settings, load_settings
from featurecache.store.base import ArtifactStore
from featurecache.store.factory import open_store

if TYPE_CHECKING:

    from featurecache.decorator import Feature

log = logging.getLogger("featurecache")
_SEEN_LIMIT = 100_000


def _owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class CacheEngine:
    """An opened cache. Thread-safe; one per ``FeatureCache``."""

    def __init__(self, settings: Settings, catalog: Catalog, store: ArtifactStore) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.files = FileFingerprinter(settings.state_dir, project_root=settings.project_root)
        # DVC-tracked inputs: DVC's state + the catalog's md5 -> xxh3 aliases (dvc_state.py).
        self.dvc = DvcStateResolver(aliases=catalog)
        self.files.add_resolver(self.dvc)
        self.publisher = Publisher(self)
        self.events = EventRecorder(catalog)
        self.owner = _owner_id()
        self.session = SessionStats()
        self.lineage = lineage_from_settings(settings, on_run_usage=catalog.record_run_usage)
        # Artifacts this process produced or loaded: a frame input with one of their content
        # ids is a lineage edge to it even when the frame was not carried (a cold run's misses).
        # Bounded (oldest forgotten first) so a long-running process does not grow without
        # limit; forgetting one only loses a lineage edge, never correctness.
        self.seen_artifacts: dict[str, None] = {}
        # Every call hashes its function's code and its inputs, and every hit or miss goes
        # through Parquet I/O: import that machinery (about 0.1 s, mostly pyarrow.compute) with
        # the cache rather than inside the first call. ``import featurecache`` stays light.
        import featurecache.artifact_io
        import featurecache.fingerprint.code
        import featurecache.fingerprint.inputs  # noqa: F401

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
        opened_catalog = catalog if isinstance(catalog, Catalog) else Catalog.open(settings.catalog_url)
        if store is None or isinstance(store, str | Path):
            opened_store = open_store(settings.store_url, settings)
        elif isinstance(store, ArtifactStore):
            opened_store = store
        else:
            raise ConfigError("store", f"{type(store).__name__} is not a store", "Give a path, an s3:// URL or a store.")
        return cls(settings, opened_catalog, opened_store)

    def flush(self) -> None:
        """Wait for pending publishes and write queued usage events."""
        self.publisher.flush()
        self.events.flush()

    def close(self) -> None:
        self.publisher.close()
        self.events.close()
        if self.lineage is not None:
            self.lineage.close()
        self.catalog.close()

    # -- the call -----------------------------------------------------------------------

    def call(self, feature: Feature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        started = time.perf_counter()
        key, inputs = self.key_for(feature, args, kwargs)
        self.publisher.wait_for(key.key_id)
        hit = self.catalog.lookup(key.key_id)
        if hit is not None:
            value = self._load(hit, feature.lazy)
            if value is not _MISSING:
                self._record("hit", hit, time.perf_counter() - started)
                return value
        return self._miss(feature, key, inputs, args, kwargs, started)

    def key_for(
        self, feature: Feature, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[CacheKey, dict[str, InputFingerprint]]:
        from featurecache.fingerprint.inputs import fingerprint_input

        bound = feature.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        inputs = {
            name: fingerprint_input(name, value, files=self.files)
            for name, value in bound.arguments.items()
        }
        code = feature.code_identity(self.settings.track_library_versions)
        return build_key(feature.name, code, inputs), inputs

    # -- hit ----------------------------------------------------------------------------

    def _load(self, hit: Hit, lazy: bool) -> Any:
        """The artifact's value, or _MISSING when it is gone or corrupt (then forgotten)."""
        from featurecache.artifact_io import read_artifact, scan_artifact
        from featurecache.fingerprint.carry import remember

        artifact = hit.artifact
        kind: ReturnKind = "lazy" if lazy else hit.entry.return_kind
        try:
            if kind == "lazy":
                size = self.store.size(artifact.artifact_id)
                if size is None:
                    raise ArtifactNotFoundError(artifact.artifact_id, self.store.url)
                if size != artifact.size_bytes:
                    raise ArtifactCorruptError(
                        artifact.artifact_id, f"size {size} != recorded {artifact.size_bytes}"
                    )
                value: Any = scan_artifact(self.store.scan_target(artifact.artifact_id))
            elif (path := self.store.local_path(artifact.artifact_id)) is not None:
                value = self._load_local(artifact, path, kind)
            else:
                data = self.store.read_bytes(artifact.artifact_id)
                verify_file(artifact, len(data), lambda: digest_bytes(data))
                value = read_artifact(data, kind)
        except ArtifactNotFoundError:
            log.warning("artifact %s is missing from %s: recomputing", artifact.artifact_id, self.store.url)
            self.catalog.forget_artifact(artifact.artifact_id)
            return _MISSING
        except ArtifactCorruptError as exc:
            log.warning("%s: quarantined, recomputing", exc)
            self.store.quarantine(artifact.artifact_id, exc.reason)
            self.catalog.forget_artifact(artifact.artifact_id)
            return _MISSING
        remember(value, artifact.artifact_id)
        self._saw(artifact.artifact_id)
        return value

    @staticmethod
    def _load_local(artifact: ArtifactRecord, path: Path, kind: ReturnKind) -> Any:
        """A hit from the local store: verify the file by streaming it through the hash (page
        cache, not this process's memory), then let polars or pyarrow map it once. Holding a
        second map of the file while it is decoded would count the file twice in RSS."""
        from featurecache.artifact_io import read_artifact_file

        try:
            verify_file(artifact, os.stat(path).st_size, lambda: hash_file_bytes(str(path)))
            return read_artifact_file(path, kind)
        except FileNotFoundError:
            # Deleted since the catalog row was read (a concurrent GC): recompute.
            raise ArtifactNotFoundError(artifact.artifact_id, str(path)) from None

    # -- miss ---------------------------------------------------------------------------

    def _miss(
        self,
        feature: Feature,
        key: CacheKey,
        inputs: dict[str, InputFingerprint],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        started: float,
    ) -> Any:
        from featurecache.singleflight import LeaseKeeper, acquire_or_wait

        if not feature.wait:
            # Compute here even if another process holds the lease; publication stays
            # correct (write-once artifact, first catalog row wins).
            return self._compute(feature, key, inputs, args, kwargs, started, NoLease())
        while True:
            outcome = acquire_or_wait(
                self.catalog,
                key.key_id,
                # Per thread: threads of one process single-flight among themselves too.
                f"{self.owner}:{threading.get_ident()}",
                lease_seconds=self.settings.lease_seconds,
                heartbeat_seconds=self.settings.heartbeat_seconds,
                wait_timeout=self.settings.wait_timeout_seconds,
                poll=lambda: self.catalog.lookup(key.key_id),
                feature=feature.name,
            )
            if isinstance(outcome, LeaseKeeper):
                break
            value = self._load(outcome, feature.lazy)
            if value is not _MISSING:
                self._record("hit", outcome, time.perf_counter() - started)
                return value
        return self._compute(feature, key, inputs, args, kwargs, started, outcome)

    def _compute(
        self,
        feature: Feature,
        key: CacheKey,
        inputs: dict[str, InputFingerprint],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        started: float,
        lease: Any,
    ) -> Any:
        from featurecache.artifact_io import frame_kind, pandas_snapshot, to_arrow
        from featurecache.fingerprint.arrow import fingerprint_table

        snapshot = None
        try:
            t0 = time.perf_counter()
            out = feature.func(*args, **kwargs)  # exceptions reach the caller unchanged
            compute_seconds = time.perf_counter() - t0
            if frame_kind(out) == "pandas" and self.settings.background_publish:
                snapshot = pandas_snapshot(out)
            table, kind = to_arrow(out if snapshot is None else snapshot, feature.name)
            artifact_id = fingerprint_table(table)
        except BaseException:
            lease.release()
            raise
        self._saw(artifact_id)
        if feature.lazy:
            kind = "lazy"
        job = PublishJob(
            scope=self.lineage.capture() if self.lineage is not None else None,
            feature=feature,
            key=key,
            inputs=inputs,
            table=table,
            kind=kind,
            artifact_id=artifact_id,
            compute_seconds=compute_seconds,
            started=started,
            lease=lease,
            snapshot=snapshot,
        )
        # Results publish in the background while the caller goes on: polars and pyarrow
        # results are immutable, and a pandas result is published from its copy-on-write
        # snapshot (without copy-on-write a pandas frame may share buffers the caller can still
        # write to, so it is published before the frame is handed back). Not when the call
        # holds no lease (wait=False): racing others, it may lose the commit and must then hand
        # back the winner's result, which only a synchronous publish knows.
        background = (
            self.settings.background_publish
            and (kind in ("polars", "arrow") or (kind == "pandas" and snapshot is not None))
            and not isinstance(lease, NoLease)
        )
        job.background = background
        if not background:
            try:
                hit = self.publish(job)
            except LeaseLostError:
                # We stalled past our lease and someone else took the key over: we must not
                # publish, but our result is still the right value for this key. Prefer what
                # the new owner committed, if it already has.
                log.warning("featurecache: lost the lease on %s; not publishing it", feature.name)
                committed = self.catalog.lookup(key.key_id)
                if committed is not None:
                    return self._result(out, kind, committed, artifact_id)
                if kind == "lazy":
                    import polars as pl

                    return pl.from_arrow(table).lazy()  # type: ignore[union-attr]
                return out
            return self._result(out, kind, hit, artifact_id)
        # The function's own output is not carried over (it may share memory with an array
        # the caller still holds); only values the cache builds from artifact bytes are.
        self.publisher.submit(job)
        return out

    def publish(self, job: PublishJob) -> Hit:
        """Store the artifact durably, then commit the catalog row. Returns the winning hit."""
        from featurecache.artifact_io import describe_schema

        try:
            stored = self.store.publish(job.artifact_id, lambda path: self._write(job, path))
            job.lease.check()  # an owner that lost its lease must not publish
            now_code = job.feature.code_identity(self.settings.track_library_versions)
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
            entry = EntryRecord(
                key_id=job.key.key_id,
                feature=job.feature.name,
                code_digest=now_code.digest,
                artifact_id=job.artifact_id,
                return_kind=job.kind,
                components=job.key.components,
            )
            edges = [
                LineageEdge(
                    argument=name,
                    fingerprint=fp.fingerprint,
                    upstream_artifact_id=fp.upstream_artifact_id or self._seen(fp),
                    source_uri=fp.source_uri,
                )
                for name, fp in job.inputs.items()
                if fp.upstream_artifact_id or fp.source_uri or self._seen(fp)
            ]
            code = CodeVersionRecord(
                code_digest=now_code.digest,
                feature=job.feature.name,
                source=now_code.source,
                components=now_code.components,
            )
            hit = self.catalog.publish(entry, artifact, edges, code)
            self.session.add("miss", job.compute_seconds, job.feature.name)
            if self.lineage is not None:
                won = hit.artifact.artifact_id == job.artifact_id
                event = resolved_event(
                    hit,
                    "miss" if won else "hit",
                    code_source=now_code.source,
                    upstream=upstream_of(edges, self.store.uri) if won else (),
                )
                self.lineage.on_resolved(event, scope=job.scope)
            self.catalog.record_event(
                "miss",
                key_id=job.key.key_id,
                feature=job.feature.name,
                artifact_id=hit.artifact.artifact_id,
                duration_seconds=time.perf_counter() - job.started,
                compute_seconds=job.compute_seconds,
            )
            return hit
        finally:
            job.lease.release()

    def _write(self, job: PublishJob, path: Path) -> None:
        from featurecache.artifact_io import write_parquet
        from featurecache.fingerprint.arrow import fingerprint_table

        write_parquet(job.table, path, self.settings, kind=job.kind)
        if job.background:
            # The caller already has the result and its memory may be shared with an array it
            # can still write to: make sure what was written is what was fingerprinted.
            now = fingerprint_table(job.table)
            if now != job.artifact_id:
                raise ArtifactCorruptError(
                    job.artifact_id,
                    f"the result of {job.feature.name} was modified while it was being "
                    f"published (now {now[:12]}); it was not stored",
                )

    def _saw(self, artifact_id: str) -> None:
        seen = self.seen_artifacts
        seen.pop(artifact_id, None)
        seen[artifact_id] = None
        if len(seen) > _SEEN_LIMIT:
            del seen[next(iter(seen))]

    def _seen(self, fp: InputFingerprint) -> str | None:
        algo, _, content = fp.fingerprint.partition(":")
        return content if algo == "xxh3_128" and content in self.seen_artifacts else None

    def _result(self, out: Any, kind: ReturnKind, hit: Hit, artifact_id: str) -> Any:
        if kind == "lazy" or hit.artifact.artifact_id != artifact_id:
            # A lazy result is a scan of the artifact; a lost race returns the winner's value.
            value = self._load(hit, kind == "lazy")
            if value is not _MISSING:
                return value
        return out

    def _record(self, kind: str, hit: Hit, seconds: float) -> None:
        from featurecache.catalog.queries import UsageEvent

        self.session.add(kind, hit.artifact.compute_seconds, hit.entry.feature)
        self.events.add(
            UsageEvent(
                "hit" if kind == "hit" else "miss",
                hit.entry.key_id,
                hit.entry.feature,
                hit.artifact.artifact_id,
                seconds,
                hit.artifact.compute_seconds,
            )
        )
        if self.lineage is not None:
            self.lineage.on_resolved(resolved_event(hit, "hit", code_source=""))
