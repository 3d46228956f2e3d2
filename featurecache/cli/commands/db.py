"""``featurecache db upgrade|current``: the catalog's schema revision."""

from __future__ import annotations

import typer

from featurecache.cli.output import JsonFlag, print_json

db_app = typer.Typer(
    help="Manage the catalog database schema.", no_args_is_help=True, rich_markup_mode=None
)


@db_app.command("upgrade")
def upgrade(as_json: JsonFlag = False) -> None:
    """Upgrade the catalog schema to this featurecache's revision (creates it if new)."""
    from featurecache.catalog import migrate
    from featurecache.cli.context import echo_header, load, location_of, with_cache
    from featurecache.store.cachedir import prepare_cache_dir

    settings = load()
    url = settings.catalog_url
    prepare_cache_dir(settings)  # a new default folder gets its .gitignore first
    before = migrate.current(url)
    migrate.upgrade(url)
    after = migrate.current(url)
    location = location_of(settings)
    if as_json:
        print_json(with_cache({"before": before, "revision": after}, location))
        return
    echo_header(location)
    typer.echo(f"catalog {location.catalog}: {before or 'empty'} -> {after}")


@db_app.command("current")
def current(as_json: JsonFlag = False) -> None:
    """Print the catalog's URL (password masked), its schema revision and the one this
    featurecache expects. Creates nothing: a SQLite file that does not exist is reported as
    missing, not opened."""
    from featurecache.catalog import migrate
    from featurecache.cli.context import echo_header, load, location_of, with_cache
    from featurecache.store.cachedir import sqlite_path

    settings = load()
    database = sqlite_path(settings.catalog_url)
    exists = database is None or database.is_file()
    revision = migrate.current(settings.catalog_url) if exists else None
    head = migrate.head()
    location = location_of(settings)
    if as_json:
        report = {
            "exists": exists,
            "revision": revision,
            "head": head,
            "up_to_date": revision == head,
        }
        print_json(with_cache(report, location))
        return
    echo_header(location)
    state = f"at {revision or 'empty'}" if exists else "does not exist yet"
    typer.echo(f"catalog {location.catalog}: {state}, library head {head}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
