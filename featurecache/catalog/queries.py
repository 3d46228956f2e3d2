"""Read queries of the catalog, and the conversion of rows into records.

Every function takes a connection already inside a transaction (``Catalog`` opens it) and
returns records from ``records.py`` (or the two small ones defined here), never ORM objects.
Tombstoned artifacts (``deleted_at`` set) are invisible to every query here.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import and_, bindparam, exists, func, select
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql import ColumnElement, Select

from featurecache.catalog.models import (
    Artifact,
    ArtifactInput,
    ArtifactPart,
    CacheEntry,
    CodeVersion,
    FingerprintAlias,
    RunUsageRow,
    UsageEventRow,
)
from featurecache.catalog.records import (
    ArtifactRecord,
    CodeVersionRecord,
    EntryRecord,
    Hit,
    LineageEdge,
    ReturnKind,
)
from featurecache.catalog.records import (
    UsageEvent as UsageEvent,  # its home is records (no SQLAlchemy); importable here too
)
from featurecache.catalog.records import is_artifact_id as is_artifact_id
from featurecache.errors import AmbiguousReferenceError, ArtifactNotFoundError

ArtifactSort = Literal["created", "used", "size"]


@dataclass(frozen=True)
class RunUsage:
    """An MLflow run that used an artifact."""

    run_id: str
    artifact_id: str
    context: str
    tracking_uri: str
    at: datetime


ENTRY_COLUMNS = (
    CacheEntry.key_id,
    CacheEntry.feature,
    CacheEntry.code_digest,
    CacheEntry.artifact_id,
    CacheEntry.return_kind,
    CacheEntry.components,
    CacheEntry.created_at,
)
ARTIFACT_COLUMNS = (
    Artifact.artifact_id,
    Artifact.uri,
    Artifact.rows,
    Artifact.columns,
    Artifact.schema,
    Artifact.size_bytes,
    Artifact.file_hash,
    Artifact.compute_seconds,
    Artifact.created_at,
    Artifact.last_used_at,
    Artifact.hits,
    Artifact.pinned,
    Artifact.structure,
)
_LIVE = Artifact.deleted_at.is_(None)

# The hot path of every cache hit: one primary-key probe joined to one primary-key probe.
# Built once so SQLAlchemy's compiled-statement cache always hits.
LOOKUP = (
    select(*ENTRY_COLUMNS, *ARTIFACT_COLUMNS)
    .join(Artifact, Artifact.artifact_id == CacheEntry.artifact_id)
    .where(CacheEntry.key_id == bindparam("key_id"), _LIVE)
)


def entry_from_row(row: Row[Any] | tuple[Any, ...], offset: int = 0) -> EntryRecord:
    return EntryRecord(
        key_id=row[offset],
        feature=row[offset + 1],
        code_digest=row[offset + 2],
        artifact_id=row[offset + 3],
        return_kind=cast(ReturnKind, row[offset + 4]),
        components=row[offset + 5],
        created_at=row[offset + 6],
    )


def artifact_from_row(row: Row[Any] | tuple[Any, ...], offset: int = 0) -> ArtifactRecord:
    return ArtifactRecord(
        artifact_id=row[offset],
        uri=row[offset + 1],
        rows=row[offset + 2],
        columns=row[offset + 3],
        schema=row[offset + 4],
        size_bytes=row[offset + 5],
        file_hash=row[offset + 6],
        compute_seconds=row[offset + 7],
        created_at=row[offset + 8],
        last_used_at=row[offset + 9],
        hits=row[offset + 10],
        pinned=bool(row[offset + 11]),
        structure=row[offset + 12],
    )


PARTS = (
    select(*ARTIFACT_COLUMNS, ArtifactPart.position)
    .join(ArtifactPart, ArtifactPart.part_id == Artifact.artifact_id)
    .where(ArtifactPart.composite_id == bindparam("composite_id"), _LIVE)
    .order_by(ArtifactPart.position)
)


def lookup(conn: Connection, key_id: str) -> Hit | None:
    row = conn.execute(LOOKUP, {"key_id": key_id}).first()
    if row is None:
        return None
    artifact = artifact_from_row(row, len(ENTRY_COLUMNS))
    if not artifact.is_composite:
        return Hit(entry_from_row(row), artifact)
    parts = parts_of(conn, artifact)
    return Hit(entry_from_row(row), artifact, parts or (), complete=parts is not None)


def part_ids(conn: Connection, composite_id: str) -> list[str]:
    """The part ids of a composite in order, live or not."""
    return list(
        conn.scalars(
            select(ArtifactPart.part_id)
            .where(ArtifactPart.composite_id == composite_id)
            .order_by(ArtifactPart.position)
        )
    )


def parts_of(conn: Connection, composite: ArtifactRecord) -> tuple[ArtifactRecord, ...] | None:
    """The live parts of ``composite`` in order; None when one of them is missing or
    tombstoned (a composite is served whole or not at all)."""
    rows = conn.execute(PARTS, {"composite_id": composite.artifact_id}).all()
    expected = len(part_ids(conn, composite.artifact_id))
    if len(rows) != expected or [row[-1] for row in rows] != list(range(expected)):
        return None
    return tuple(artifact_from_row(row) for row in rows)


def get_artifact(conn: Connection, artifact_id: str) -> ArtifactRecord | None:
    row = conn.execute(
        select(*ARTIFACT_COLUMNS).where(Artifact.artifact_id == artifact_id, _LIVE)
    ).first()
    return None if row is None else artifact_from_row(row)


def entries_for_artifact(conn: Connection, artifact_id: str) -> list[EntryRecord]:
    rows = conn.execute(
        select(*ENTRY_COLUMNS)
        .where(CacheEntry.artifact_id == artifact_id)
        .order_by(CacheEntry.created_at.desc(), CacheEntry.key_id)
    )
    return [entry_from_row(row) for row in rows]


def newest_entries_for_artifacts(
    conn: Connection, artifact_ids: Sequence[str], chunk: int = 500
) -> dict[str, EntryRecord]:
    """Each artifact's newest entry (ties broken by key id, as ``entries_for_artifact``
    orders them), in one query per ``chunk`` ids; artifacts no entry names are left out."""
    found: dict[str, EntryRecord] = {}
    for start in range(0, len(artifact_ids), chunk):
        rows = conn.execute(
            select(*ENTRY_COLUMNS)
            .where(CacheEntry.artifact_id.in_(artifact_ids[start : start + chunk]))
            .order_by(CacheEntry.created_at.desc(), CacheEntry.key_id)
        )
        for row in rows:
            entry = entry_from_row(row)
            found.setdefault(entry.artifact_id, entry)
    return found


def recent_entries(conn: Connection, feature: str, limit: int) -> list[EntryRecord]:
    """The distinct keys of ``feature``'s most recent calls, newest first: by their latest
    usage event, then (keys never used since published) by creation."""
    last_used = func.max(UsageEventRow.at).label("last_used")
    used = (
        select(UsageEventRow.key_id, last_used)
        .where(UsageEventRow.feature == feature)
        .group_by(UsageEventRow.key_id)
        .subquery()
    )
    by_use = conn.execute(
        select(*ENTRY_COLUMNS)
        .join(used, used.c.key_id == CacheEntry.key_id)
        .where(CacheEntry.feature == feature)
        .order_by(used.c.last_used.desc(), CacheEntry.key_id)
        .limit(limit)
    )
    found = [entry_from_row(row) for row in by_use]
    if len(found) < limit:
        seen = {entry.key_id for entry in found}
        by_creation = conn.execute(
            select(*ENTRY_COLUMNS)
            .where(CacheEntry.feature == feature)
            .order_by(CacheEntry.created_at.desc(), CacheEntry.key_id)
            .limit(limit + len(seen))
        )
        for row in by_creation:
            if len(found) == limit:
                break
            if row[0] not in seen:
                found.append(entry_from_row(row))
    return found


def _sorted_artifacts(sort: ArtifactSort) -> Select[Any]:
    order: dict[str, ColumnElement[Any]] = {
        "created": Artifact.created_at.desc(),
        "used": Artifact.last_used_at.desc(),
        "size": Artifact.size_bytes.desc(),
    }
    if sort not in order:
        raise ValueError(f"sort must be one of {sorted(order)}, not {sort!r}")
    return select(*ARTIFACT_COLUMNS).where(_LIVE).order_by(order[sort], Artifact.artifact_id)


def list_artifacts(
    conn: Connection, feature: str | None, sort: ArtifactSort
) -> list[tuple[ArtifactRecord, list[str]]]:
    """Live artifacts (of ``feature``'s entries, if given), each with the sorted names of
    every feature whose entries point at it."""
    query = _sorted_artifacts(sort)
    pairs = select(CacheEntry.artifact_id, CacheEntry.feature).distinct()
    if feature is not None:
        of_feature = select(CacheEntry.artifact_id).where(CacheEntry.feature == feature)
        query = query.where(Artifact.artifact_id.in_(of_feature))
        pairs = pairs.where(CacheEntry.artifact_id.in_(of_feature))
    features: dict[str, list[str]] = {}
    for artifact_id, name in conn.execute(pairs):
        features.setdefault(artifact_id, []).append(name)
    return [
        (artifact_from_row(row), sorted(features.get(row[0], []))) for row in conn.execute(query)
    ]


@dataclass(frozen=True)
class ArtifactListing:
    """One line of ``featurecache ls``: an artifact without its schema, and its features."""

    artifact_id: str
    uri: str
    rows: int
    columns: int
    size_bytes: int
    compute_seconds: float
    created_at: datetime
    last_used_at: datetime
    hits: int
    pinned: bool
    features: tuple[str, ...]
    # A composite result's structure (``results.codec``); None for a single file.
    structure: dict[str, Any] | None = None


_LISTING_PAGE = 1000
_LISTING_COLUMNS = (
    Artifact.artifact_id,
    Artifact.uri,
    Artifact.rows,
    Artifact.columns,
    Artifact.size_bytes,
    Artifact.compute_seconds,
    Artifact.created_at,
    Artifact.last_used_at,
    Artifact.hits,
    Artifact.pinned,
    Artifact.structure,
)


def only_a_part() -> ColumnElement[bool]:
    """A part of a live composite that no cache entry points at: not a result of its own,
    so ``ls`` shows it only through its composite (one result, one line)."""
    composite = Artifact.__table__.alias()
    in_live_composite = (
        select(ArtifactPart.part_id)
        .join(composite, composite.c.artifact_id == ArtifactPart.composite_id)
        .where(composite.c.deleted_at.is_(None))
    )
    has_entry = exists().where(CacheEntry.artifact_id == Artifact.artifact_id)
    return and_(Artifact.artifact_id.in_(in_live_composite), ~has_entry)


def artifact_listing(
    conn: Connection, feature: str | None, sort: ArtifactSort, limit: int | None
) -> tuple[int, list[ArtifactListing]]:
    """How many live artifacts there are (of ``feature``, if given), and the first ``limit``
    of them (all when None) in ``sort`` order. Only the columns a listing shows are read, so
    listing a large catalog stays fast. A part of a live composite that no entry points at
    is left out (and out of the count): its composite is the result."""
    query = _sorted_artifacts(sort).with_only_columns(*_LISTING_COLUMNS).where(~only_a_part())
    count = select(func.count()).select_from(Artifact).where(_LIVE, ~only_a_part())
    pairs = select(CacheEntry.artifact_id, CacheEntry.feature).distinct()
    if feature is not None:
        of_feature = select(CacheEntry.artifact_id).where(CacheEntry.feature == feature)
        query = query.where(Artifact.artifact_id.in_(of_feature))
        count = count.where(Artifact.artifact_id.in_(of_feature))
        pairs = pairs.where(CacheEntry.artifact_id.in_(of_feature))
    if limit is not None:
        query = query.limit(limit)
    rows = conn.execute(query).all()
    if len(rows) <= _LISTING_PAGE:  # a short page: only its features (one bound id each)
        pairs = pairs.where(CacheEntry.artifact_id.in_([row[0] for row in rows]))
    features: dict[str, list[str]] = {}
    for artifact_id, name in conn.execute(pairs).all():
        features.setdefault(artifact_id, []).append(name)
    total = int(conn.execute(count).scalar_one())
    # Positional (not named) access and tuples straight from the cursor: this loop runs once
    # per artifact of the catalog for ``ls --json``.
    return total, [
        ArtifactListing(
            artifact_id,
            uri,
            n_rows,
            n_columns,
            size_bytes,
            compute_seconds,
            created_at,
            last_used_at,
            hits,
            bool(pinned),
            tuple(sorted(features.get(artifact_id, ()))),
            structure,
        )
        for (
            artifact_id,
            uri,
            n_rows,
            n_columns,
            size_bytes,
            compute_seconds,
            created_at,
            last_used_at,
            hits,
            pinned,
            structure,
        ) in rows
    ]


def resolve_ref(conn: Connection, ref: str) -> str:
    """A git-style unique prefix of a live artifact id -> the full id."""
    prefix = ref.strip().lower()
    if not prefix or any(char not in string.hexdigits for char in prefix):
        raise ArtifactNotFoundError(ref)
    matches = list(
        conn.scalars(
            select(Artifact.artifact_id)
            .where(Artifact.artifact_id.startswith(prefix), _LIVE)
            .order_by(Artifact.artifact_id)
            .limit(2)
        )
    )
    if not matches:
        raise ArtifactNotFoundError(ref)
    if len(matches) == 1:
        return matches[0]
    every = conn.scalars(
        select(Artifact.artifact_id)
        .where(Artifact.artifact_id.startswith(prefix), _LIVE)
        .order_by(Artifact.artifact_id)
    )
    raise AmbiguousReferenceError(ref, list(every))


def lineage_of(conn: Connection, artifact_id: str) -> list[LineageEdge]:
    rows = conn.execute(
        select(
            ArtifactInput.argument,
            ArtifactInput.fingerprint,
            ArtifactInput.upstream_artifact_id,
            ArtifactInput.source_uri,
        )
        .where(ArtifactInput.artifact_id == artifact_id)
        .order_by(ArtifactInput.argument)
    )
    return [LineageEdge(*row) for row in rows]


def downstream_of(conn: Connection, artifact_id: str) -> list[str]:
    """Artifacts computed from ``artifact_id`` (one level of lineage)."""
    return list(
        conn.scalars(
            select(ArtifactInput.artifact_id)
            .where(ArtifactInput.upstream_artifact_id == artifact_id)
            .distinct()
            .order_by(ArtifactInput.artifact_id)
        )
    )


RUN_USAGE_COLUMNS = (
    RunUsageRow.run_id,
    RunUsageRow.artifact_id,
    RunUsageRow.context,
    RunUsageRow.tracking_uri,
    RunUsageRow.at,
)


def runs_for_artifact(conn: Connection, artifact_id: str) -> list[RunUsage]:
    rows = conn.execute(
        select(*RUN_USAGE_COLUMNS)
        .where(RunUsageRow.artifact_id == artifact_id)
        .order_by(RunUsageRow.at, RunUsageRow.run_id, RunUsageRow.context)
    )
    return [RunUsage(*row) for row in rows]


def lookup_alias(conn: Connection, algo: str, value: str) -> str | None:
    return conn.scalar(
        select(FingerprintAlias.canonical).where(
            FingerprintAlias.algo == algo, FingerprintAlias.value == value
        )
    )


def code_versions(conn: Connection, digests: Sequence[str]) -> list[CodeVersionRecord]:
    """The recorded code identities among ``digests``, by digest."""
    rows = conn.execute(
        select(
            CodeVersion.code_digest,
            CodeVersion.feature,
            CodeVersion.source,
            CodeVersion.components,
        )
        .where(CodeVersion.code_digest.in_(list(digests)))
        .order_by(CodeVersion.code_digest)
    )
    return [CodeVersionRecord(*row) for row in rows]
