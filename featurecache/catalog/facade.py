"""``Catalog``: the only way the rest of featurecache talks to the catalog database.

It maps keys to artifacts, records lineage, usage and MLflow runs, and holds single-flight
leases. Every method is one short transaction, rerun whole on transient failures (busy
SQLite, PostgreSQL serialization failures and deadlocks), and returns records, never ORM
objects. Reads run in deferred transactions; writes take SQLite's write lock at BEGIN.
Thread-safe: each call checks a connection out of the engine's pool (which keeps them warm).

SQLAlchemy, and the statement modules built on it, are imported inside the methods that need
them: on a SQLite catalog at the current schema revision, opening, ``lookup`` and
``record_events`` go through the driver (``direct``), so a process that only makes hits never
imports SQLAlchemy (about 0.2 s of a fresh process). The writes of a miss (leases, publish,
replace) run there too, as SQLAlchemy's statements compiled once (``prepared``, ``_write``).
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from featurecache.catalog import direct
from featurecache.catalog.records import (
    ArtifactRecord,
    CodeVersionRecord,
    EntryRecord,
    EventKind,
    GcCandidate,
    Hit,
    LeaseRecord,
    LineageEdge,
    PublishRow,
    UsageEvent,
    is_artifact_id,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine import Connection

    from featurecache.catalog import composites
    from featurecache.catalog.aggregates import StoredTotals, UsageTotals
    from featurecache.catalog.by_feature import ClearedFeature
    from featurecache.catalog.maintenance import ArtifactState, DeletePolicy, MarkOutcome
    from featurecache.catalog.queries import ArtifactListing, ArtifactSort, RunUsage
    from featurecache.catalog.runs import RunArtifactUse
    from featurecache.catalog.tx import Tx

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = [
    "ArtifactListing",
    "ArtifactSort",
    "ArtifactState",
    "Catalog",
    "MarkOutcome",
    "RunUsage",
    "StoredTotals",
    "UsageEvent",
    "UsageTotals",
]

# The record types this module used to re-export, imported on first use (they live in modules
# that import SQLAlchemy).
_REEXPORTS = {
    "ArtifactListing": "featurecache.catalog.queries",
    "ArtifactSort": "featurecache.catalog.queries",
    "RunUsage": "featurecache.catalog.queries",
    "ArtifactState": "featurecache.catalog.maintenance",
    "MarkOutcome": "featurecache.catalog.maintenance",
    "StoredTotals": "featurecache.catalog.aggregates",
    "UsageTotals": "featurecache.catalog.aggregates",
}


def __getattr__(name: str) -> Any:
    if name in _REEXPORTS:
        import importlib

        return getattr(importlib.import_module(_REEXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _direct_for(engine: Engine) -> direct.DirectSqlite | None:
    """The driver-level hit path for an engine on a plain SQLite file, else None
    (PostgreSQL, in-memory, URI filenames such as the read-only fallback, query options)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.get_driver_name() != "pysqlite" or url.query:
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return direct.DirectSqlite(Path(database), direct.SQLITE_BUSY_TIMEOUT_MS)


