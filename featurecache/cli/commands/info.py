"""``featurecache info``: the resolved configuration, where each value came from, and where
the cache is. Opens nothing and creates nothing."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

import typer

from featurecache.cli.output import JsonFlag, human_bytes, print_json, print_table

if TYPE_CHECKING:
    from featurecache.settings import Settings

_ABOVE = ("catalog", "store", "state_dir")  # printed above the table, with the project
_NOT_SETTINGS = {"extra", "cache_dir", "project", "sources", "project_root"}


def info(as_json: JsonFlag = False) -> None:
    """Print the configuration featurecache resolves here: the project root, the catalog,
    the store and every setting, each with where it came from (an environment variable,
    pyproject.toml, an explicit value or the default)."""
    from featurecache.catalog.database import safe_url
    from featurecache.cli.context import load, location_of, with_cache

    settings = load()
    location = location_of(settings)
    rows = _rows(settings)
    exists = _exists(settings)
    tier = _tier(settings)
    if as_json:
        report = {
            "project_root": None if settings.project is None else str(settings.project),
            "default_cache_dir": str(settings.cache_dir) if settings.cache_dir else None,
            "exists": exists,
            "local_tier": tier,
            "settings": {name: {"value": value, "source": source} for name, value, source in rows},
        }
        print_json(with_cache(report, location))
        return
    typer.echo(location.header)
    if settings.project is None:
        typer.echo(
            f"project   none: no pyproject.toml or .git at or above {location.cwd}, so the "
            f"shared user cache {settings.cache_dir}"
        )
    else:
        typer.echo(f"project   {settings.project}")
    typer.echo(
        f"catalog   {safe_url(settings.catalog_url)} ({_short(settings.source('catalog_url'))})"
    )
    typer.echo(f"store     {location.store} ({_short(settings.source('store_url'))})")
    typer.echo(f"state     {settings.state_dir} ({_short(settings.source('state_dir'))})")
    typer.echo(f"tier      {_tier_text(settings, tier)}")
    typer.echo(f"exists    {_exists_text(exists)}")
    print_table(
        "settings",
        ["setting", "value", "source"],
        [
            (name, _text(value), _short(source))
            for name, value, source in rows
            if name not in _ABOVE
        ],
        shrink=("value", "source"),
    )


def _short(source: str) -> str:
    """``pyproject.toml`` for an entry of the project's (printed above); others as they are."""
    return "pyproject.toml" if " [tool.featurecache] " in source else source


def _text(value: Any) -> str:
    """As it would be written in the environment or pyproject.toml."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _rows(settings: Settings) -> list[tuple[str, Any, str]]:
    """(name in pyproject, value, source) for every setting."""
    from featurecache.catalog.database import safe_url
    from featurecache.cli.context import mask_password
    from featurecache.settings import setting_keys

    keys = setting_keys()
    rows = []
    for item in fields(settings):
        if item.name in _NOT_SETTINGS:
            continue
        value = getattr(settings, item.name)
        if item.name == "catalog_url":
            value = safe_url(value)
        elif value is not None and not isinstance(value, bool | int | float | str):
            value = str(value)
        if isinstance(value, str):
            value = mask_password(value)
        rows.append((keys.get(item.name, item.name), value, settings.source(item.name)))
    return rows


def _exists(settings: Settings) -> bool | None:
    """Whether the catalog exists: looked up for a SQLite file, None (not asked) for a server."""
    from featurecache.store.cachedir import sqlite_path

    database = sqlite_path(settings.catalog_url)
    return None if database is None else database.is_file()


def _tier(settings: Settings) -> dict[str, Any] | None:
    """The local tier in front of an S3 store: its folder, what it holds and its bound. None
    when there is none (a local store, or FEATURECACHE_LOCAL_TIER=off). Lists the folder;
    creates nothing."""
    from featurecache.settings import local_tier_dir
    from featurecache.store.tier import LocalTier

    folder = local_tier_dir(settings)
    if folder is None or not settings.store_url.lower().startswith("s3://"):
        return None
    usage = LocalTier(folder, settings.local_tier_max_bytes).usage()
    return {
        "folder": str(usage.folder),
        "files": usage.files,
        "bytes": usage.bytes,
        "max_bytes": usage.max_bytes,
    }


def _tier_text(settings: Settings, tier: dict[str, Any] | None) -> str:
    if tier is None:
        if settings.local_tier == "off":
            return "off (FEATURECACHE_LOCAL_TIER=off): every hit downloads"
        return "none: the store is local"
    return (
        f"{tier['folder']}: {tier['files']} files, {human_bytes(tier['bytes'])} of at most "
        f"{human_bytes(tier['max_bytes'])}"
    )


def _exists_text(exists: bool | None) -> str:
    if exists is None:
        return "not checked (a database server: featurecache db current asks it)"
    if exists:
        return "yes"
    return "no: running a feature creates it (or featurecache db upgrade)"


def register(app: typer.Typer) -> None:
    app.command("info")(info)
