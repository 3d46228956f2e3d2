"""The writes of a miss on a SQLite catalog, run through the ``sqlite3`` driver.

A tiny miss spent about 1 ms in the catalog's three write transactions (lease, publish,
release), five sixths of it in SQLAlchemy's per-execution machinery (connection checkout,
events, parameter processing, result set-up) around statements that SQLite runs in tens of
microseconds. ``DriverTx`` runs the very statement objects of ``writes`` and ``leases``, each
compiled by SQLAlchemy for SQLite once (``prepare``), on ``DirectSqlite``'s writer
connection: the SQL text and the conversion of every parameter (JSON, booleans, floats) are
SQLAlchemy's own, only their execution is not. ``tests/catalog/test_prepared.py`` checks that
both paths write the same rows.

Only what SQLite's driver runs as SQLAlchemy would is taken: positional (``qmark``)
parameters, no expanding (``IN``) or literal-execute parameters (``prepare`` refuses them).
A lookup whose entry ``direct`` does not convert (a composite) raises ``NotHandledHere``:
the transaction rolls back and the ordinary path redoes it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from featurecache.catalog.direct import NotHandled, insert_events, lookup_in
from featurecache.catalog.records import Hit, UsageEvent
from featurecache.catalog.tx import Params

# Compiles as ``create_catalog_engine``'s SQLite engines do (no options change the SQL text or
# the parameter conversions of these statements; the tests compare the rows written).
_DIALECT = SQLiteDialect_pysqlite()


class NotHandledHere(Exception):
    """The driver path cannot answer this write: roll back, the ordinary path redoes it."""


@dataclass(frozen=True)
class Prepared:
    """A statement compiled for SQLite: its SQL and, per ``?``, where the value comes from
    (the caller's parameter of that name, else the statement's own literal) and how it is
    converted for the driver."""

    sql: str
    sources: tuple[tuple[str | None, Any, Callable[[Any], Any] | None], ...]

    def args(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        values = []
        for name, literal, process in self.sources:
            value = literal if name is None else params[name]
            values.append(value if process is None else process(value))
        return tuple(values)


def prepare(statement: Executable, keys: Sequence[str], many: bool = False) -> Prepared:
    """Compile ``statement`` for SQLite as ``Connection.execute`` does for parameters with
    ``keys`` (once per set of parameters when ``many``)."""
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=_DIALECT, column_keys=list(keys), for_executemany=many)
    assert isinstance(compiled, SQLCompiler)
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise NotImplementedError(
            f"cannot prepare a statement with expanding parameters: {compiled}"
        )
    names = compiled.positiontup or []
    given = set(keys)
    sources = []
    for name in names:
        bind = compiled.binds[name]
        source = bind.key if bind.key in given else name if name in given else None
        if source is None and bind.required:
            raise KeyError(f"statement parameter {bind.key!r} has no value: {compiled}")
        process = bind.type.dialect_impl(_DIALECT).bind_processor(_DIALECT)
        literal = None
        if source is None:
            literal = bind.effective_value
            if bind.callable is None and process is not None:  # a constant: converted once
                literal, process = process(literal), None
        sources.append((source, literal, process))
    return Prepared(str(compiled), tuple(sources))


_PREPARED: dict[tuple[Executable, tuple[str, ...], bool], Prepared] = {}


def prepared(statement: Executable, keys: Sequence[str], many: bool = False) -> Prepared:
    """``prepare``, once per statement object and set of parameter names (statements are
    built once, at module level or per dialect, so this holds a handful)."""
    cache_key = (statement, tuple(sorted(keys)), many)
    found = _PREPARED.get(cache_key)
    if found is None:
        found = _PREPARED[cache_key] = prepare(statement, cache_key[1], many)
    return found


class DriverTx:
    """``tx.Tx`` on a ``sqlite3`` connection inside a write transaction."""

    dialect_name = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, statement: Executable, params: Params) -> int:
        if isinstance(params, Mapping):
            one = prepared(statement, list(params))
            return self.conn.execute(one.sql, one.args(params)).rowcount
        if not params:
            return 0
        many = prepared(statement, list(params[0]), len(params) > 1)
        return self.conn.executemany(many.sql, [many.args(p) for p in params]).rowcount

    def first(self, statement: Executable, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        one = prepared(statement, list(params))
        row = self.conn.execute(one.sql, one.args(params)).fetchone()
        return None if row is None else tuple(row)

    def lookup(self, key_id: str) -> Hit | None:
        found = lookup_in(self.conn, key_id)
        if isinstance(found, NotHandled):
            raise NotHandledHere(f"the entry of key {key_id} is not for the driver path")
        return found

    def record_events(self, events: Sequence[UsageEvent]) -> None:
        insert_events(self.conn, events)
