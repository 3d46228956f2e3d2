"""``featurecache db upgrade|current``: the catalog's schema revision."""

from __future__ import annotations

import typer

db_app = typer.Typer(help="Manage the catalog database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade() -> None:
    """Upgrade the catalog schema to this featurecache's revision (creates it if new)."""
    from featurecache.catalog import migrate
    from featurecache.catalog.database import safe_url
    from featurecache.settings import load_settings

    url = load_settings().catalog_url
    before = migrate.current(url)
    migrate.upgrade(url)
    after = migrate.current(url)
    typer.echo(f"catalog {safe_url(url)}: {before or 'empty'} -> {after}")


@db_app.command("current")
def current() -> None:
    """Print the catalog's URL (password masked), its schema revision and the one this
    featurecache expects."""
    from featurecache.catalog import migrate
    from featurecache.catalog.database import safe_url
    from featurecache.settings import load_settings

    url = load_settings().catalog_url
    typer.echo(
        f"catalog {safe_url(url)}: at {migrate.current(url) or 'empty'}, "
        f"library head {migrate.head()}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
