"""Catalog queries and writes behind ``featurecache gc`` and ``featurecache verify``.

* ``gc_snapshot``: every live artifact as a ``GcCandidate`` (features, pin, active lease on
  a key pointing at it, use by an MLflow run) together with the database clock, read in one
  transaction so the planner judges ages against the time the data was read.
* ``mark_deleted``: the "mark" half of mark-and-sweep. Inside one write transaction it re-reads
  each planned artifact (row-locked on PostgreSQL), asks the policy (``ops.gc_plan``) whether it may still
  go (the database clock decides), drops the cache entries pointing at the survivors of that
  check and tombstones them (``deleted_at``). Readers never see a tombstoned artifact again.
* ``tombstoned`` / ``still_tombstoned`` / ``purge``: the sweep. Files go first, then the
  rows, and only rows that are still tombstoned (a concurrent publish may revive one).
* ``artifact_states``: what ``verify`` reconciles with the store, tombstoned rows included.

Composite results (one row with no file, its parts in ``artifact_parts``): a candidate carries
its part ids, and a part the live composites that list it, so the planner keeps every part of
a live composite; ``mark_deleted`` re-reads those lists under the same lock; ``purge`` and
``drop`` of a part take the live composites made of it along (never served in part).

Every function takes a connection inside a transaction opened by ``Catalog``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import CursorResult, and_, delete, exists, select, update
from sqlalchemy.engine import Connection

from featurecache.catalog import composites
from featurecache.catalog.clock import utc_now, utc_now_plus
from featurecache.catalog.models import Artifact, CacheEntry, Lease, RunUsageRow
from featurecache.catalog.records import GcCandidate


class DeletePolicy(Protocol):
    """What decides, inside the marking transaction, whether a planned artifact may still go
    (``ops.gc_plan.GcPolicy``): None to delete it, else why it stays."""

    def recheck(
        self, candidate_now: GcCandidate | None, now: datetime, planned: GcCandidate | None = None
    ) -> str | None: ...


T = TypeVar("T")

# Statements bind one parameter per id: stay far below SQLite's and PostgreSQL's limits.
CHUNK = 500


@dataclass(frozen=True)
class MarkOutcome:
    """What one marking transaction did: tombstoned ids, and why the others stayed."""

    marked: tuple[str, ...]
    kept: dict[str, str]  # artifact_id -> the re-check's reason


@dataclass(frozen=True)
class ArtifactState:
    """An artifact row as ``verify`` sees it (``deleted_at`` set: tombstoned)."""

    artifact_id: str
    size_bytes: int
    file_hash: str
    created_at: datetime
    deleted_at: datetime | None
    # A composite: True, and its part ids in order (it has no file of its own).
    composite: bool = False
    parts: tuple[str, ...] = ()

    @property
    def live(self) -> bool:
        return self.deleted_at is None


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return result.rowcount


def _candidates(conn: Connection, ids: Sequence[str] | None, *, lock: bool) -> list[GcCandidate]:
    """Live artifacts (all, or those of ``ids``) as GC candidates."""
    active_lease = exists().where(
        CacheEntry.artifact_id == Artifact.artifact_id,
        Lease.key_id == CacheEntry.key_id,
        Lease.expires_at >= utc_now(),
    )
    used_by_runs = exists().where(RunUsageRow.artifact_id == Artifact.artifact_id)
    query = select(
        Artifact.artifact_id,
        Artifact.size_bytes,
        Artifact.created_at,
        Artifact.last_used_at,
        Artifact.pinned,
        active_lease.label("leased"),
        used_by_runs.label("used_by_runs"),
    ).where(Artifact.deleted_at.is_(None))
    pairs = select(CacheEntry.artifact_id, CacheEntry.feature).distinct()
    if ids is not None:
        query = query.where(Artifact.artifact_id.in_(ids))
        pairs = pairs.where(CacheEntry.artifact_id.in_(ids))
    if lock:
        # PostgreSQL: a concurrent hit's bump of last_used_at (or a revive) waits for this
        # transaction, so what we re-check is what we tombstone. SQLite ignores it: BEGIN
        # IMMEDIATE already holds the only write lock.
        query = query.with_for_update(of=Artifact)
    rows = conn.execute(query.order_by(Artifact.artifact_id)).all()
    features: dict[str, list[str]] = {}
    for artifact_id, feature in conn.execute(pairs):
        features.setdefault(artifact_id, []).append(feature)
    # Read after the rows are locked, in statements of their own: on PostgreSQL (read
    # committed) each sees a composite whose publish the lock waited for.
    parts = composites.part_ids_of(conn, ids)
    holders = composites.composites_of(conn, ids)
    return [
        GcCandidate(
            artifact_id=row.artifact_id,
            features=tuple(features.get(row.artifact_id, ())),
            size_bytes=row.size_bytes,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            pinned=bool(row.pinned),
            leased=bool(row.leased),
            used_by_runs=bool(row.used_by_runs),
            parts=tuple(parts.get(row.artifact_id, ())),
            composites=tuple(holders.get(row.artifact_id, ())),
        )
        for row in rows
    ]


def gc_snapshot(conn: Connection) -> tuple[datetime, list[GcCandidate]]:
    """The database clock and every live artifact, read in one transaction."""
    now = conn.scalar(select(utc_now()))
    assert now is not None
    return now, _candidates(conn, None, lock=False)


def mark_deleted(
    conn: Connection, planned: Sequence[GcCandidate], policy: DeletePolicy
) -> MarkOutcome:
    """Tombstone each planned artifact that ``policy.recheck`` still lets go, and drop the cache
    entries that point at it, in the caller's (write) transaction."""
    if not planned:
        return MarkOutcome((), {})
    ids = [candidate.artifact_id for candidate in planned]
    fresh = {c.artifact_id: c for c in _candidates(conn, ids, lock=True)}
    now = conn.scalar(select(utc_now()))
    assert now is not None
    marked: list[str] = []
    marked_now: set[str] = set()
    kept: dict[str, str] = {}
    # Composites first: a part whose every composite goes in this same transaction is free.
    for candidate in sorted(planned, key=lambda c: not c.parts):
        candidate_now = fresh.get(candidate.artifact_id)
        if candidate_now is not None and candidate_now.composites:
            holders = tuple(c for c in candidate_now.composites if c not in marked_now)
            candidate_now = replace(candidate_now, composites=holders)
        reason = policy.recheck(candidate_now, now, planned=candidate)
        if reason is None:
            marked.append(candidate.artifact_id)
            marked_now.add(candidate.artifact_id)
        else:
            kept[candidate.artifact_id] = reason
    if marked:
        conn.execute(delete(CacheEntry).where(CacheEntry.artifact_id.in_(marked)))
        conn.execute(
            update(Artifact)
            .where(Artifact.artifact_id.in_(marked), Artifact.deleted_at.is_(None))
            .values(deleted_at=utc_now())
        )
    return MarkOutcome(tuple(marked), kept)


