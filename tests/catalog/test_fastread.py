"""The SQLite hit path's lookup through the driver (``catalog.fastread``) returns exactly what
the ordinary SQLAlchemy path returns, leaves composites and errors to it, and is used only
for file-backed SQLite catalogs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from featurecache.catalog import queries
from featurecache.catalog.database import run_read, run_write
from featurecache.catalog.facade import Catalog
from featurecache.catalog.fastread import NotHandled, fast_lookup_for
from featurecache.catalog.models import Artifact
from tests.catalog.factories import key_id, publication


@pytest.fixture
def sqlite_catalog(tmp_path: Path) -> Iterator[Catalog]:
    opened = Catalog.open(f"sqlite:///{tmp_path / 'catalog.db'}")
    try:
        yield opened
    finally:
        opened.close()


def _ordinary(catalog: Catalog, key: str) -> object:
    return run_read(catalog.engine, lambda conn: queries.lookup(conn, key), what="lookup")


def test_the_fast_lookup_returns_what_the_ordinary_one_does(sqlite_catalog: Catalog) -> None:
    fast = fast_lookup_for(sqlite_catalog.engine)
    assert fast is not None
    pub = publication(7)
    sqlite_catalog.publish(*pub.args())
    sqlite_catalog.set_pinned(pub.artifact.artifact_id, True)
    found = fast.lookup(pub.entry.key_id)
    assert found == _ordinary(sqlite_catalog, pub.entry.key_id)
    assert not isinstance(found, NotHandled) and found is not None
    assert found.artifact.pinned is True
    assert found.entry.created_at.tzinfo is not None
    assert found.entry.components == pub.entry.components
    assert found.artifact.schema == pub.artifact.schema
    assert fast.lookup(key_id("absent")) is None


def test_a_tombstoned_artifact_is_a_miss(sqlite_catalog: Catalog) -> None:
    pub = publication(8)
    sqlite_catalog.publish(*pub.args())
    run_write(
        sqlite_catalog.engine,
        lambda conn: conn.execute(
            update(Artifact)
            .where(Artifact.artifact_id == pub.artifact.artifact_id)
            .values(deleted_at=datetime.now(UTC))
        ),
        what="tombstone",
    )
    assert sqlite_catalog.lookup(pub.entry.key_id) is None


def test_a_driver_error_falls_back_to_the_ordinary_path(sqlite_catalog: Catalog) -> None:
    pub = publication(9)
    hit = sqlite_catalog.publish(*pub.args())
    assert sqlite_catalog._fast is not None
    sqlite_catalog._fast.sql = "SELECT * FROM no_such_table WHERE ? IS NOT NULL"
    assert sqlite_catalog.lookup(pub.entry.key_id) == hit


def test_an_in_memory_catalog_gets_none() -> None:
    memory = Catalog.open("sqlite://")
    try:
        assert fast_lookup_for(memory.engine) is None
    finally:
        memory.close()
