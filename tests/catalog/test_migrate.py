"""Schema versions: a new catalog is created at head, migrations round-trip, and catalogs
that are older or newer than this featurecache are refused with the right advice."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from featurecache.catalog import Catalog, migrate
from featurecache.catalog.database import create_catalog_engine, run_write
from featurecache.catalog.models import Base
from featurecache.errors import CatalogVersionError
from tests.catalog.factories import publication

TABLES = {
    "features",
    "code_versions",
    "artifacts",
    "cache_entries",
    "artifact_inputs",
    "usage_events",
    "run_usages",
    "leases",
    "fingerprint_aliases",
    "artifact_parts",
}

# A later revision on top of ours, to have a catalog that is older than its scripts.
REVISION_0003 = '''
"""A column added after 0002 (test only)."""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("features", sa.Column("description", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("features") as batch:
        batch.drop_column("description")
'''


def table_names(url: str) -> set[str]:
    engine = create_catalog_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def set_revision(url: str, revision: str) -> None:
    engine = create_catalog_engine(url)
    try:
        run_write(
            engine,
            lambda conn: conn.execute(
                text("UPDATE alembic_version SET version_num = :rev"), {"rev": revision}
            ),
            what="test",
        )
    finally:
        engine.dispose()


@pytest.fixture
def catalog_url(any_catalog_url: str) -> str:
    """A database never opened before (migrations start from nothing)."""
    return any_catalog_url


@pytest.fixture
def later_scripts(tmp_path: Path) -> Path:
    """Our migration scripts plus a revision 0003."""
    scripts = tmp_path / "migrations"
    shutil.copytree(
        migrate.scripts_location(), scripts, ignore=shutil.ignore_patterns("__pycache__")
    )
    (scripts / "versions" / "0003_later.py").write_text(REVISION_0003)
    return scripts


def test_scripts_ship_inside_the_package() -> None:
    # One location for a wheel, an editable install and a checkout: beside the module.
    location = migrate.scripts_location()
    assert location == Path(migrate.__file__).resolve().parent / "migrations"
    assert (location / "env.py").is_file()
    assert migrate.head() == "0002"


def test_a_new_catalog_is_created_at_head(catalog_url: str) -> None:
    assert migrate.current(catalog_url) is None
    Catalog.open(catalog_url).close()
    assert migrate.current(catalog_url) == migrate.head()
    assert table_names(catalog_url) >= TABLES | {"alembic_version"}
    Catalog.open(catalog_url).close()  # a catalog at head is accepted as it is


def test_migrations_build_exactly_the_models(catalog_url: str) -> None:
    Catalog.open(catalog_url).close()
    engine = create_catalog_engine(catalog_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_downgrade_and_upgrade_round_trip(catalog_url: str) -> None:
    with Catalog.open(catalog_url) as catalog:
        catalog.publish(*publication(1).args())
    assert migrate.downgrade(catalog_url, "base") is None
    assert table_names(catalog_url) & TABLES == set()
    assert migrate.upgrade(catalog_url) == migrate.head()
    with Catalog.open(catalog_url) as catalog:
        assert catalog.lookup(publication(1).entry.key_id) is None  # a fresh, working catalog
        catalog.publish(*publication(1).args())
        assert catalog.lookup(publication(1).entry.key_id) is not None


def test_a_catalog_from_a_newer_featurecache_is_refused(catalog_url: str) -> None:
    Catalog.open(catalog_url).close()
    set_revision(catalog_url, "9f9f_from_the_future")
    with pytest.raises(CatalogVersionError, match="upgrade featurecache") as caught:
        Catalog.open(catalog_url)
    assert caught.value.found == "9f9f_from_the_future"
    assert caught.value.expected == migrate.head()
    with pytest.raises(CatalogVersionError, match="upgrade featurecache"):
        migrate.upgrade(catalog_url)  # we cannot upgrade what we do not know either


def test_an_older_catalog_asks_for_db_upgrade(catalog_url: str, later_scripts: Path) -> None:
    Catalog.open(catalog_url).close()  # at 0002, and these scripts' head is 0003
    with pytest.raises(CatalogVersionError, match="run: featurecache db upgrade") as caught:
        Catalog.open(catalog_url, migrations=later_scripts)
    assert (caught.value.found, caught.value.expected) == ("0002", "0003")
    assert migrate.current(catalog_url) == "0002"  # opening never migrates by itself

    assert migrate.upgrade(catalog_url, scripts=later_scripts) == "0003"
    Catalog.open(catalog_url, migrations=later_scripts).close()
    assert migrate.downgrade(catalog_url, "0002", scripts=later_scripts) == "0002"
    Catalog.open(catalog_url).close()


def test_a_new_catalog_is_created_with_the_latest_scripts(
    catalog_url: str, later_scripts: Path
) -> None:
    Catalog.open(catalog_url, migrations=later_scripts).close()
    assert migrate.current(catalog_url) == "0003"


def test_catalog_tables_without_a_revision_are_refused(catalog_url: str) -> None:
    Catalog.open(catalog_url).close()
    engine = create_catalog_engine(catalog_url)
    try:
        run_write(engine, lambda conn: conn.execute(text("DROP TABLE alembic_version")), what="t")
    finally:
        engine.dispose()
    with pytest.raises(CatalogVersionError, match="no schema revision"):
        Catalog.open(catalog_url)


def test_the_schema_of_a_postgres_url_is_created_if_missing(pg_schemas: object) -> None:
    from tests.fixtures_pg import PgSchemas

    assert isinstance(pg_schemas, PgSchemas)
    url = pg_schemas.url(create=False)
    with Catalog.open(url) as catalog:
        catalog.publish(*publication(1).args())
    assert migrate.current(url) == migrate.head()


def test_schema_head_constant_matches_the_migration_scripts() -> None:
    from featurecache.catalog import migrate

    assert migrate.head() == migrate.SCHEMA_HEAD


def test_a_catalog_at_0001_upgrades_to_composites_keeping_its_entries(catalog_url: str) -> None:
    # 0002 adds a nullable column and a table: what a 0001 catalog held is served after it.
    with Catalog.open(catalog_url) as catalog:
        catalog.publish(*publication(1).args())
    assert migrate.downgrade(catalog_url, "0001") == "0001"
    assert "artifact_parts" not in table_names(catalog_url)
    assert migrate.upgrade(catalog_url) == "0002"
    with Catalog.open(catalog_url) as catalog:
        hit = catalog.lookup(publication(1).entry.key_id)
        assert hit is not None
        assert hit.artifact.structure is None