class Catalog:
    """The catalog database behind a URL. Build with ``Catalog.open(url)``.

    SQLAlchemy is imported on first need, not here: a SQLite catalog at the current schema
    revision is opened, looked up and sent usage events through the driver (``direct``), so a
    process that only makes hits never imports it. Every other method opens the SQLAlchemy
    engine (``engine``) on first use."""

    def __init__(
        self,
        engine: Engine | None,
        url: str,
        *,
        direct_sqlite: direct.DirectSqlite | None = None,
        engine_options: dict[str, Any] | None = None,
    ) -> None:
        self._engine = engine
        self._engine_options = dict(engine_options or {})
        self._engine_lock = threading.Lock()
        self.url = url
        # SQLite: the hit path's statements through the driver.
        self._direct = direct_sqlite
        if self._direct is None and engine is not None:
            self._direct = _direct_for(engine)
        # Whether a lease was ever taken through this catalog: a process that never took one
        # has none to release at exit (and need not open the engine to say so).
        self._leased = False
        # When the last entry this catalog created was created (``writes.publish_rows``).
        self._created_after: datetime | None = None
        self._created_lock = threading.Lock()
        # Opened read-only because nothing could be written next to it (``open``): callers
        # take no leases and record nothing.
        self.read_only = False

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, created on first use."""
        if self._engine is None:
            with self._engine_lock:  # two threads' first writes must not make two engines
                if self._engine is None:
                    from featurecache.catalog.database import create_catalog_engine

                    self._engine = create_catalog_engine(self.url, **self._engine_options)
        return self._engine

    @classmethod
    def open(
        cls,
        url: str,
        *,
        schema: str | None = None,
        migrations: Path | None = None,
        connect_timeout_seconds: float | None = None,
    ) -> Catalog:
        """Connect to the catalog at ``url``, creating it if the database is new and refusing
        (``CatalogVersionError``) one whose schema is older or newer than this featurecache.
        ``schema``: a PostgreSQL schema to keep the catalog in; ``connect_timeout_seconds``:
        how long a PostgreSQL connect may take (``FEATURECACHE_REMOTE_TIMEOUT``)."""
        options: dict[str, Any] = {"schema": schema}
        if connect_timeout_seconds is not None:
            options["connect_timeout_seconds"] = connect_timeout_seconds
        if schema is None and migrations is None:
            opened = cls._open_direct(url, options)
            if opened is not None:
                return opened
        from featurecache.catalog.database import (
            create_catalog_engine,
            not_a_database,
            safe_url,
            unwritable_sqlite_fallback,
        )
        from featurecache.catalog.migrate import ensure_schema

        engine = create_catalog_engine(url, **options)
        try:
            ensure_schema(engine, scripts=migrations)
        except BaseException as error:
            engine.dispose()
            if (damaged := not_a_database(error, engine.url)) is not None:
                raise damaged from error
            if (read_only := unwritable_sqlite_fallback(error, engine.url)) is not None:
                log.warning(
                    "featurecache: the catalog %s cannot be opened for writing (%s); reading it "
                    "as of its last checkpoint, nothing is recorded until it can",
                    safe_url(engine.url),
                    getattr(error, "orig", error),
                )
                catalog = cls.open(read_only, migrations=migrations)
                catalog.read_only = True
                return catalog
            raise
        return cls(engine, url, engine_options=options)

    @classmethod
    def _open_direct(cls, url: str, options: dict[str, Any]) -> Catalog | None:
        """A catalog on an existing SQLite file at the current schema revision, checked
        through the driver; None when the ordinary path must open it (a new, older, newer or
        damaged database, or a URL the driver path does not take)."""
        path = direct.sqlite_path(url)
        if path is None or not path.is_file():
            return None
        opened = direct.DirectSqlite(path, direct.SQLITE_BUSY_TIMEOUT_MS)
        try:
            revision = opened.revision()
        except sqlite3.Error as error:
            log.debug("the driver could not read the schema revision (%s)", error)
            revision = None
        if revision != direct.SCHEMA_HEAD:
            opened.close()
            return None
        return cls(None, url, direct_sqlite=opened, engine_options=options)

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()
        if self._engine is not None:
            self._engine.dispose()

    def forget_after_fork(self) -> None:
        """In a forked child: give up the parent's connections without closing them (the
        driver's are made again on their own). SQLAlchemy's recipe for forked processes."""
        if self._engine is not None:
            self._engine.dispose(close=False)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        from featurecache.catalog.database import safe_url

        return f"Catalog({safe_url(self.url)!r})"

    def sqlite_file(self) -> Path | None:
        """The database file of a file-backed SQLite catalog, else None."""
        if self._direct is not None:
            return self._direct.path
        url = self.engine.url
        database = url.database if url.get_backend_name() == "sqlite" else None
        if not database or database == ":memory:":
            return None
        # A URI filename (the read-only fallback's ``file:/path?mode=ro…``): its path.
        return Path(database.removeprefix("file:"))

    def _write(self, work: Callable[[Tx], T], *, what: str, direct: bool = True) -> T:
        """``work`` in one write transaction, retried whole on transient failures. On a
        SQLite file (and ``direct``): through the driver (``prepared``), the same statements
        without SQLAlchemy's per-execution cost; any driver error, or a row the driver path
        does not convert, rolls it back and the ordinary path redoes it."""
        if direct and self._direct is not None:
            from featurecache.catalog.prepared import DriverTx, NotHandledHere

            try:
                return self._direct.write(lambda conn: work(DriverTx(conn)))
            except NotHandledHere as reason:
                log.debug("%s: %s; the ordinary path redoes it", what, reason)
            except sqlite3.Error as error:  # rolled back whole: the ordinary path redoes it
                log.debug("direct %s failed (%s); the ordinary path retries", what, error)
        from featurecache.catalog.database import run_write
        from featurecache.catalog.tx import AlchemyTx

        return run_write(self.engine, lambda conn: work(AlchemyTx(conn)), what=what)

    def now(self) -> datetime:
        """The database clock (UTC), which judges every age and expiry in the catalog."""
        from sqlalchemy import select

        from featurecache.catalog.clock import utc_now
        from featurecache.catalog.database import run_read

        value: datetime | None = run_read(
            self.engine, lambda conn: conn.scalar(select(utc_now())), what="now"
        )
        assert value is not None
        return value

    # -- keys and artifacts -------------------------------------------------------------

    def lookup(self, key_id: str) -> Hit | None:
        """The entry for ``key_id`` with its live artifact, or None (a miss). A row whose
        artifact id is malformed (not written by featurecache) is corrupt: it is dropped with
        its entries and the call misses, so the key recomputes."""
        hit = self._lookup(key_id)
        if hit is not None and not is_artifact_id(hit.artifact.artifact_id):
            log.warning(
                "catalog row of key %s names the malformed artifact id %r: dropped, recomputing",
                key_id[:12],
                hit.artifact.artifact_id,
            )
            self.drop([hit.artifact.artifact_id])
            return None
        if hit is not None and not hit.complete:
            # A part of this composite is gone (forgotten as corrupt, or collected): the
            # composite is forgotten too, never served in part; the key recomputes.
            log.warning(
                "composite artifact %s of key %s lost a part: forgotten, recomputing",
                hit.artifact.artifact_id[:12],
                key_id[:12],
            )
            self.forget_artifact(hit.artifact.artifact_id)
            return None
        return hit

    def _lookup(self, key_id: str) -> Hit | None:
        if self._direct is not None:
            try:
                found = self._direct.lookup(key_id)
            except sqlite3.Error as error:
                log.debug("direct lookup failed (%s); the ordinary path answers", error)
            else:
                if not isinstance(found, direct.NotHandled):
                    return found
        from featurecache.catalog import queries
        from featurecache.catalog.database import run_read

        return run_read(self.engine, lambda conn: queries.lookup(conn, key_id), what="lookup")

    def publish(
        self,
        entry: EntryRecord,
        artifact: ArtifactRecord,
        lineage: Sequence[LineageEdge],
        code: CodeVersionRecord,
        parts: Sequence[ArtifactRecord] = (),
    ) -> Hit:
        """Record ``artifact`` (already durable in the store) under ``entry.key_id`` in one
        transaction. If the key was published first by someone else, theirs wins and is
        returned: callers must use the returned Hit, not their own result."""
        from featurecache.catalog import writes

        row = PublishRow(entry, artifact, lineage, code, tuple(parts))
        hits, created = self._write(
            lambda tx: writes.publish_rows(tx, [row], after=self._created_after),
            what=f"publishing {entry.feature}",
            direct=not parts,
        )
        self._created(created)
        return hits[0]

    def publish_batch(
        self,
        rows: Sequence[PublishRow],
        *,
        leases: Sequence[tuple[str, str]],
        events: Sequence[UsageEvent],
    ) -> list[Hit]:
        """``publish`` of several results in one transaction, which also deletes the leases
        ``(key_id, owner)`` their owners held and records their miss ``events`` (each with the
        winning artifact, when another process published a key first). All or nothing: a
        failure (``ArtifactBeingSweptError`` for any of them) rolls every row back."""
        from featurecache.catalog import leases as lease_rows
        from featurecache.catalog import writes

        def work(tx: Tx) -> tuple[list[Hit], list[datetime]]:
            hits, created = writes.publish_rows(tx, rows, after=self._created_after)
            lease_rows.release_many(tx, leases)
            # Each miss event at its entry's creation: the calls' order, which the database
            # clock alone would not tell apart (``queries.recent_entries`` orders by them).
            tx.record_events(
                [
                    dataclasses.replace(
                        event,
                        artifact_id=hit.artifact.artifact_id,
                        at=event.at if event.at is not None else at,
                    )
                    for event, hit, at in zip(events, hits, created, strict=True)
                ]
            )
            return hits, created

        hits, created = self._write(work, what=f"publishing {len(rows)} results")
        self._created(created)
        return hits

    def _created(self, created: Sequence[datetime]) -> None:
        """Note the creation times a committed publish gave its entries: the next ones come
        after them (``writes.publish_rows``). Publishes commit on several threads."""
        with self._created_lock:
            latest = max(created, default=None)
            if latest is not None and (self._created_after is None or latest > self._created_after):
                self._created_after = latest

    def replace(
        self,
        entry: EntryRecord,
        artifact: ArtifactRecord,
        lineage: Sequence[LineageEdge],
        code: CodeVersionRecord,
        parts: Sequence[ArtifactRecord] = (),
    ) -> Hit:
        """``publish``, but ``entry`` takes the key over from the entry it held (a stale one:
        a file its body read has changed), atomically (``catalog.replace``)."""
        from featurecache.catalog.replace import replace_entry

        row = PublishRow(entry, artifact, lineage, code, tuple(parts))
        hit, created = self._write(
            lambda tx: replace_entry(tx, row, after=self._created_after),
            what=f"replacing the entry of {entry.feature}",
            direct=not parts,
        )
        self._created([created])
        return hit

    def newest_entries(self, feature: str, limit: int) -> list[EntryRecord]:
        """``feature``'s most recently created keys, newest first (at most ``limit``)."""
        from featurecache.catalog.by_feature import newest_entries
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine,
            lambda conn: newest_entries(conn, feature, limit),
            what="newest_entries",
        )

    def clear_feature(self, feature: str, *, dry_run: bool = False) -> ClearedFeature:
        """Drop every cache entry of ``feature`` (its artifacts are left to GC); with
        ``dry_run`` only count what would go."""
        from featurecache.catalog.by_feature import drop_feature
        from featurecache.catalog.database import run_read, run_write

        run = run_read if dry_run else run_write
        return run(
            self.engine,
            lambda conn: drop_feature(conn, feature, dry_run=dry_run),
            what=f"clearing {feature}",
        )

    def forget_artifact(self, artifact_id: str) -> None:
        """The store lost or corrupted it: drop its entries and tombstone it."""
        from featurecache.catalog import writes
        from featurecache.catalog.database import run_write

        run_write(
            self.engine,
            lambda conn: writes.forget_artifact(conn, artifact_id),
            what=f"forgetting artifact {artifact_id}",
        )

    def get_artifact(self, artifact_id: str) -> ArtifactRecord | None:
        from featurecache.catalog import queries
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine, lambda conn: queries.get_artifact(conn, artifact_id), what="get_artifact"
        )

    def resolve_ref(self, prefix: str) -> str:
        """A unique prefix of a live artifact id -> the full id (``ArtifactNotFoundError``,
        ``AmbiguousReferenceError``)."""
        from featurecache.catalog import queries
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine, lambda conn: queries.resolve_ref(conn, prefix), what="resolve_ref"
        )

    def list_artifacts(
        self, feature: str | None = None, sort: ArtifactSort = "created"
    ) -> list[tuple[ArtifactRecord, list[str]]]:
        """Live artifacts, newest / most recently used / largest first, each with the names
        of the features whose entries point at it."""
        from featurecache.catalog import queries
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine,
            lambda conn: queries.list_artifacts(conn, feature, sort),
            what="list_artifacts",
        )

    def artifact_listing(
        self, feature: str | None = None, sort: ArtifactSort = "created", limit: int | None = None
    ) -> tuple[int, list[ArtifactListing]]:
        """The number of live artifacts (of ``feature``) and the first ``limit`` of them (all
        when None), sorted, without their schemas: what ``featurecache ls`` shows."""
        from featurecache.catalog import queries
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine,
            lambda conn: queries.artifact_listing(conn, feature, sort, limit),
            what="artifact_listing",
        )

    def entries_for_artifact(self, artifact_id: str) -> list[EntryRecord]:
        from featurecache.catalog import queries
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine,
            lambda conn: queries.entries_for_artifact(conn, artifact_id),
            what="entries_for_artifact",
        )

    def newest_entries_for_artifacts(self, artifact_ids: Sequence[str]) -> dict[str, EntryRecord]:
        """Each artifact's newest entry, for many artifacts at once (``ls``)."""
        from featurecache.catalog import queries
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine,
            lambda conn: queries.newest_entries_for_artifacts(conn, artifact_ids),
            what="newest_entries_for_artifacts",
        )

    def recent_entries(self, feature: str, limit: int = 2) -> list[EntryRecord]:
        """The distinct keys of ``feature``'s most recent calls, newest first."""
        from featurecache.catalog import queries
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine,
            lambda conn: queries.recent_entries(conn, feature, limit),
            what="recent_entries",
        )

    def lineage_of(self, artifact_id: str) -> list[LineageEdge]:
        from featurecache.catalog import queries
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine, lambda conn: queries.lineage_of(conn, artifact_id), what="lineage_of"
        )

    def downstream_of(self, artifact_id: str) -> list[str]:
        from featurecache.catalog import queries
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine,
            lambda conn: queries.downstream_of(conn, artifact_id),
            what="downstream_of",
        )

    def set_pinned(self, artifact_id: str, pinned: bool) -> None:
        """Pin (GC never deletes it) or unpin a live artifact (``ArtifactNotFoundError``)."""
        from featurecache.catalog import writes
        from featurecache.catalog.database import run_write

        run_write(
            self.engine,
            lambda conn: writes.set_pinned(conn, artifact_id, pinned),
            what=f"pinning artifact {artifact_id}",
        )

    # -- usage --------------------------------------------------------------------------

    def record_event(
        self,
        kind: EventKind,
        *,
        key_id: str,
        feature: str,
        artifact_id: str | None,
        duration_seconds: float,
        compute_seconds: float,
        run_id: str | None = None,
    ) -> None:
        """Log one call; a hit also bumps its entry's and artifact's hits and last use."""
        event = UsageEvent(
            kind, key_id, feature, artifact_id, duration_seconds, compute_seconds, run_id
        )
        self.record_events([event])

    def record_events(self, events: Sequence[UsageEvent]) -> None:
        """Log a batch of calls in one transaction (for a background flusher)."""
        if not events:
            return
        if self._direct is not None:
            try:
                if self._direct.record_events(events):
                    return
            except sqlite3.Error as error:  # rolled back whole: the ordinary path redoes it
                log.debug("direct usage write failed (%s); the ordinary path retries", error)
        from featurecache.catalog import events as usage_rows
        from featurecache.catalog.database import run_write

        run_write(
            self.engine, lambda conn: usage_rows.record_events(conn, events), what="record_events"
        )

    def record_run_usage(
        self, run_id: str, artifact_id: str, context: str, tracking_uri: str
    ) -> None:
        from featurecache.catalog import writes
        from featurecache.catalog.database import run_write

        run_write(
            self.engine,
            lambda conn: writes.record_run_usage(conn, run_id, artifact_id, context, tracking_uri),
            what="record_run_usage",
        )

    def runs_for_artifact(self, artifact_id: str) -> list[RunUsage]:
        from featurecache.catalog import queries
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine,
            lambda conn: queries.runs_for_artifact(conn, artifact_id),
            what="runs_for_artifact",
        )

    def artifacts_of_run(self, run_id: str) -> list[RunArtifactUse]:
        """Every artifact an MLflow run used, with the entries (keys) that name it."""
        from featurecache.catalog import runs
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine,
            lambda conn: runs.artifacts_of_run(conn, run_id),
            what="artifacts_of_run",
        )

    def add_alias(self, algo: str, value: str, canonical: str) -> None:
        from featurecache.catalog import writes
        from featurecache.catalog.database import run_write

        run_write(
            self.engine,
            lambda conn: writes.add_alias(conn, algo, value, canonical),
            what="add_alias",
        )

    def lookup_alias(self, algo: str, value: str) -> str | None:
        from featurecache.catalog import queries
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine, lambda conn: queries.lookup_alias(conn, algo, value), what="lookup_alias"
        )

    # -- single-flight leases (see leases.py) -------------------------------------------

    def try_acquire_lease(self, key_id: str, owner: str, seconds: float) -> bool:
        from featurecache.catalog import leases

        self._leased = True
        return self._write(
            lambda tx: leases.try_acquire(tx, key_id, owner, seconds), what="acquiring a lease"
        )

    def take_over_lease(self, key_id: str, dead_owner: str, owner: str, seconds: float) -> bool:
        from featurecache.catalog import leases

        self._leased = True
        return self._write(
            lambda tx: leases.take_over(tx, key_id, dead_owner, owner, seconds),
            what="taking over a lease",
        )

    def renew_lease(self, key_id: str, owner: str, seconds: float) -> bool:
        from featurecache.catalog import leases

        return self._write(
            lambda tx: leases.renew(tx, key_id, owner, seconds), what="renewing a lease"
        )

    def release_lease(self, key_id: str, owner: str) -> None:
        from featurecache.catalog import leases

        self._write(lambda tx: leases.release(tx, key_id, owner), what="releasing a lease")

    def release_leases_of(self, owner_prefix: str) -> int:
        """Give up every lease held by owners ``owner_prefix…`` (one process's threads).
        Owners are made per process, so when no lease was ever taken through this catalog
        there is none to give up, and nothing is asked."""
        if not self._leased:
            return 0
        from featurecache.catalog import leases
        from featurecache.catalog.database import run_write

        return run_write(
            self.engine,
            lambda conn: leases.release_all(conn, owner_prefix),
            what="releasing a process's leases",
        )

    def get_lease(self, key_id: str) -> LeaseRecord | None:
        from featurecache.catalog import leases
        from featurecache.catalog.database import run_read

        return run_read(self.engine, lambda conn: leases.get(conn, key_id), what="get_lease")

    def expired_leases(self) -> list[LeaseRecord]:
        from featurecache.catalog import leases
        from featurecache.catalog.database import run_read

        return run_read(self.engine, leases.expired, what="expired_leases")

    def delete_expired_leases(self) -> int:
        from featurecache.catalog import leases
        from featurecache.catalog.database import run_write

        return run_write(self.engine, leases.delete_expired, what="delete_expired_leases")

    # -- maintenance: gc, verify, stats (see maintenance.py, aggregates.py) ---------------

    def code_versions(self, digests: Sequence[str]) -> list[CodeVersionRecord]:
        from featurecache.catalog import queries
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine,
            lambda conn: queries.code_versions(conn, digests),
            what="code_versions",
        )

    def gc_snapshot(self) -> tuple[datetime, list[GcCandidate]]:
        """The database clock and every live artifact as a GC candidate, read together."""
        from featurecache.catalog import maintenance
        from featurecache.catalog.database import run_read

        return run_read(self.engine, maintenance.gc_snapshot, what="gc_snapshot")

    def mark_deleted(self, planned: Sequence[GcCandidate], policy: DeletePolicy) -> MarkOutcome:
        """Tombstone ``planned`` artifacts that ``policy.recheck`` still lets go (re-read in the
        same transaction, judged by the database clock); their cache entries go too."""
        from featurecache.catalog import maintenance
        from featurecache.catalog.database import run_write

        return run_write(
            self.engine,
            lambda conn: maintenance.mark_deleted(conn, planned, policy),
            what="marking artifacts deleted",
        )

    def tombstoned(self, min_age_seconds: float = 0.0) -> list[str]:
        """Tombstoned artifact ids whose tombstone is at least ``min_age_seconds`` old."""
        from featurecache.catalog import maintenance
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine,
            lambda conn: maintenance.tombstoned(conn, min_age_seconds),
            what="tombstoned",
        )

    def claim_for_sweep(self, ids: Sequence[str]) -> list[str]:
        """Claim the still-tombstoned ones of ``ids`` for deletion (``maintenance``)."""
        from featurecache.catalog import maintenance
        from featurecache.catalog.database import run_write

        return run_write(
            self.engine,
            lambda conn: maintenance.claim_for_sweep(conn, ids),
            what="claiming artifacts for a sweep",
        )

    def release_sweep_claims(self, ids: Sequence[str]) -> None:
        from featurecache.catalog import maintenance
        from featurecache.catalog.database import run_write

        run_write(
            self.engine,
            lambda conn: maintenance.release_sweep_claims(conn, ids),
            what="releasing sweep claims",
        )

    def still_tombstoned(self, ids: Sequence[str]) -> list[str]:
        from featurecache.catalog import maintenance
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine,
            lambda conn: maintenance.still_tombstoned(conn, ids),
            what="still_tombstoned",
        )

    def purge(self, ids: Sequence[str]) -> int:
        """Delete the rows of swept (still tombstoned) artifacts; returns how many went."""
        from featurecache.catalog import maintenance
        from featurecache.catalog.database import run_write

        return run_write(
            self.engine, lambda conn: maintenance.purge(conn, ids), what="purging artifacts"
        )

    def drop(self, ids: Sequence[str]) -> int:
        """Delete artifact rows (live or not) and their entries: the store lost the files."""
        from featurecache.catalog import maintenance
        from featurecache.catalog.database import run_write

        return run_write(
            self.engine, lambda conn: maintenance.drop(conn, ids), what="dropping artifacts"
        )

    def artifact_states(self, ids: Sequence[str] | None = None) -> list[ArtifactState]:
        """Every artifact row (or those of ``ids``), tombstoned ones included."""
        from featurecache.catalog import maintenance
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine,
            lambda conn: maintenance.artifact_states(conn, ids),
            what="artifact_states",
        )

    # -- composite results: reads for the maintenance tools (see composites.py) ----------

    def parts_listing(self, composite_id: str) -> list[composites.PartRef]:
        """Every part ``composite_id`` lists, in order, with its row as it is now."""
        from featurecache.catalog import composites
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine,
            lambda conn: composites.parts_listing(conn, composite_id),
            what="parts_listing",
        )

    def composites_of(self, part_ids: Sequence[str] | None = None) -> dict[str, list[str]]:
        """part id -> the live composites listing it (every part when ``part_ids`` is None)."""
        from featurecache.catalog import composites
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine,
            lambda conn: composites.composites_of(conn, part_ids),
            what="composites_of",
        )

    def composite_ids(self, ids: Sequence[str]) -> set[str]:
        """Those of ``ids`` whose row is a composite (it has no file in the store)."""
        from featurecache.catalog import composites
        from featurecache.catalog.database import run_read

        return run_read(
            self.engine, lambda conn: composites.composite_ids(conn, ids), what="composite_ids"
        )

    def usage_stats(self) -> tuple[list[str], list[UsageTotals], list[StoredTotals], StoredTotals]:
        """Feature names, calls per feature, storage per feature and storage in total, read
        in one transaction so they agree."""
        from featurecache.catalog import aggregates
        from featurecache.catalog.database import run_read

        def read(
            conn: Connection,
        ) -> tuple[list[str], list[UsageTotals], list[StoredTotals], StoredTotals]:
            return (
                aggregates.feature_names(conn),
                aggregates.usage_by_feature(conn),
                aggregates.stored_by_feature(conn),
                aggregates.stored_total(conn),
            )

        return run_read(self.engine, read, what="usage_stats")
