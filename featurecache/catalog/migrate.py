"""Schema versions of the catalog: Alembic, run programmatically (no alembic.ini anywhere).

``ensure_schema`` runs on every open: a brand-new catalog is created (upgraded to head), a
catalog at head is accepted, and any other is refused with ``CatalogVersionError``: an older
one asks for ``featurecache db upgrade`` (automigration only happens when the user asks), a
newer one (a revision our scripts do not know) asks for a newer featurecache.

Creating and upgrading run inside one write transaction that first takes a lock, so that
many processes opening a new catalog at once create it exactly once: SQLite's own write lock
(``BEGIN IMMEDIATE``) and, on PostgreSQL, a transaction-scoped advisory lock. Both databases
roll DDL back with the transaction, so a failed migration leaves nothing half-done.

The scripts live beside this module, in ``featurecache/catalog/migrations``: the same place in
a wheel, an editable install and a checkout.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, exc, inspect, text
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from alembic.config import Config
from featurecache.catalog.database import create_catalog_engine, run_read, run_write, safe_url
from featurecache.catalog.direct import SCHEMA_HEAD
from featurecache.errors import CatalogError, CatalogVersionError

UPGRADE_FIX = "run: featurecache db upgrade"
NEWER_FIX = (
    "It was written by a newer featurecache: upgrade featurecache "
    "(pip install -U featurecache) to use it."
)


def scripts_location() -> Path:
    """Where the migration scripts are: ``migrations/`` beside this module."""
    location = Path(__file__).resolve().parent / "migrations"
    if not (location / "env.py").is_file():
        raise CatalogError(
            f"featurecache's migration scripts are missing from {location}; reinstall featurecache"
        )
    return location


@dataclass(frozen=True)
class Scripts:
    location: Path
    head: str
    revisions: frozenset[str]


@lru_cache(maxsize=8)
def _load_scripts(location: Path) -> Scripts:
    from alembic.script import ScriptDirectory

    directory = ScriptDirectory(str(location))
    revisions = frozenset(script.revision for script in directory.walk_revisions())
    head = directory.get_current_head()
    if head is None:
        raise CatalogError(f"no migration scripts in {location}; reinstall featurecache")
    return Scripts(location=location, head=head, revisions=revisions)


def _scripts(location: Path | None) -> Scripts:
    return _load_scripts((location or scripts_location()).resolve())


def head(*, scripts: Path | None = None) -> str:
    """The schema revision this featurecache writes."""
    return _scripts(scripts).head


def _alembic_config(scripts: Scripts, conn: Connection, **attributes: Any) -> Config:
    from alembic.config import Config

    config = Config()
    # ConfigParser interpolates '%', which a path may contain.
    config.set_main_option("script_location", str(scripts.location).replace("%", "%%"))
    config.attributes["connection"] = conn
    config.attributes.update(attributes)
    return config


def current_revision(conn: Connection) -> str | None:
    """The revision recorded in the catalog on ``conn`` (None for a new database)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise CatalogError(f"the catalog records several schema revisions ({rows}); repair it")
    return str(rows[0]) if rows else None


def _check(url: str, found: str | None, scripts: Scripts) -> None:
    if found is None or found == scripts.head:
        return
    fix = UPGRADE_FIX if found in scripts.revisions else NEWER_FIX
    raise CatalogVersionError(url, found, scripts.head, fix)


def _lock_for_migration(conn: Connection) -> None:
    """Serialise schema changes. SQLite: the write transaction's BEGIN IMMEDIATE already
    holds the database's write lock. PostgreSQL: an advisory lock per search_path (per
    catalog schema), released when the transaction ends, also if the process dies."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "SELECT pg_advisory_xact_lock("
                "hashtext('featurecache.migrate:' || current_setting('search_path')))"
            )
        )
        _create_pg_schema_if_missing(conn)


def _create_pg_schema_if_missing(conn: Connection) -> None:
    if conn.execute(text("SELECT current_schema()")).scalar() is not None:
        return
    search_path = str(conn.execute(text("SELECT current_setting('search_path')")).scalar())
    first = search_path.split(",")[0].strip().strip('"')
    if not first or first == "$user":
        raise CatalogError(
            f"no schema to create the catalog in (search_path is {search_path!r}); "
            "create one, or pass a schema"
        )
    quoted = conn.dialect.identifier_preparer.quote_identifier(first)
    conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))


def _refuse_foreign_tables(url: str, conn: Connection, scripts: Scripts) -> None:
    if inspect(conn).has_table("cache_entries"):
        raise CatalogVersionError(
            url,
            None,
            scripts.head,
            "The database holds featurecache tables but no schema revision (alembic_version); "
            "restore it from a backup or point FEATURECACHE_CATALOG at a new database.",
        )


def ensure_schema(engine: Engine, *, scripts: Path | None = None) -> str:
    """Make sure the catalog behind ``engine`` is usable by this featurecache: create a new
    one, accept one at head, refuse anything else. Returns the revision."""
    url = safe_url(engine.url)
    found = run_read(engine, current_revision, what=f"reading the schema revision of {url}")
    if found == SCHEMA_HEAD and scripts is None:
        return found
    info = _scripts(scripts)
    if found == info.head:
        return found
    _check(url, found, info)

    def create(conn: Connection) -> str:
        _lock_for_migration(conn)
        # Re-check under the lock: another process may have created it meanwhile.
        found = current_revision(conn)
        _check(url, found, info)
        if found is None:
            _refuse_foreign_tables(url, conn, info)
            from alembic import command

            command.upgrade(_alembic_config(info, conn), "head")
        return info.head

    try:
        return run_write(engine, create, what=f"creating the catalog {url}")
    except exc.DBAPIError as error:
        raise CatalogError(
            f"could not create the catalog {url}: {error.orig}. The database user must be "
            "allowed to create tables (or run `featurecache db upgrade` as one who is)"
        ) from error


def _run_command(
    url: str, operation: str, revision: str, schema: str | None, scripts: Path | None
) -> str | None:
    info = _scripts(scripts)
    engine = create_catalog_engine(url, schema=schema)
    shown = safe_url(url)

    def migrate(conn: Connection) -> str | None:
        _lock_for_migration(conn)
        found = current_revision(conn)
        if found is not None and found not in info.revisions:
            raise CatalogVersionError(shown, found, info.head, NEWER_FIX)
        from alembic import command

        config = _alembic_config(info, conn)
        if operation == "upgrade":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)
        return current_revision(conn)

    try:
        return run_write(engine, migrate, what=f"{operation} of the catalog {shown}")
    finally:
        engine.dispose()


def upgrade(
    url: str, *, revision: str = "head", schema: str | None = None, scripts: Path | None = None
) -> str | None:
    """Upgrade (or create) the catalog at ``url``; returns the revision it is now at."""
    return _run_command(url, "upgrade", revision, schema, scripts)


def downgrade(
    url: str, revision: str, *, schema: str | None = None, scripts: Path | None = None
) -> str | None:
    """Downgrade the catalog to ``revision`` ("base" drops every table). For tests and
    emergencies; returns the revision it is now at."""
    return _run_command(url, "downgrade", revision, schema, scripts)


def current(url: str, *, schema: str | None = None) -> str | None:
    """The catalog's schema revision, or None when it has none (a new database)."""
    engine = create_catalog_engine(url, schema=schema)
    try:
        return run_read(
            engine, current_revision, what=f"reading the schema revision of {safe_url(url)}"
        )
    finally:
        engine.dispose()
