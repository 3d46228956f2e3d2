"""The real PostgreSQL server for the tests, one fresh schema per use.

``pg_server`` (session) checks that the server at ``FEATURECACHE_TEST_PG_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``) answers; when it does not, PostgreSQL
tests skip with a loud reason, or fail when ``FEATURECACHE_REQUIRE_SERVICES=1`` (CI).

Every test session works in schemas of its own, named ``fc_test_<random>[_<n>]`` and dropped
when the session ends, so concurrent runs never collide. A catalog URL points into a schema
through libpq's ``options=-csearch_path=<schema>`` (see ``featurecache.catalog.database``).

* ``pg_url``: the session's schema (shared by the tests that need no isolation);
* ``pg_schemas``: a factory of further schemas (``.url()`` creates one, ``.url(create=False)``
  only reserves the name, for tests of catalog creation);
* ``pg_catalog_url``: a fresh, empty schema for one test;
* ``any_catalog_url``: parametrised over a new SQLite file and a new PostgreSQL schema, for
  tests of catalog creation and migration;
* ``any_clean_catalog_url``: parametrised over a new SQLite file and a reused PostgreSQL
  catalog emptied with TRUNCATE, for conformance suites that must hold on every backend.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from featurecache.catalog import Catalog

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_base_url() -> str:
    return os.environ.get("FEATURECACHE_TEST_PG_URL", DEFAULT_PG_URL)


def _services_required() -> bool:
    return os.environ.get("FEATURECACHE_REQUIRE_SERVICES") == "1"


def _libpq_url(url: str) -> str:
    """The SQLAlchemy URL as a libpq URI psycopg can connect to."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def schema_url(base: str, schema: str) -> str:
    """``base`` pointed at ``schema`` through the connection's search_path."""
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def pg_execute(base: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run one statement in autocommit on the server (fixture plumbing, test setup)."""
    import psycopg

    with psycopg.connect(_libpq_url(base), autocommit=True, connect_timeout=5) as conn:
        cursor = conn.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


@dataclass
class PgSchemas:
    """Schemas of this test session: created on demand, all dropped at the end."""

    base: str
    prefix: str
    names: list[str] = field(default_factory=list)

    def url(self, *, create: bool = True) -> str:
        name = f"{self.prefix}_{len(self.names)}"
        self.names.append(name)
        if create:
            pg_execute(self.base, f'CREATE SCHEMA "{name}"')
        return schema_url(self.base, name)

    def drop(self, url: str) -> None:
        options = make_url(url).query.get("options", "")
        name = str(options).split("search_path=")[-1]
        pg_execute(self.base, f'DROP SCHEMA IF EXISTS "{name}" CASCADE')

    def drop_all(self) -> None:
        for name in (self.prefix, *self.names):
            pg_execute(self.base, f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The server's base URL, once it is known to answer."""
    base = pg_base_url()
    try:
        import psycopg
    except ImportError:
        reason = "psycopg is not installed (pip install 'featurecache[postgres]')"
    else:
        try:
            pg_execute(base, "SELECT 1")
        except psycopg.Error as error:
            reason = f"PostgreSQL at {make_url(base).render_as_string()} does not answer ({error})"
        else:
            return base
    if _services_required():
        pytest.fail(f"PostgreSQL tests cannot run: {reason} (FEATURECACHE_REQUIRE_SERVICES=1)")
    pytest.skip(
        f"POSTGRESQL TESTS SKIPPED: {reason}. Set FEATURECACHE_TEST_PG_URL to a server; "
        "FEATURECACHE_REQUIRE_SERVICES=1 makes this a failure."
    )


@pytest.fixture(scope="session")
def pg_schemas(pg_server: str) -> Iterator[PgSchemas]:
    schemas = PgSchemas(base=pg_server, prefix=f"fc_test_{secrets.token_hex(4)}")
    pg_execute(pg_server, f'CREATE SCHEMA "{schemas.prefix}"')
    try:
        yield schemas
    finally:
        schemas.drop_all()


@pytest.fixture(scope="session")
def pg_url(pg_schemas: PgSchemas) -> str:
    """A catalog URL in this session's own schema."""
    return schema_url(pg_schemas.base, pg_schemas.prefix)


@pytest.fixture
def pg_catalog_url(pg_schemas: PgSchemas) -> Iterator[str]:
    """A catalog URL in a fresh, empty schema for one test."""
    url = pg_schemas.url()
    yield url
    pg_schemas.drop(url)


@pytest.fixture(scope="session")
def pg_reused_catalog(pg_schemas: PgSchemas) -> str:
    """A catalog at head in a schema of its own, created once per session."""
    from featurecache.catalog import Catalog

    url = pg_schemas.url()
    Catalog.open(url).close()
    return url


@pytest.fixture
def pg_clean_catalog_url(pg_reused_catalog: str) -> str:
    """The session's reused catalog, emptied (much faster than migrating a new schema)."""
    from featurecache.catalog.models import Base

    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with_schema = make_url(pg_reused_catalog).query["options"]
    schema = str(with_schema).split("search_path=")[-1]
    pg_execute(pg_reused_catalog, f'SET search_path TO "{schema}"; TRUNCATE {tables} CASCADE')
    return pg_reused_catalog


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new database on each backend (a SQLite file, a PostgreSQL schema), never opened:
    for tests of catalog creation and migrations."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog' / 'catalog.db'}"
    url: str = request.getfixturevalue("pg_catalog_url")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_clean_catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty catalog at head on each backend: for conformance suites."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog' / 'catalog.db'}"
    url: str = request.getfixturevalue("pg_clean_catalog_url")
    return url


@pytest.fixture
def catalog(any_clean_catalog_url: str) -> Iterator[Catalog]:
    """An open catalog at head on each backend (a module may define its own ``catalog``)."""
    from featurecache.catalog import Catalog

    opened = Catalog.open(any_clean_catalog_url)
    try:
        yield opened
    finally:
        opened.close()