def tombstoned(conn: Connection, min_age_seconds: float) -> list[str]:
    """Tombstoned artifacts whose tombstone is at least ``min_age_seconds`` old (database
    clock): a crash between mark and sweep, or an artifact a reader found lost or corrupt."""
    return list(
        conn.scalars(
            select(Artifact.artifact_id)
            .where(
                Artifact.deleted_at.is_not(None),
                Artifact.deleted_at <= utc_now_plus(-float(min_age_seconds)),
            )
            .order_by(Artifact.artifact_id)
        )
    )


# ``deleted_at`` of a row whose file a sweep is deleting right now: a publish must not revive
# it (the row would be live while its file goes). The epoch sorts before every real tombstone,
# so a sweep that died holding claims leaves rows the next sweep takes again.
SWEEP_CLAIM = datetime(1970, 1, 1, tzinfo=UTC)


def claim_for_sweep(conn: Connection, ids: Sequence[str]) -> list[str]:
    """Claim those of ``ids`` that are still tombstoned (not revived by a publish, not purged)
    for deletion, in the caller's write transaction: from its commit on, no publish revives
    them until the sweep purges them (or hands back the ones it could not delete)."""
    claimed = list(
        conn.scalars(
            select(Artifact.artifact_id)
            .where(Artifact.artifact_id.in_(ids), Artifact.deleted_at.is_not(None))
            .order_by(Artifact.artifact_id)
            .with_for_update()
        )
    )
    if claimed:
        conn.execute(
            update(Artifact)
            .where(Artifact.artifact_id.in_(claimed), Artifact.deleted_at.is_not(None))
            .values(deleted_at=SWEEP_CLAIM)
        )
    return claimed


