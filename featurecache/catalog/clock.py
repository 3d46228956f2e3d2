"""The database clock, as SQL expressions: ``utc_now()`` and ``utc_now_plus(seconds)``.

Every time the catalog writes (creation, use, lease expiry) and every age it compares comes
from the database server, never from the client: hosts sharing a PostgreSQL catalog may
disagree about the time, the server does not disagree with itself.

SQLite renders the time as UTC text in exactly the format ``models.UTCDateTime`` stores
(microseconds, zero-padded), so database-made and client-made values compare as text.
SQLite evaluates 'now' once per statement, so two clock expressions in one statement agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from featurecache.catalog.models import UTCDateTime

_SQLITE_FORMAT = "'%Y-%m-%d %H:%M:%f'"  # %f = SS.SSS; '000' pads it to microseconds


class utc_now(FunctionElement[datetime]):
    """The database's current UTC time (lower case: it reads as the SQL function it is)."""

    type = UTCDateTime()
    inherit_cache = True
    name = "utc_now"


class utc_now_plus(FunctionElement[datetime]):
    """The database's current UTC time plus a (fractional) number of seconds."""

    type = UTCDateTime()
    inherit_cache = True
    name = "utc_now_plus"

    def __init__(self, seconds: float | ColumnElement[float]) -> None:
        # A bound parameter (``bindparam("seconds", type_=Float)``) lets a statement built once
        # take its duration at execution.
        if isinstance(seconds, ColumnElement):
            super().__init__(seconds)
        else:
            super().__init__(literal(float(seconds), Float()))


@compiles(utc_now, "sqlite")
def _sqlite_now(element: utc_now, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(strftime({_SQLITE_FORMAT}, 'now') || '000')"


@compiles(utc_now_plus, "sqlite")
def _sqlite_now_plus(element: utc_now_plus, compiler: SQLCompiler, **kw: Any) -> str:
    seconds = compiler.process(element.clauses, **kw)
    return f"(strftime({_SQLITE_FORMAT}, 'now', printf('%+.6f seconds', {seconds})) || '000')"


@compiles(utc_now)
def _default_now(element: utc_now, compiler: SQLCompiler, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(utc_now_plus)
def _default_now_plus(element: utc_now_plus, compiler: SQLCompiler, **kw: Any) -> str:
    seconds = compiler.process(element.clauses, **kw)
    return f"(CURRENT_TIMESTAMP + ({seconds}) * INTERVAL '1 second')"
