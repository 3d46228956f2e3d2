"""Usage events written through SQLAlchemy (every backend): a call's hit or miss appended,
and a hit's counters bumped. ``direct.insert_events`` writes the same rows on SQLite through
the driver (the tests compare them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from featurecache.catalog.clock import utc_now
from featurecache.catalog.models import Artifact, CacheEntry, UsageEventRow
from featurecache.catalog.records import UsageEvent


def record_events(conn: Connection, events: Sequence[UsageEvent]) -> None:
    """Append usage events; a hit also bumps ``hits`` and ``last_used_at`` (database clock)
    of its entry and artifact, once per key with the hits added up."""
    if not events:
        return
    now = None
    if any(event.at is None for event in events):
        now = conn.scalar(select(utc_now()))
    conn.execute(
        insert(UsageEventRow),
        [
            {
                "at": event.at or now,
                "feature": event.feature,
                "key_id": event.key_id,
                "artifact_id": event.artifact_id,
                "kind": event.kind,
                "duration_seconds": event.duration_seconds,
                "compute_seconds": event.compute_seconds,
                "run_id": event.run_id,
            }
            for event in events
        ],
    )
    hits = [event for event in events if event.kind == "hit"]
    by_key = Counter(event.key_id for event in hits)
    by_artifact = Counter(event.artifact_id for event in hits if event.artifact_id)
    _bump(conn, CacheEntry, CacheEntry.key_id, by_key)
    _bump(conn, Artifact, Artifact.artifact_id, by_artifact)


def _bump(conn: Connection, model: Any, column: Any, counts: Counter[str]) -> None:
    if not counts:
        return
    # Sorted: concurrent flushes touch rows in the same order, so they cannot deadlock.
    conn.execute(
        update(model)
        .where(column == bindparam("row_id"))
        .values(hits=model.hits + bindparam("n"), last_used_at=utc_now()),
        [{"row_id": row_id, "n": n} for row_id, n in sorted(counts.items())],
    )
