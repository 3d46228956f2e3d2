"""Engines for the catalog database, its transactions, and retrying transient failures.

SQLite (one host): WAL journal, ``busy_timeout``, ``synchronous=NORMAL``, foreign keys on, and
SQLAlchemy's documented recipe for taking ``BEGIN`` away from the ``sqlite3`` module, so that
write transactions start with ``BEGIN IMMEDIATE``: a read-then-write transaction opened with a
deferred ``BEGIN`` fails with SQLITE_BUSY at its first write, whatever the busy timeout.

PostgreSQL (many hosts): ``postgresql+psycopg://`` (psycopg 3, imported lazily). A test or a
team can keep the catalog in its own schema: pass ``schema=`` or put
``?options=-csearch_path%3D<schema>`` in the URL. Both work through the ``search_path`` of each
connection, so the migrations and every query stay unqualified (``migrate.ensure_schema``
creates that schema if it does not exist yet).

Every transaction goes through ``run_read`` / ``run_write``, which rerun it on transient
failures (SQLite "database is locked", PostgreSQL serialization failures and deadlocks, a
dropped connection) with jittered backoff, so that none of those reaches the user.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import random
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from featurecache.catalog.direct import SQLITE_BUSY_TIMEOUT_MS
from featurecache.errors import CatalogError, ConfigError, MissingDependencyError
from featurecache.settings import DEFAULT_REMOTE_TIMEOUT_SECONDS

log = logging.getLogger(__name__)

T = TypeVar("T")
TxMode = Literal["read", "write"]

# Beyond the busy timeout, retry a transient failure this long before giving up.
RETRY_BUDGET_SECONDS = 120.0
_TX_OPTION = "featurecache_tx"
_SCHEMA_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# SQLSTATEs worth rerunning a transaction for: serialization_failure, deadlock_detected.
_PG_TRANSIENT = {"40001", "40P01"}


def safe_url(url: str | URL) -> str:
    """The URL with any password masked, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def is_sqlite_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_catalog_engine(
    url: str,
    *,
    schema: str | None = None,
    busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
    connect_timeout_seconds: float = DEFAULT_REMOTE_TIMEOUT_SECONDS,
) -> Engine:
    """An Engine for a catalog URL (``sqlite:///path`` or ``postgresql+psycopg://…``).

    ``connect_timeout_seconds`` (``FEATURECACHE_REMOTE_TIMEOUT``) bounds connecting to a
    PostgreSQL server that accepts TCP and never answers; a ``connect_timeout`` in the URL
    wins."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        raise ConfigError(
            "FEATURECACHE_CATALOG",
            f"{url!r} is not a database URL",
            "Use sqlite:///path/to/catalog.db or postgresql+psycopg://user@host/db.",
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if schema is not None:
            raise ConfigError("schema", "applies to PostgreSQL catalogs only", "Leave it unset.")
        return _sqlite_engine(parsed, busy_timeout_ms)
    if backend == "postgresql":
        return _postgres_engine(parsed, schema, connect_timeout_seconds)
    raise ConfigError(
        "FEATURECACHE_CATALOG",
        f"{safe_url(parsed)} uses {backend!r}, which featurecache does not support",
        "Use sqlite:///… (one machine) or postgresql+psycopg://… (a team).",
    )


def _sqlite_engine(url: URL, busy_timeout_ms: int) -> Engine:
    kwargs: dict[str, Any] = {}
    if is_sqlite_memory(url):
        # One shared connection, or every pooled connection would see its own empty database.
        # Hence one transaction at a time: in-memory catalogs suit single-threaded tests only.
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    elif url.database and not url.database.startswith("file:"):
        path = Path(url.database).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        url = url.set(database=str(path))
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, record: ConnectionPoolEntry) -> None:
        # Take transaction control away from sqlite3: we emit BEGIN ourselves (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # The busy timeout first: switching to WAL needs a lock another process may hold.
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            mode = cursor.execute("PRAGMA journal_mode").fetchone()
            if mode and str(mode[0]).lower() not in ("wal", "memory"):
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front, waiting out busy_timeout; readers don't block.
        mode = conn.get_execution_options().get(_TX_OPTION, "read")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "write" else "BEGIN")

    return engine


def _postgres_engine(url: URL, schema: str | None, connect_timeout_seconds: float) -> Engine:
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    elif url.drivername != "postgresql+psycopg":
        raise ConfigError(
            "FEATURECACHE_CATALOG",
            f"driver {url.drivername!r} is not supported",
            "Use postgresql+psycopg://… (psycopg 3).",
        )
    if importlib.util.find_spec("psycopg") is None:
        raise MissingDependencyError("psycopg", "postgres", "a PostgreSQL catalog")
    connect_args: dict[str, Any] = {}
    if schema is not None:
        if not _SCHEMA_RE.match(schema):
            raise ConfigError(
                "schema", f"{schema!r} is not a plain identifier", "Use [A-Za-z_0-9]."
            )
        options = url.query.get("options", "")
        options = options if isinstance(options, str) else " ".join(options)
        connect_args["options"] = f"{options} -csearch_path={schema}".strip()
        url = url.difference_update_query(["options"])
    if "application_name" not in url.query:
        connect_args["application_name"] = "featurecache"  # visible in pg_stat_activity
    if "connect_timeout" not in url.query:
        # libpq takes whole seconds and treats anything below 2 as 2.
        connect_args["connect_timeout"] = max(2, math.ceil(connect_timeout_seconds))
    # No pool_pre_ping (a round trip per checkout, on the hot path): a connection the server
    # dropped fails its first statement as "invalidated", and with_retry reruns the
    # transaction on a fresh one.
    return create_engine(url, connect_args=connect_args)


@contextmanager
def transaction(engine: Engine, mode: TxMode) -> Iterator[Connection]:
    """A connection in a transaction: committed on success, rolled back on error. ``write``
    takes SQLite's write lock at BEGIN; ``read`` uses a deferred BEGIN."""
    with engine.connect() as conn:
        conn.execution_options(**{_TX_OPTION: mode})
        with conn.begin():
            yield conn


