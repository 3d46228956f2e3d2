"""Whether the configured catalog exists, without creating it: a missing SQLite file is looked
at, never opened; a server database is asked for its schema revision. Commands that only read
a cache refuse to create one, and the skew guard reads MLflow alone where there is none."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from featurecache.settings import Settings


def catalog_exists(settings: Settings) -> bool:
    from featurecache.store.cachedir import sqlite_path

    database = sqlite_path(settings.catalog_url)
    if database is not None:
        return database.is_file()
    if settings.catalog_url.startswith("sqlite"):
        return True  # in memory: it exists while it is open
    from featurecache.catalog import migrate

    return migrate.current(settings.catalog_url) is not None
