"""``INSERT … ON CONFLICT`` for both catalog dialects: publish-if-absent is the catalog's
correctness mechanism (the first writer of a row wins, later ones change nothing).
``conn``: a connection, or the name of its dialect (statements built once per dialect)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.dml import Insert

from featurecache.catalog.models import Base

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite


def _insert(conn: Connection | str, table: type[Base]) -> postgresql.Insert | sqlite.Insert:
    # Each dialect's module is imported by the catalog that uses it: the PostgreSQL one costs
    # a SQLite process 25-58 ms.
    dialect = conn if isinstance(conn, str) else conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def insert_if_absent(conn: Connection | str, table: type[Base], conflict: Sequence[str]) -> Insert:
    """An INSERT that does nothing when a row with the same ``conflict`` key exists."""
    return _insert(conn, table).on_conflict_do_nothing(index_elements=list(conflict))


def insert_or_update_where(
    conn: Connection | str,
    table: type[Base],
    conflict: Sequence[str],
    *,
    update: Sequence[str],
    where: ColumnElement[bool],
    extra: Mapping[str, Any] | None = None,
) -> Insert:
    """An INSERT that, on conflict, overwrites ``update`` columns with the new values (plus
    ``extra`` assignments) only where ``where`` holds for the existing row."""
    statement = _insert(conn, table)
    assignments: dict[str, Any] = {name: statement.excluded[name] for name in update}
    assignments.update(extra or {})
    return statement.on_conflict_do_update(
        index_elements=list(conflict), set_=assignments, where=where
    )
