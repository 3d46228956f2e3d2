"""The hit path's catalog read on SQLite, straight through the driver.

A hit on a tiny frame is a few hundred microseconds of work, and SQLAlchemy's execution
machinery (pool checkout, ``BEGIN`` event, compiled-cache lookup, result wrapping, ``COMMIT``)
was about 70 µs of it. ``FastLookup`` runs the very statement ``queries.LOOKUP`` compiles to,
on a connection of the same pool (``raw_connection``: the same ``connect`` settings: busy
timeout, WAL, transaction control), and converts the row with the result processors SQLAlchemy
would apply (JSON, UTC timestamps, booleans), so it returns the same ``Hit`` record.

One ``SELECT`` in autocommit mode reads one consistent snapshot, as the deferred read
transaction did. Composite entries (whose parts need more queries in the same snapshot) and
any driver error are left to the ordinary path (``Catalog.lookup`` falls back), which retries
transient failures and names the problem.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.sql.expression import ColumnClause

from featurecache.catalog import queries
from featurecache.catalog.records import Hit


class NotHandled:
    """What ``lookup`` returns when the ordinary path must answer (a composite entry)."""


NOT_HANDLED = NotHandled()


class FastLookup:
    """``queries.lookup`` for a SQLite engine, without SQLAlchemy's execution layer."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect
        compiled = queries.LOOKUP.compile(dialect=dialect)
        self.sql = compiled.string
        if list(compiled.positiontup or []) != ["key_id"]:
            raise ValueError("the lookup statement takes exactly the key id")
        columns: list[ColumnClause[Any]] = [*queries.ENTRY_COLUMNS, *queries.ARTIFACT_COLUMNS]
        self.processors: list[Callable[[Any], Any] | None] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        self.structure_at = len(columns) - 1

    def lookup(self, key_id: str) -> Hit | NotHandled | None:
        """The hit for ``key_id`` (None: a miss), or ``NOT_HANDLED``. Raises
        ``sqlite3.Error`` for the caller to retry on the ordinary path."""
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self.sql, (key_id,))
                raw = cursor.fetchone()
            finally:
                cursor.close()
        finally:
            connection.close()
        if raw is None:
            return None
        if raw[self.structure_at] is not None:
            return NOT_HANDLED  # a composite: its parts are read in the same transaction
        row = tuple(
            value if process is None or value is None else process(value)
            for process, value in zip(self.processors, raw, strict=True)
        )
        offset = len(queries.ENTRY_COLUMNS)
        return Hit(queries.entry_from_row(row), queries.artifact_from_row(row, offset))


def fast_lookup_for(engine: Engine) -> FastLookup | None:
    """A ``FastLookup`` for a file-backed SQLite engine, else None (PostgreSQL, in-memory)."""
    if engine.dialect.name != "sqlite" or engine.dialect.driver != "pysqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    try:
        return FastLookup(engine)
    except (ValueError, sqlite3.Error):
        return None