def read(engine: Engine) -> AbstractContextManager[Connection]:
    """``with read(engine) as conn:`` a read transaction (no retry; see ``run_read``)."""
    return transaction(engine, "read")


def write(engine: Engine) -> AbstractContextManager[Connection]:
    """``with write(engine) as conn:`` a write transaction (no retry; see ``run_write``)."""
    return transaction(engine, "write")


def not_a_database(error: BaseException, url: str | URL) -> CatalogError | None:
    """A ``CatalogError`` naming the file and the fix when ``error`` says the SQLite catalog
    file is not a database (another file at that path, or one damaged beyond its header);
    None for any other error."""
    orig = getattr(error, "orig", error)
    if not isinstance(orig, sqlite3.DatabaseError):
        return None
    code = getattr(orig, "sqlite_errorcode", None)
    if code not in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT) and "not a database" not in str(
        orig
    ):
        return None
    parsed = make_url(url)
    where = parsed.database or safe_url(parsed)
    return CatalogError(
        f"the catalog file {where} is not a SQLite database ({orig}). Point "
        "FEATURECACHE_CATALOG at another file, or move this one away (featurecache then "
        "creates a new, empty catalog there)"
    )


def unwritable_sqlite_fallback(error: BaseException, url: str | URL) -> str | None:
    """For a SQLite catalog file that cannot even be opened because nothing can be written
    next to it (a full disk, a read-only folder: WAL mode must create its ``-shm`` file just to
    read), the URL of the same file opened read-only and immutable; None for any other error.

    Immutable means SQLite takes no locks and ignores the WAL: the catalog is read as of its
    last checkpoint. That can only make a key miss or point at an artifact that is gone (both
    recompute); it can never serve wrong data, since every hit verifies the artifact's bytes."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(getattr(cause, "orig", cause), sqlite3.Error):
        cause = cause.__cause__  # a CatalogError raised from the driver's error
    orig = getattr(cause, "orig", cause)
    if not isinstance(orig, sqlite3.OperationalError):
        return None
    code = getattr(orig, "sqlite_errorcode", None)
    unwritable = {
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_CANTOPEN,
    }
    # sqlite_errorcode is the extended code (SQLITE_IOERR_SHMSIZE…): its low byte is the primary.
    if (code is None or code & 0xFF not in unwritable) and "disk" not in str(orig):
        return None
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database.startswith("file:"):
        return None
    path = Path(database).expanduser().resolve()
    if not path.is_file():
        return None
    return f"sqlite:///file:{path}?mode=ro&immutable=1&uri=true"


def is_transient(error: BaseException) -> bool:
    """Whether rerunning the whole transaction may succeed."""
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    orig = getattr(error, "orig", None)
    if isinstance(orig, sqlite3.OperationalError):
        code = getattr(orig, "sqlite_errorcode", None)
        return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(orig)
    sqlstate = getattr(orig, "sqlstate", None)
    return sqlstate in _PG_TRANSIENT


def with_retry(
    operation: Callable[[], T],
    *,
    what: str,
    url: str | URL | None = None,
    budget_seconds: float = RETRY_BUDGET_SECONDS,
    first_delay: float = 0.02,
    max_delay: float = 2.0,
) -> T:
    """Run ``operation`` (a whole transaction), rerunning it on transient failures with
    jittered exponential backoff for up to ``budget_seconds``. Other database failures
    become a ``CatalogError`` naming ``what`` was attempted (and, for a SQLite ``url`` whose
    file is not a database, that file)."""
    deadline = time.monotonic() + budget_seconds
    delay = first_delay
    attempt = 0
    while True:
        attempt += 1
        try:
            return operation()
        except exc.DBAPIError as error:
            if url is not None and (damaged := not_a_database(error, url)) is not None:
                raise damaged from error
            if not is_transient(error):
                if isinstance(error, exc.OperationalError | exc.InterfaceError):
                    raise CatalogError(f"{what} failed: {error.orig}") from error
                raise
            if time.monotonic() + delay > deadline:
                raise CatalogError(
                    f"{what} failed: the catalog stayed busy for {budget_seconds:.0f}s "
                    f"({attempt} attempts; last: {error.orig}). Another process holds it "
                    "locked; retry later."
                ) from error
            log.debug("transient catalog failure during %s (attempt %d): %s", what, attempt, error)
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, max_delay)


def run_read(engine: Engine, work: Callable[[Connection], T], *, what: str) -> T:
    """Run ``work(conn)`` in a read transaction, retried on transient failures."""

    def attempt() -> T:
        with transaction(engine, "read") as conn:
            return work(conn)

    return with_retry(attempt, what=what, url=engine.url)


def run_write(engine: Engine, work: Callable[[Connection], T], *, what: str) -> T:
    """Run ``work(conn)`` in a write transaction, retried (whole) on transient failures."""

    def attempt() -> T:
        with transaction(engine, "write") as conn:
            return work(conn)

    return with_retry(attempt, what=what, url=engine.url)
