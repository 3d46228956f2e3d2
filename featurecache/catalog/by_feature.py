"""A feature's entries as a whole: its newest keys (what a miss is compared with, for its log
line) and dropping every entry of it (``Feature.clear()``, ``featurecache clear``).

Dropping entries leaves the artifacts: other keys may share them, and GC collects the ones
that stay unused (a feature's artifacts with no entry left are outside every ``--keep-last``
floor). Usage history and code versions stay too: they are history, not cache state.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from featurecache.catalog.models import CacheEntry, Feature
from featurecache.catalog.queries import ENTRY_COLUMNS, entry_from_row
from featurecache.catalog.records import EntryRecord


@dataclass(frozen=True)
class ClearedFeature:
    """What dropping a feature's entries did (or, ``dry_run``, would do)."""

    feature: str
    entries: int  # cache entries (keys) of the feature
    artifacts: int  # distinct artifacts those entries pointed at
    unreferenced: int  # of which no entry of another feature points at: left for GC
    dry_run: bool = False
    known: bool = True  # the catalog has ever recorded the feature (False: a typo?)

    def to_json(self) -> dict[str, object]:
        return {
            "feature": self.feature,
            "entries": self.entries,
            "artifacts": self.artifacts,
            "unreferenced_artifacts": self.unreferenced,
            "dry_run": self.dry_run,
            "known": self.known,
        }


def newest_entries(conn: Connection, feature: str, limit: int) -> list[EntryRecord]:
    """``feature``'s most recently created keys, newest first: one indexed query, bounded by
    ``limit`` (no usage history is read)."""
    rows = conn.execute(
        select(*ENTRY_COLUMNS)
        .where(CacheEntry.feature == feature)
        .order_by(CacheEntry.created_at.desc(), CacheEntry.key_id)
        .limit(limit)
    )
    return [entry_from_row(row) for row in rows]


def drop_feature(conn: Connection, feature: str, *, dry_run: bool = False) -> ClearedFeature:
    """Delete every cache entry of ``feature`` (in the caller's write transaction), counting
    what goes and which artifacts no other feature's entry still names."""
    artifact_ids = set(
        conn.scalars(select(CacheEntry.artifact_id).where(CacheEntry.feature == feature))
    )
    entries = conn.scalar(
        select(func.count()).select_from(CacheEntry).where(CacheEntry.feature == feature)
    )
    shared: set[str] = set()
    if artifact_ids:
        shared = set(
            conn.scalars(
                select(CacheEntry.artifact_id)
                .where(CacheEntry.artifact_id.in_(artifact_ids), CacheEntry.feature != feature)
                .distinct()
            )
        )
    if not dry_run and entries:
        conn.execute(delete(CacheEntry).where(CacheEntry.feature == feature))
    known = bool(entries) or conn.scalar(select(Feature.name).where(Feature.name == feature))
    return ClearedFeature(
        feature=feature,
        entries=int(entries or 0),
        artifacts=len(artifact_ids),
        unreferenced=len(artifact_ids - shared),
        dry_run=dry_run,
        known=bool(known),
    )
