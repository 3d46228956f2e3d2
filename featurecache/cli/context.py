"""Opening the configured cache for a command (settings from env / pyproject / defaults)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from featurecache.catalog import Catalog
    from featurecache.store.base import ArtifactStore


def open_catalog() -> Catalog:
    from featurecache.catalog import Catalog
    from featurecache.settings import load_settings

    return Catalog.open(load_settings().catalog_url)


@contextmanager
def catalog_session() -> Iterator[Catalog]:
    """The configured catalog, closed afterwards."""
    catalog = open_catalog()
    try:
        yield catalog
    finally:
        catalog.close()


@contextmanager
def cache_session() -> Iterator[tuple[Catalog, ArtifactStore]]:
    """The configured catalog and store. The store's write-once probe is skipped: maintenance
    only reads, deletes and quarantines, and must work on a store it cannot publish to."""
    from featurecache.catalog import Catalog
    from featurecache.settings import load_settings
    from featurecache.store.factory import open_store

    settings = load_settings()
    store = open_store(settings.store_url, settings, check=False)
    catalog = Catalog.open(settings.catalog_url)
    try:
        yield catalog, store
    finally:
        catalog.close()
