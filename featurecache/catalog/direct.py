"""The hit path of a SQLite catalog straight through the ``sqlite3`` driver: no SQLAlchemy.

A fresh process that makes one hit spent about a fifth of a second importing SQLAlchemy, for
three statements: the schema revision check at open, the lookup, and the usage events written
at exit. ``DirectSqlite`` runs exactly those, with the connection settings of
``database._sqlite_engine`` (busy timeout, WAL, ``synchronous=NORMAL``, foreign keys, our own
``BEGIN``), the SQL that SQLAlchemy compiles for them (``tests/catalog/test_direct.py`` checks
the text and the rows against the ordinary path) and the result conversions SQLAlchemy applies
(JSON text, UTC timestamps, booleans). Everything else, and anything out of the ordinary, is
left to the ordinary path, which ``Catalog`` opens on first need:

* ``revision`` answers the schema check only when the catalog is exactly at ``SCHEMA_HEAD``;
  a new, older, newer or foreign database is judged (created, refused) by ``migrate``;
* ``lookup`` answers single-artifact entries; a composite (whose parts are read in the same
  transaction), or a row whose values are not as featurecache stores them, is ``NOT_HANDLED``.
  The hits of rows read lately are kept, by the whole row, so that a repeated hit does not
  parse the same JSON and timestamps again;
* any ``sqlite3.Error`` is raised for the caller to redo the work on the ordinary path, which
  retries transient failures and names the problem. A write that failed was rolled back
  whole, so redoing it records nothing twice.

``write`` also runs the writes of a miss (lease, publish, release) in one transaction on the
writer connection: their statements are SQLAlchemy's, compiled once (``prepared``, which
imports SQLAlchemy; this module never does).

Only plain file URLs (``sqlite:///path``) qualify (``sqlite_path``); URI filenames, query
options and in-memory databases take the ordinary path. Thread-safe: one connection for reads
and one for writes, each behind a lock, made again in a forked child (whose parent's
connections are never touched: SQLite forbids carrying a connection across ``fork``).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from featurecache.catalog.records import ArtifactRecord, EntryRecord, Hit, UsageEvent

# The exact statements SQLAlchemy compiles for ``queries.LOOKUP``, ``clock.utc_now()`` and
# ``events.record_events`` on SQLite (the tests compare them).
NOW = "(strftime('%Y-%m-%d %H:%M:%f', 'now') || '000')"
LOOKUP = (
    "SELECT cache_entries.key_id, cache_entries.feature, cache_entries.code_digest, "
    "cache_entries.artifact_id, cache_entries.return_kind, cache_entries.components, "
    "cache_entries.created_at, artifacts.artifact_id AS artifact_id_1, artifacts.uri, "
    "artifacts.rows, artifacts.columns, artifacts.schema, artifacts.size_bytes, "
    "artifacts.file_hash, artifacts.compute_seconds, artifacts.created_at AS created_at_1, "
    "artifacts.last_used_at, artifacts.hits, artifacts.pinned, artifacts.structure \n"
    "FROM cache_entries JOIN artifacts ON artifacts.artifact_id = cache_entries.artifact_id \n"
    "WHERE cache_entries.key_id = ? AND artifacts.deleted_at IS NULL"
)
INSERT_EVENT = (
    "INSERT INTO usage_events (at, feature, key_id, artifact_id, kind, duration_seconds, "
    "compute_seconds, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
BUMP_ENTRY = (
    f"UPDATE cache_entries SET last_used_at={NOW}, hits=(cache_entries.hits + ?) "
    "WHERE cache_entries.key_id = ?"
)
BUMP_ARTIFACT = (
    f"UPDATE artifacts SET last_used_at={NOW}, hits=(artifacts.hits + ?) "
    "WHERE artifacts.artifact_id = ?"
)
REVISION = "SELECT version_num FROM alembic_version"

SQLITE_BUSY_TIMEOUT_MS = 30_000
# The newest revision under migrations/versions, kept here so that opening a catalog that is
# already current imports neither Alembic nor SQLAlchemy (``migrate`` uses it too); a test
# checks it against the scripts.
SCHEMA_HEAD = "0002"

T = TypeVar("T")
# How many parsed lookup rows a catalog keeps (``DirectSqlite._parsed``).
_PARSED_KEPT = 256

_SQLITE_URL = re.compile(r"sqlite(?:\+pysqlite)?:///(?P<database>[^?#%]+)")
# Connections a forked child inherited: kept referenced so they are never closed (closing
# one could checkpoint or unlock on the parent's behalf).
_INHERITED: list[sqlite3.Connection] = []


class NotHandled:
    """What ``lookup`` returns when the ordinary path must answer (a composite entry)."""


NOT_HANDLED = NotHandled()


def sqlite_path(url: str) -> Path | None:
    """The database file of a plain ``sqlite:///path`` URL (``~`` expanded, as the ordinary
    path does), else None: URI filenames, query options, escapes and in-memory databases go
    the ordinary way."""
    match = _SQLITE_URL.fullmatch(url)
    if match is None:
        return None
    database = match["database"]
    if database.startswith("file:") or database == ":memory:":
        return None
    return Path(database).expanduser()


def _timestamp(value: Any) -> datetime | None:
    """A stored UTC timestamp ('YYYY-MM-DD HH:MM:SS.ffffff') as an aware datetime."""
    if value is None:
        return None
    # A datetime: not stored by featurecache, but SQLAlchemy would take it too.
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _json(value: Any) -> Any:
    return None if value is None else json.loads(value)


def _aware(value: datetime | None) -> bool:
    return value is None or (value.tzinfo is not None and value.utcoffset() is not None)


def _stored_time(value: datetime) -> str:
    """How SQLAlchemy binds an aware datetime on SQLite (``models.UTCDateTime``)."""
    value = value.astimezone(UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
    )


def _entry(row: Sequence[Any]) -> EntryRecord:
    created_at = _timestamp(row[6])
    assert created_at is not None
    return EntryRecord(
        key_id=row[0],
        feature=row[1],
        code_digest=row[2],
        artifact_id=row[3],
        return_kind=row[4],
        components=_json(row[5]),
        created_at=created_at,
    )


def _artifact(row: Sequence[Any]) -> ArtifactRecord:
    created_at, last_used_at = _timestamp(row[8]), _timestamp(row[9])
    assert created_at is not None and last_used_at is not None
    return ArtifactRecord(
        artifact_id=row[0],
        uri=row[1],
        rows=row[2],
        columns=row[3],
        schema=_json(row[4]),
        size_bytes=row[5],
        file_hash=row[6],
        compute_seconds=row[7],
        created_at=created_at,
        last_used_at=last_used_at,
        hits=row[10],
        pinned=bool(row[11]),
        structure=_json(row[12]),
    )


def lookup_in(
    conn: sqlite3.Connection, key_id: str, parsed: dict[tuple[Any, ...], Hit] | None = None
) -> Hit | NotHandled | None:
    """``DirectSqlite.lookup`` on ``conn``, in whatever transaction it is in. ``parsed``: the
    hits of rows parsed before, by the whole row; an unchanged row gives the same ``Hit``."""
    row = conn.execute(LOOKUP, (key_id,)).fetchone()
    if row is None:
        return None
    if row[-1] is not None:
        return NOT_HANDLED
    row = tuple(row)  # sqlite3's rows are tuples of str, bytes, int, float and None
    hit = None if parsed is None else parsed.get(row)
    if hit is not None:
        return hit
    try:
        hit = Hit(_entry(row[:7]), _artifact(row[7:]))
    except (ValueError, TypeError):  # not as featurecache stores it: the ordinary path
        return NOT_HANDLED  # converts (or refuses) it as it always did
    if parsed is not None:
        if len(parsed) >= _PARSED_KEPT:
            parsed.clear()
        parsed[row] = hit
    return hit


class _Connection:
    """One lazily made connection behind a lock, made again in a forked child."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()

    def __enter__(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            if self._conn is not None:
                _INHERITED.append(self._conn)
            self._conn, self._pid, self._lock = None, os.getpid(), threading.Lock()
        self._lock.acquire()
        try:
            if self._conn is None:
                self._conn = self._connect()
        except BaseException:
            self._lock.release()
            raise
        return self._conn

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


class DirectSqlite:
    """Schema check, lookup and usage events of one SQLite catalog file, through the driver."""

    def __init__(self, path: Path, busy_timeout_ms: int) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._reader = _Connection(self._connect)
        self._writer = _Connection(self._connect)
        # Rows ``lookup`` read lately, as read (every column), with the hit parsed from each:
        # a repeated hit on an unchanged row skips parsing its JSON and timestamps (most of
        # what a lookup costs). A pure function of the row: any change to it (a usage flush
        # bumps its ``hits``) is a new row, parsed afresh. Bounded: forgotten whole when full.
        self._parsed: dict[tuple[Any, ...], Hit] = {}

    def _connect(self) -> sqlite3.Connection:
        # The settings of ``database._sqlite_engine``'s connect hook, in the same order.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            mode = conn.execute("PRAGMA journal_mode").fetchone()
            if mode and str(mode[0]).lower() not in ("wal", "memory"):
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def revision(self) -> str | None:
        """The catalog's one recorded schema revision; None when it records none or several
        (the ordinary path judges those). Raises ``sqlite3.Error`` (no such table: a new
        database) for the ordinary path to handle."""
        with self._reader as conn:
            rows = conn.execute(REVISION).fetchall()
        return str(rows[0][0]) if len(rows) == 1 else None

    def lookup(self, key_id: str) -> Hit | NotHandled | None:
        """The hit for ``key_id`` (None: a miss), or ``NOT_HANDLED`` (a composite). One
        ``SELECT`` in autocommit mode reads one consistent snapshot. A row read before and
        unchanged since gives the very ``Hit`` it gave then (records are frozen; nothing in
        featurecache changes the JSON values they hold, and listeners get copies)."""
        with self._reader as conn:
            return lookup_in(conn, key_id, self._parsed)

    def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(conn)`` in one write transaction (``BEGIN IMMEDIATE``) on the writer
        connection, committed if it returns, rolled back whole if anything is raised (which
        is raised again): redoing it on the ordinary path then records nothing twice."""
        with self._writer as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return result

    def record_events(self, events: Sequence[UsageEvent]) -> bool:
        """``events.record_events`` in one write transaction (``BEGIN IMMEDIATE``), rolled
        back whole on any error, which is raised. False (nothing written): a naive ``at``,
        which the ordinary path refuses with its own error."""
        if not all(_aware(event.at) for event in events):
            return False
        self.write(lambda conn: insert_events(conn, events))
        return True

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


def insert_events(conn: sqlite3.Connection, events: Sequence[UsageEvent]) -> None:
    """``events.record_events`` on a connection inside a write transaction; every ``at`` is
    aware or None (``DirectSqlite.record_events`` checks)."""
    hits = [event for event in events if event.kind == "hit"]
    by_key: dict[str, int] = {}
    by_artifact: dict[str, int] = {}
    for event in hits:
        by_key[event.key_id] = by_key.get(event.key_id, 0) + 1
        if event.artifact_id:
            by_artifact[event.artifact_id] = by_artifact.get(event.artifact_id, 0) + 1
    now = None
    if any(event.at is None for event in events):
        # Already in the stored format: what binding the parsed value gives.
        now = conn.execute(f"SELECT {NOW}").fetchone()[0]
    conn.executemany(
        INSERT_EVENT,
        [
            (
                now if event.at is None else _stored_time(event.at),
                event.feature,
                event.key_id,
                event.artifact_id,
                event.kind,
                event.duration_seconds,
                event.compute_seconds,
                event.run_id,
            )
            for event in events
        ],
    )
    # Sorted: concurrent flushes touch rows in the same order (``writes._bump``).
    for statement, counts in ((BUMP_ENTRY, by_key), (BUMP_ARTIFACT, by_artifact)):
        if counts:
            conn.executemany(statement, [(n, i) for i, n in sorted(counts.items())])
