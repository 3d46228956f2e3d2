"""Catalog engines: SQLite's pragmas and BEGIN IMMEDIATE, URL handling, and the retry of
transient failures (a real locked SQLite database, a real PostgreSQL deadlock)."""

from __future__ import annotations

import os
import secrets
import sqlite3
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import exc, text

from featurecache.catalog.database import (
    create_catalog_engine,
    is_transient,
    read,
    run_write,
    transaction,
    write,
)
from featurecache.errors import CatalogError, ConfigError, MissingDependencyError


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'deep' / 'er' / 'catalog.db'}"


def try_begin_immediate(path: str) -> str:
    """Whether another connection could take the write lock right now (no waiting)."""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return "free"
    except sqlite3.OperationalError as error:
        return str(error)
    finally:
        other.close()


def test_sqlite_pragmas_are_set_and_the_folder_is_created(sqlite_url: str) -> None:
    engine = create_catalog_engine(sqlite_url)
    with read(engine) as conn:
        pragmas = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")
        }
    assert pragmas == {
        "journal_mode": "wal",
        "busy_timeout": 30000,
        "synchronous": 1,
        "foreign_keys": 1,
    }
    engine.dispose()


def test_write_transactions_take_the_write_lock_at_begin(sqlite_url: str) -> None:
    engine = create_catalog_engine(sqlite_url)
    path = engine.url.database
    assert path is not None
    with write(engine) as conn:
        assert conn.in_transaction()
        # Nothing written yet, and still no one else may write: BEGIN IMMEDIATE.
        assert "locked" in try_begin_immediate(path)
    with read(engine) as conn:
        conn.execute(text("SELECT 1"))
        assert try_begin_immediate(path) == "free"  # readers never block a writer (WAL)
    assert try_begin_immediate(path) == "free"
    engine.dispose()


def test_a_failed_write_transaction_is_rolled_back(sqlite_url: str) -> None:
    engine = create_catalog_engine(sqlite_url)
    run_write(engine, lambda conn: conn.execute(text("CREATE TABLE t (x INTEGER)")), what="t")
    with pytest.raises(RuntimeError), transaction(engine, "write") as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        raise RuntimeError("boom")
    with read(engine) as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    engine.dispose()


def test_a_locked_database_is_retried_not_reported(sqlite_url: str) -> None:
    # A short busy timeout so the lock outlasts it; the retry must absorb the failure.
    engine = create_catalog_engine(sqlite_url, busy_timeout_ms=20)
    run_write(engine, lambda conn: conn.execute(text("CREATE TABLE t (x INTEGER)")), what="t")
    path = engine.url.database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(exc.OperationalError, match="locked") as direct, write(engine) as conn:
        conn.execute(text("INSERT INTO t VALUES (0)"))
    assert is_transient(direct.value)

    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    run_write(engine, lambda conn: conn.execute(text("INSERT INTO t VALUES (1)")), what="insert")
    release.join()
    holder.close()
    with read(engine) as conn:
        assert conn.execute(text("SELECT x FROM t")).scalars().all() == [1]
    engine.dispose()


def test_retrying_gives_up_with_a_catalog_error(sqlite_url: str) -> None:
    engine = create_catalog_engine(sqlite_url, busy_timeout_ms=1)
    path = engine.url.database
    assert path is not None
    create_catalog_engine(sqlite_url).dispose()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    from featurecache.catalog.database import with_retry

    def attempt() -> None:
        with write(engine) as conn:
            conn.execute(text("SELECT 1"))

    with pytest.raises(CatalogError, match="stayed busy"):
        with_retry(attempt, what="a write", budget_seconds=0.2)
    holder.execute("ROLLBACK")
    holder.close()
    engine.dispose()


