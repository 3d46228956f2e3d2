"""Aggregates behind ``featurecache stats``: calls from the usage log, storage from the live
artifacts, per feature and in total.

A hit's usage event carries the stored compute time of the artifact it served, so summing
``compute_seconds`` over hits is the preprocessing time the cache avoided. Storage counts each
live artifact once per feature pointing at it, and once in the total (identical outputs of
different features share one file).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection

from featurecache.catalog.models import Artifact, CacheEntry, Feature, UsageEventRow
from featurecache.catalog.queries import only_a_part


@dataclass(frozen=True)
class UsageTotals:
    """Calls of one feature (or, with ``feature`` None, of all)."""

    feature: str | None
    hits: int = 0
    misses: int = 0
    seconds_avoided: float = 0.0  # stored compute time of every hit
    compute_seconds: float = 0.0  # time spent computing on misses


@dataclass(frozen=True)
class StoredTotals:
    """Live artifacts of one feature (or, with ``feature`` None, of the whole cache)."""

    feature: str | None
    artifacts: int = 0
    size_bytes: int = 0
    compute_seconds: float = 0.0  # what producing them cost


def feature_names(conn: Connection) -> list[str]:
    """Every feature ever published or called, sorted."""
    published = set(conn.scalars(select(Feature.name)))
    called = set(conn.scalars(select(UsageEventRow.feature).distinct()))
    return sorted(published | called)


def usage_by_feature(conn: Connection) -> list[UsageTotals]:
    rows = conn.execute(
        select(
            UsageEventRow.feature,
            UsageEventRow.kind,
            func.count(),
            func.coalesce(func.sum(UsageEventRow.compute_seconds), 0.0),
        ).group_by(UsageEventRow.feature, UsageEventRow.kind)
    )
    found: dict[str, dict[str, tuple[int, float]]] = {}
    for feature, kind, count, seconds in rows:
        found.setdefault(feature, {})[kind] = (int(count), float(seconds))
    totals = []
    for feature in sorted(found):
        hits, avoided = found[feature].get("hit", (0, 0.0))
        misses, spent = found[feature].get("miss", (0, 0.0))
        totals.append(UsageTotals(feature, hits, misses, avoided, spent))
    return totals


def stored_by_feature(conn: Connection) -> list[StoredTotals]:
    pairs = select(CacheEntry.feature, CacheEntry.artifact_id).distinct().subquery()
    rows = conn.execute(
        select(
            pairs.c.feature,
            func.count(),
            func.coalesce(func.sum(Artifact.size_bytes), 0),
            func.coalesce(func.sum(Artifact.compute_seconds), 0.0),
        )
        .join(Artifact, Artifact.artifact_id == pairs.c.artifact_id)
        .where(Artifact.deleted_at.is_(None))
        .group_by(pairs.c.feature)
        .order_by(pairs.c.feature)
    )
    return [
        StoredTotals(feature, int(count), int(size), float(seconds))
        for feature, count, size, seconds in rows
    ]


def stored_total(conn: Connection) -> StoredTotals:
    # Composite results: a part no entry points at is not a result of its own (not counted;
    # its compute time is its composite's), and bytes are the store's files (a composite's
    # row has none: its size is its parts').
    result = ~only_a_part()
    row = conn.execute(
        select(
            func.coalesce(func.sum(case((result, 1), else_=0)), 0),
            func.coalesce(
                func.sum(case((Artifact.structure.is_(None), Artifact.size_bytes), else_=0)), 0
            ),
            func.coalesce(func.sum(case((result, Artifact.compute_seconds), else_=0.0)), 0.0),
        ).where(Artifact.deleted_at.is_(None))
    ).one()
    return StoredTotals(None, int(row[0]), int(row[1]), float(row[2]))
