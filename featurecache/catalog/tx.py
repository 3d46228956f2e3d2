"""What a write transaction offers the statements of a miss (``writes.publish``,
``replace.replace_entry``, ``leases``): run a statement object with parameters (its row
count), read its first row, look a key up.

Two transactions offer it: ``AlchemyTx``, SQLAlchemy's ``Connection`` on every backend, and
``prepared.DriverTx``, which runs the same statement objects on a SQLite catalog through the
``sqlite3`` driver, each compiled by SQLAlchemy once. The logic of a write (which statements,
in which order, what their row counts decide) is written once, against this protocol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy.engine import Connection
from sqlalchemy.sql import Executable

from featurecache.catalog.records import Hit, UsageEvent

Params = Mapping[str, Any] | Sequence[Mapping[str, Any]]
_COUNTED = {"preserve_rowcount": True}


class Tx(Protocol):
    """A write transaction in progress (committed or rolled back by whoever opened it)."""

    @property
    def dialect_name(self) -> str: ...

    def execute(self, statement: Executable, params: Params) -> int:
        """Run ``statement`` with one set of parameters, or once per set (a list); the row
        count (how many rows it inserted, updated or deleted)."""
        ...

    def first(self, statement: Executable, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row ``statement`` reads, as a tuple, or None."""
        ...

    def lookup(self, key_id: str) -> Hit | None:
        """``queries.lookup`` inside this transaction."""
        ...

    def record_events(self, events: Sequence[UsageEvent]) -> None:
        """``events.record_events`` inside this transaction (every ``at`` aware or None)."""
        ...


class AlchemyTx:
    """``Tx`` over a SQLAlchemy connection already inside a transaction (every backend)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @property
    def dialect_name(self) -> str:
        return self.conn.dialect.name

    def execute(self, statement: Executable, params: Params) -> int:
        if not isinstance(params, Mapping) and not params:
            # Once per set of none is no run (SQLAlchemy would run it once, unbound).
            return 0
        # SQLAlchemy 2.1 counts only an UPDATE's or DELETE's rows unless asked: on PostgreSQL
        # an INSERT's count came back -1, so an acquire that inserted said it had not.
        result = self.conn.execute(statement, params, execution_options=_COUNTED)
        return int(result.rowcount)

    def first(self, statement: Executable, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        row = self.conn.execute(statement, params).first()
        return None if row is None else tuple(row)

    def lookup(self, key_id: str) -> Hit | None:
        from featurecache.catalog.queries import lookup

        return lookup(self.conn, key_id)

    def record_events(self, events: Sequence[UsageEvent]) -> None:
        from featurecache.catalog.events import record_events

        record_events(self.conn, events)
