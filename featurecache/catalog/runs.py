"""What one MLflow run used, as the catalog recorded it: the artifacts its features resolved
to inside the run (``run_usages``) and the cache entries (keys, code digests) that name them.
Read by ``featurecache check-serving``, which compares that code with the code served now."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from featurecache.catalog.models import CacheEntry, RunUsageRow
from featurecache.catalog.queries import (
    ENTRY_COLUMNS,
    RUN_USAGE_COLUMNS,
    RunUsage,
    entry_from_row,
)
from featurecache.catalog.records import EntryRecord


@dataclass(frozen=True)
class RunArtifactUse:
    """One artifact a run used, with every entry (key) that resolves to it, newest first.
    ``entries`` is empty once GC has collected the artifact (its entries go with it)."""

    usage: RunUsage
    entries: tuple[EntryRecord, ...]


def artifacts_of_run(conn: Connection, run_id: str) -> list[RunArtifactUse]:
    """Every artifact ``run_id`` used (one item per artifact and context), oldest use first."""
    usages = [
        RunUsage(*row)
        for row in conn.execute(
            select(*RUN_USAGE_COLUMNS)
            .where(RunUsageRow.run_id == run_id)
            .order_by(RunUsageRow.at, RunUsageRow.artifact_id, RunUsageRow.context)
        )
    ]
    ids = sorted({usage.artifact_id for usage in usages})
    entries: dict[str, list[EntryRecord]] = {artifact_id: [] for artifact_id in ids}
    if ids:
        rows = conn.execute(
            select(*ENTRY_COLUMNS)
            .where(CacheEntry.artifact_id.in_(ids))
            .order_by(CacheEntry.created_at.desc(), CacheEntry.key_id)
        )
        for row in rows:
            entry = entry_from_row(row)
            entries[entry.artifact_id].append(entry)
    return [RunArtifactUse(usage, tuple(entries[usage.artifact_id])) for usage in usages]
