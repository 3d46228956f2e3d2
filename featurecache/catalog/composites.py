"""Reads over ``artifact_parts`` for the maintenance tools (gc, verify, ls, show, lineage).

A composite result is one ``artifacts`` row (``structure`` set, no file) whose parts, ordinary
single-file artifacts, are listed in order in ``artifact_parts`` (``part_id`` has no foreign
key: a part row may be missing or tombstoned, which is what ``verify`` reports). The lookup
path's own reads (``queries.parts_of``) stay in ``queries``.

Every function takes a connection inside a transaction opened by ``Catalog``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from featurecache.catalog.models import Artifact, ArtifactPart
from featurecache.catalog.queries import ARTIFACT_COLUMNS, artifact_from_row
from featurecache.catalog.records import ArtifactRecord

# Statements bind one parameter per id: stay far below SQLite's and PostgreSQL's limits.
_CHUNK = 500


@dataclass(frozen=True)
class PartRef:
    """Part ``position`` of a composite: its id, and its row (None when the row is gone;
    ``tombstoned`` when GC or a reader marked it deleted)."""

    position: int
    part_id: str
    record: ArtifactRecord | None
    tombstoned: bool = False

    @property
    def live(self) -> bool:
        return self.record is not None and not self.tombstoned


def parts_listing(conn: Connection, composite_id: str) -> list[PartRef]:
    """Every part the composite lists, in order, with its row as it is now."""
    listed = conn.execute(
        select(ArtifactPart.position, ArtifactPart.part_id)
        .where(ArtifactPart.composite_id == composite_id)
        .order_by(ArtifactPart.position)
    ).all()
    ids = sorted({part_id for _, part_id in listed})
    rows = {}
    for start in range(0, len(ids), _CHUNK):
        query = select(*ARTIFACT_COLUMNS, Artifact.deleted_at).where(
            Artifact.artifact_id.in_(ids[start : start + _CHUNK])
        )
        for row in conn.execute(query):
            rows[row.artifact_id] = (artifact_from_row(row), row.deleted_at is not None)
    refs = []
    for position, part_id in listed:
        record, tombstoned = rows.get(part_id, (None, False))
        refs.append(PartRef(position, part_id, record, tombstoned))
    return refs


def composites_of(conn: Connection, part_ids: Sequence[str] | None) -> dict[str, list[str]]:
    """part id -> the live (not tombstoned) composites that list it, each list sorted; for
    every part when ``part_ids`` is None. Parts no live composite lists are absent."""
    query = (
        select(ArtifactPart.part_id, ArtifactPart.composite_id)
        .join(Artifact, Artifact.artifact_id == ArtifactPart.composite_id)
        .where(Artifact.deleted_at.is_(None))
        .distinct()
    )
    found: dict[str, set[str]] = {}
    batches = [None] if part_ids is None else _batches(part_ids)
    for batch in batches:
        chunk_query = query if batch is None else query.where(ArtifactPart.part_id.in_(batch))
        for part_id, composite_id in conn.execute(chunk_query):
            found.setdefault(part_id, set()).add(composite_id)
    return {part_id: sorted(ids) for part_id, ids in found.items()}


def part_ids_of(conn: Connection, composite_ids: Sequence[str] | None) -> dict[str, list[str]]:
    """composite id -> its part ids in order (live or not), for ``composite_ids`` or every
    composite; a composite with no listed part is absent."""
    query = select(ArtifactPart.composite_id, ArtifactPart.part_id).order_by(
        ArtifactPart.composite_id, ArtifactPart.position
    )
    found: dict[str, list[str]] = {}
    batches = [None] if composite_ids is None else _batches(composite_ids)
    for batch in batches:
        chunk_query = query if batch is None else query.where(ArtifactPart.composite_id.in_(batch))
        for composite_id, part_id in conn.execute(chunk_query):
            found.setdefault(composite_id, []).append(part_id)
    return found


def composite_ids(conn: Connection, ids: Sequence[str]) -> set[str]:
    """Those of ``ids`` whose row is a composite (live or tombstoned)."""
    found: set[str] = set()
    for batch in _batches(ids):
        found.update(
            conn.scalars(
                select(Artifact.artifact_id).where(
                    Artifact.artifact_id.in_(batch), Artifact.structure.is_not(None)
                )
            )
        )
    return found


def _batches(ids: Sequence[str]) -> list[Sequence[str]]:
    ordered = sorted(set(ids))
    return [ordered[start : start + _CHUNK] for start in range(0, len(ordered), _CHUNK)]
