"""Opening the configured cache for a command (settings from env / pyproject / defaults), and
saying which cache that is.

Every command names its cache: a header line above human output, a ``cache`` field in JSON
objects. Commands open only a cache that exists: when the configuration points at nothing,
they fail with ``NoCacheError`` naming where they looked, instead of creating an empty cache
there and reporting "0 artifacts" (only ``featurecache db upgrade`` creates a catalog).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from featurecache.catalog import Catalog
    from featurecache.settings import Settings
    from featurecache.store.base import ArtifactStore


@dataclass(frozen=True)
class CacheLocation:
    """Which cache a command uses, for its header and its JSON."""

    catalog: str  # the catalog URL, password masked
    store: str
    cache_dir: str | None  # the default folder, when the catalog lives there
    project_root: str | None  # None: outside any project (the user-level cache)
    cwd: str

    @property
    def root_text(self) -> str:
        if self.project_root is not None:
            return self.project_root
        return f"none, no pyproject.toml or .git at or above {self.cwd}"

    @property
    def header(self) -> str:
        """One line: the folder of a default cache, else the catalog and the store."""
        if self.cache_dir is not None and self.project_root is not None:
            return f"cache: {self.cache_dir} (project root: {self.project_root})"
        if self.cache_dir is not None:
            return f"cache: {self.cache_dir} (the user cache: no project at or above {self.cwd})"
        return f"cache: catalog {self.catalog}, store {self.store}"

    def to_json(self) -> dict[str, Any]:
        return {
            "catalog": self.catalog,
            "store": self.store,
            "cache_dir": self.cache_dir,
            "project_root": self.project_root,
        }


_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@/\s]+@")


def mask_password(text: str) -> str:
    """``http://user:secret@host`` -> ``http://user:***@host`` (an MLflow URI, say)."""
    return _PASSWORD.sub(r"\1***@", text)


def load() -> Settings:
    from featurecache.settings import load_settings

    return load_settings()


def location_of(settings: Settings) -> CacheLocation:
    from pathlib import Path

    from featurecache.catalog.database import safe_url
    from featurecache.store.cachedir import local_store_path, sqlite_path

    folder = settings.cache_dir
    database = sqlite_path(settings.catalog_url)
    store = local_store_path(settings)
    # One folder names the cache when both the catalog and the store live in it.
    in_dir = (
        folder is not None
        and database is not None
        and store is not None
        and database.resolve().parent == folder.resolve()
        and store.resolve().is_relative_to(folder.resolve())
    )
    return CacheLocation(
        catalog=safe_url(settings.catalog_url),
        store=mask_password(settings.store_url),
        cache_dir=str(settings.cache_dir) if in_dir else None,
        project_root=None if settings.project is None else str(settings.project),
        cwd=str(Path.cwd()),
    )


def cache_location() -> CacheLocation:
    """The configured cache's location (opens nothing)."""
    return location_of(load())


def echo_header(location: CacheLocation) -> None:
    typer.echo(location.header)


def with_cache(data: dict[str, Any], location: CacheLocation) -> dict[str, Any]:
    """A JSON report with the ``cache`` it describes as its first field."""
    return {"cache": location.to_json(), **data}


def require_cache(settings: Settings) -> None:
    """``NoCacheError`` unless the configured catalog exists (``ops.presence``: creates
    nothing)."""
    from featurecache.errors import NoCacheError
    from featurecache.ops.presence import catalog_exists
    from featurecache.store.cachedir import sqlite_path

    if catalog_exists(settings):
        return
    location = location_of(settings)
    database = sqlite_path(settings.catalog_url)
    where = (location.cache_dir or str(database)) if database is not None else location.catalog
    raise NoCacheError(where, location.root_text)


def open_catalog(settings: Settings | None = None) -> Catalog:
    """The configured catalog, which must exist (``NoCacheError`` otherwise)."""
    from featurecache.catalog import Catalog

    settings = load() if settings is None else settings
    require_cache(settings)
    return Catalog.open(
        settings.catalog_url, connect_timeout_seconds=settings.remote_timeout_seconds
    )


@contextmanager
def catalog_session(settings: Settings | None = None) -> Iterator[Catalog]:
    """The configured catalog (which must exist), closed afterwards."""
    catalog = open_catalog(settings)
    try:
        yield catalog
    finally:
        catalog.close()


@contextmanager
def cache_session(settings: Settings | None = None) -> Iterator[tuple[Catalog, ArtifactStore]]:
    """The configured catalog (which must exist) and store. The store's write-once probe is
    skipped: maintenance only reads, deletes and quarantines, and must work on a store it
    cannot publish to."""
    from featurecache.store.factory import open_store

    settings = load() if settings is None else settings
    store = open_store(settings.store_url, settings, check=False)  # a bad URL fails first
    catalog = open_catalog(settings)
    try:
        yield catalog, store
    finally:
        catalog.close()
