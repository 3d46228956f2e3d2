"""The catalog conformance suite runs every test over SQLite and the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from featurecache.catalog import Catalog


@pytest.fixture
def catalog_url(any_clean_catalog_url: str) -> str:
    """An empty catalog (already created) on each backend; test_migrate.py overrides it
    with databases that were never opened."""
    return any_clean_catalog_url


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    opened = Catalog.open(catalog_url)
    try:
        yield opened
    finally:
        opened.close()
