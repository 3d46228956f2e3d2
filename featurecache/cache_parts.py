"""Values and pure helpers of the cache engine: per-process session statistics, a publish
job, artifact verification, and what a resolved call looks like to MLflow lineage."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from featurecache.catalog.records import ArtifactRecord, Hit, LineageEdge, ReturnKind
from featurecache.errors import ArtifactCorruptError
from featurecache.integrations.mlflow_lineage import LineageScope, ResolvedFeature, Upstream

if TYPE_CHECKING:
    import pyarrow as pa

    from featurecache.decorator import Feature
    from featurecache.fingerprint.types import InputFingerprint
    from featurecache.keys import CacheKey


@dataclass
class SessionStats:
    """What this process's calls did (the catalog keeps the durable history)."""

    hits: int = 0
    misses: int = 0
    seconds_avoided: float = 0.0
    compute_seconds: float = 0.0
    events: list[tuple[str, str]] = field(default_factory=list)  # (feature, "hit"|"miss")
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, compute_seconds: float, feature: str) -> None:
        with self._lock:
            self.events.append((feature, kind))
            if kind == "hit":
                self.hits += 1
                self.seconds_avoided += compute_seconds
            else:
                self.misses += 1
                self.compute_seconds += compute_seconds


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


def upstream_of(edges: list[LineageEdge], artifact_uri: Any) -> tuple[Upstream, ...]:
    """MLflow's view of a miss's inputs: the same edges the catalog records."""
    return tuple(
        Upstream(edge.argument, edge.upstream_artifact_id, artifact_uri(edge.upstream_artifact_id), True)
        if edge.upstream_artifact_id
        else Upstream(edge.argument, edge.fingerprint, edge.source_uri, False)
        for edge in edges
    )


def resolved_event(hit: Hit, kind: Any, *, code_source: str, upstream: Any = ()) -> ResolvedFeature:
    artifact = hit.artifact
    return ResolvedFeature(
        feature=hit.entry.feature,
        artifact_id=artifact.artifact_id,
        artifact_uri=artifact.uri,
        key_id=hit.entry.key_id,
        code_digest=hit.entry.code_digest,
        code_source=code_source,
        rows=artifact.rows,
        columns=artifact.columns,
        schema=artifact.schema,
        kind=kind,
        upstream=upstream,
    )


class NoLease:
    """The lease of a ``wait=False`` call: there is none to check or release."""

    def check(self) -> None:
        return None

    def release(self) -> None:
        return None


class _Missing:
    pass


_MISSING: Any = _Missing()


class PublishJob:
    """Everything needed to publish one computed result."""

    __slots__ = (
        "artifact_id",
        "background",
        "compute_seconds",
        "feature",
        "inputs",
        "key",
        "kind",
        "lease",
        "scope",
        "snapshot",
        "started",
        "table",
    )

    def __init__(
        self,
        *,
        scope: LineageScope | None,
        feature: Feature,
        key: CacheKey,
        inputs: dict[str, InputFingerprint],
        table: pa.Table,
        kind: ReturnKind,
        artifact_id: str,
        compute_seconds: float,
        started: float,
        lease: Any,
        snapshot: object = None,
    ) -> None:
        self.feature = feature
        self.key = key
        self.inputs = inputs
        self.table = table
        self.kind: ReturnKind = kind
        self.artifact_id = artifact_id
        self.compute_seconds = compute_seconds
        self.started = started
        self.lease = lease
        self.scope = scope
        # A pandas result's copy-on-write snapshot, which ``table`` may share memory with:
        # held until the publish ends, so the caller's writes to its frame copy first.
        self.snapshot = snapshot
        self.background = False