@pytest.mark.postgres
def test_a_postgres_deadlock_is_retried(pg_catalog_url: str) -> None:
    engine = create_catalog_engine(pg_catalog_url)
    run_write(
        engine,
        lambda conn: conn.execute(
            text("CREATE TABLE t (id INT PRIMARY KEY, n INT); INSERT INTO t VALUES (1, 0), (2, 0)")
        ),
        what="setup",
    )
    both_locked_one = threading.Barrier(2)
    attempts: list[int] = []

    def crosswise(first: int, second: int) -> None:
        def work(conn: object) -> None:
            from sqlalchemy.engine import Connection

            assert isinstance(conn, Connection)
            attempts.append(first)
            conn.execute(text("UPDATE t SET n = n + 1 WHERE id = :id"), {"id": first})
            if attempts.count(first) == 1:  # only the first attempts meet: a real deadlock
                both_locked_one.wait(timeout=10)
            conn.execute(text("UPDATE t SET n = n + 1 WHERE id = :id"), {"id": second})

        run_write(engine, work, what="crosswise updates")

    threads = [threading.Thread(target=crosswise, args=pair) for pair in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with read(engine) as conn:
        assert conn.execute(text("SELECT n FROM t ORDER BY id")).scalars().all() == [2, 2]
    assert len(attempts) == 3  # one side was chosen as the deadlock victim and rerun
    engine.dispose()


def test_transient_errors_are_recognised() -> None:
    import psycopg

    def wrap(orig: Exception) -> exc.DBAPIError:
        return exc.OperationalError("SELECT 1", {}, orig)

    assert is_transient(wrap(psycopg.errors.SerializationFailure("x")))
    assert is_transient(wrap(psycopg.errors.DeadlockDetected("x")))
    assert not is_transient(wrap(psycopg.errors.UndefinedTable("x")))
    assert is_transient(wrap(sqlite3.OperationalError("database is locked")))
    assert not is_transient(wrap(sqlite3.OperationalError("no such table: t")))


@pytest.mark.parametrize(
    "url",
    ["not a url", "mysql://localhost/db", "postgresql+psycopg2://localhost/db"],
)
def test_unsupported_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        create_catalog_engine(url)


def test_schema_is_for_postgres_only(sqlite_url: str) -> None:
    with pytest.raises(ConfigError, match="PostgreSQL"):
        create_catalog_engine(sqlite_url, schema="x")
    with pytest.raises(ConfigError, match="identifier"):
        create_catalog_engine("postgresql+psycopg://localhost/db", schema="x; DROP")


def test_a_missing_psycopg_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    with pytest.raises(MissingDependencyError, match=r"featurecache\[postgres\]"):
        create_catalog_engine("postgresql://localhost/db")


def test_plain_postgresql_urls_use_psycopg_3() -> None:
    engine = create_catalog_engine("postgresql://user@localhost/db", schema="s1")
    assert engine.url.drivername == "postgresql+psycopg"
    engine.dispose()


def test_in_memory_sqlite_works(tmp_path: Path) -> None:
    engine = create_catalog_engine("sqlite://")
    run_write(engine, lambda conn: conn.execute(text("CREATE TABLE t (x INTEGER)")), what="t")
    with read(engine) as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    engine.dispose()


@pytest.mark.postgres
def test_connections_the_server_dropped_are_replaced(pg_catalog_url: str) -> None:
    from sqlalchemy.engine import make_url

    from featurecache.catalog import Catalog
    from tests.fixtures_pg import pg_execute

    name = f"fc-drop-{os.getpid()}-{secrets.token_hex(3)}"
    url = make_url(pg_catalog_url).update_query_dict({"application_name": name})
    catalog = Catalog.open(url.render_as_string(hide_password=False))
    try:
        assert catalog.lookup("0" * 32) is None  # a pooled, idle connection now exists
        killed = pg_execute(
            pg_catalog_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (name,),
        )
        assert killed and all(ok for (ok,) in killed)
        assert catalog.lookup("0" * 32) is None  # no error: rerun on a fresh connection
        assert catalog.try_acquire_lease("k", "me", 30)
    finally:
        catalog.close()
