"""Value objects that cross the catalog boundary (frozen, JSON-friendly, no ORM objects).

The cache, the CLI and the integrations speak to the catalog only through these records and
the ``Catalog`` class; SQLAlchemy models stay inside ``featurecache.catalog``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

ReturnKind = Literal["polars", "lazy", "pandas", "arrow"]
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


@dataclass(frozen=True)
class LeaseRecord:
    key_id: str
    owner: str
    expires_at: datetime
    heartbeat_at: datetime
    expired: bool  # judged by the database clock when read