def release_sweep_claims(conn: Connection, ids: Sequence[str]) -> None:
    """Files the sweep could not delete: plain tombstones again (a publish may revive them)."""
    conn.execute(
        update(Artifact)
        .where(Artifact.artifact_id.in_(ids), Artifact.deleted_at == SWEEP_CLAIM)
        .values(deleted_at=utc_now())
    )


def still_tombstoned(conn: Connection, ids: Sequence[str]) -> list[str]:
    """Those of ``ids`` whose row is still tombstoned (not revived by a publish, not purged)."""
    return list(
        conn.scalars(
            select(Artifact.artifact_id)
            .where(Artifact.artifact_id.in_(ids), Artifact.deleted_at.is_not(None))
            .order_by(Artifact.artifact_id)
        )
    )


def purge(conn: Connection, ids: Sequence[str]) -> int:
    """Delete the rows of swept artifacts (their lineage edges and, for a composite, its
    part list go with them); a row revived by a concurrent publish meanwhile is left alone.
    Returns how many rows went."""
    result = conn.execute(
        delete(Artifact).where(
            and_(Artifact.artifact_id.in_(ids), Artifact.deleted_at.is_not(None))
        )
    )
    return _rowcount(result)


_STATE_COLUMNS: tuple[Any, ...] = (
    Artifact.artifact_id,
    Artifact.size_bytes,
    Artifact.file_hash,
    Artifact.created_at,
    Artifact.deleted_at,
)


def artifact_states(conn: Connection, ids: Sequence[str] | None = None) -> list[ArtifactState]:
    """Every artifact row (or those of ``ids``), live and tombstoned, by id."""
    query = select(*_STATE_COLUMNS, Artifact.structure.is_not(None)).order_by(Artifact.artifact_id)
    if ids is not None:
        query = query.where(Artifact.artifact_id.in_(ids))
    rows = conn.execute(query).all()
    composite = [row[0] for row in rows if row[-1]]
    parts = composites.part_ids_of(conn, composite) if composite else {}
    return [
        ArtifactState(
            artifact_id=row.artifact_id,
            size_bytes=row.size_bytes,
            file_hash=row.file_hash,
            created_at=row.created_at,
            deleted_at=row.deleted_at,
            composite=bool(row[-1]),
            parts=tuple(parts.get(row.artifact_id, ())),
        )
        for row in rows
    ]


def drop(conn: Connection, ids: Sequence[str]) -> int:
    """Delete the rows of artifacts the store lost or that were quarantined, with the cache
    entries pointing at them: their keys miss (and recompute) from now on. A live composite
    made of one of them goes too (a composite is served whole or not at all)."""
    made_of = composites.composites_of(conn, ids)
    ids = sorted({*ids, *(c for holders in made_of.values() for c in holders)})
    conn.execute(delete(CacheEntry).where(CacheEntry.artifact_id.in_(ids)))
    return _rowcount(conn.execute(delete(Artifact).where(Artifact.artifact_id.in_(ids))))
