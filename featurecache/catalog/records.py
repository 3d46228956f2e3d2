"""Value objects that cross the catalog boundary (frozen, JSON-friendly, no ORM objects).

The cache, the CLI and the integrations speak to the catalog only through these records and
the ``Catalog`` class; SQLAlchemy models stay inside ``featurecache.catalog``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

# "composite": a result made of parts (``results.codec``), rebuilt from its artifact's structure.
ReturnKind = Literal["polars", "lazy", "pandas", "arrow", "composite"]
EventKind = Literal["hit", "miss"]


@dataclass(frozen=True)
class ArtifactRecord:
    """One immutable Parquet artifact, identified by the logical fingerprint of its content."""

    artifact_id: str  # 32 hex, xxh3-128 of the logical Arrow content
    uri: str  # where the store keeps it (file:///… or s3://…)
    rows: int
    columns: int
    schema: list[dict[str, Any]]  # [{"name":…, "type":…, "nullable":…}]
    size_bytes: int  # of the Parquet file
    file_hash: str  # xxh3-128 of the Parquet file's bytes, checked on read
    compute_seconds: float  # what producing it cost (for "seconds avoided")
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    hits: int = 0
    pinned: bool = False
    # A composite result: the JSON of its shape and scalars (``results.codec``); its parts are
    # single-file artifacts (``Hit.parts``). None for a single Parquet file.
    structure: dict[str, Any] | None = None

    @property
    def is_composite(self) -> bool:
        return self.structure is not None


@dataclass(frozen=True)
class EntryRecord:
    """One cache key and the artifact it resolves to, with every component of the key."""

    key_id: str  # 32 hex
    feature: str
    code_digest: str
    artifact_id: str
    return_kind: ReturnKind
    # JSON-able: {"key_scheme":…, "code": {code identity components}, "inputs": {name: {…}}}
    components: dict[str, Any]
    created_at: datetime | None = None


@dataclass(frozen=True)
class LineageEdge:
    """An input of a materialisation: an upstream artifact or a source (file, S3 object)."""

    argument: str
    fingerprint: str  # algorithm-prefixed, e.g. "xxh3_128:…"
    upstream_artifact_id: str | None = None
    source_uri: str | None = None


@dataclass(frozen=True)
class CodeVersionRecord:
    code_digest: str
    feature: str
    source: str
    components: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    entry: EntryRecord
    artifact: ArtifactRecord
    # The parts of a composite artifact, in order (empty for a single file).
    parts: tuple[ArtifactRecord, ...] = ()
    # False: a part of this composite is missing or tombstoned; it must not be served.
    complete: bool = True


@dataclass(frozen=True)
class LeaseRecord:
    key_id: str
    owner: str
    expires_at: datetime
    heartbeat_at: datetime
    expired: bool  # judged by the database clock when read


def require_aware(name: str, value: datetime) -> None:
    # Catalog timestamps are aware UTC; a naive one would compare wrongly or raise mid-plan.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")


@dataclass(frozen=True)
class GcCandidate:
    """What GC needs to know about one artifact (a snapshot taken by the catalog)."""

    artifact_id: str
    features: tuple[str, ...]  # names of the features whose keys point to it
    size_bytes: int
    created_at: datetime
    last_used_at: datetime | None = None  # None: never used since it was created
    pinned: bool = False
    leased: bool = False  # an active lease on any key pointing to it
    used_by_runs: bool = False  # recorded MLflow runs used it
    # A composite: its part ids (it has no file; ``size_bytes`` is its parts' total).
    parts: tuple[str, ...] = ()
    # The live composites that list it as a part (GC keeps it while there is one).
    composites: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.size_bytes < 0:
            raise ValueError(f"artifact {self.artifact_id}: negative size {self.size_bytes}")
        require_aware(f"artifact {self.artifact_id} created_at", self.created_at)
        if self.last_used_at is not None:
            require_aware(f"artifact {self.artifact_id} last_used_at", self.last_used_at)
        # Normalised so that equal snapshots compare equal whatever order the catalog used.
        object.__setattr__(self, "features", tuple(sorted(set(self.features))))
        object.__setattr__(self, "composites", tuple(sorted(set(self.composites))))

    @property
    def file_bytes(self) -> int:
        """Bytes of its own file in the store: none for a composite (its parts hold them)."""
        return 0 if self.parts else self.size_bytes

    @property
    def recency(self) -> datetime:
        """When it was last used, or created if never used (the later, should clocks disagree)."""
        if self.last_used_at is None:
            return self.created_at
        return max(self.created_at, self.last_used_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "artifact_id": self.artifact_id,
            "features": list(self.features),
            "size_bytes": self.size_bytes,
            "created_at": self.created_at.isoformat(),
            "last_used_at": None if self.last_used_at is None else self.last_used_at.isoformat(),
            "pinned": self.pinned,
            "leased": self.leased,
            "used_by_runs": self.used_by_runs,
            **({"parts": list(self.parts)} if self.parts else {}),
            **({"part_of": list(self.composites)} if self.composites else {}),
        }


class PublishRow(NamedTuple):
    """What ``Catalog.publish`` records for one computed result (its arguments)."""

    entry: EntryRecord
    artifact: ArtifactRecord
    lineage: Sequence[LineageEdge]
    code: CodeVersionRecord
    parts: Sequence[ArtifactRecord] = ()


@dataclass(frozen=True)
class UsageEvent:
    """One call of a feature, for ``Catalog.record_events``. ``at`` (aware) is when it
    happened; None means "now" by the database clock."""

    kind: EventKind
    key_id: str
    feature: str
    artifact_id: str | None
    duration_seconds: float
    compute_seconds: float
    run_id: str | None = None
    at: datetime | None = None


# What ``store.layout.check_artifact_id`` accepts (xxh3-128, 32 lowercase hex). A row holding
# anything else was not written by featurecache (hand-edited, corrupted): no store can hold its
# file, so the catalog treats it as corrupt instead of handing it out.
_ARTIFACT_ID = re.compile(r"[0-9a-f]{32}")


def is_artifact_id(artifact_id: object) -> bool:
    """Whether ``artifact_id`` is a well-formed artifact id (32 lowercase hex)."""
    return isinstance(artifact_id, str) and _ARTIFACT_ID.fullmatch(artifact_id) is not None
