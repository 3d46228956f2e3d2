"""Opening the configured cache for a command (settings from env / pyproject / defaults)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from featurecache.cache import CacheEngine
    from featurecache.catalog.catalog import Catalog


def open_catalog() -> Catalog:
    from featurecache.catalog.catalog import Catalog
    from featurecache.settings import load_settings

    return Catalog.open(load_settings().catalog_url)


def open_engine() -> CacheEngine:
    from featurecache.cache import CacheEngine

    return CacheEngine.open(catalog=None, store=None, settings=None, overrides={})
