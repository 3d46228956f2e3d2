"""The default cache folder (``<project>/.featurecache`` or the user cache folder) and its
markers: a ``.gitignore`` holding ``*``, so ``git add .`` never commits the catalog or the
artifacts, and a ``CACHEDIR.TAG``, so backup tools skip it (as pytest's and ruff's caches do).

Only a cache that is used creates the folder; the commands that only read a cache never call
this (``featurecache.cli.context``).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from featurecache.settings import Settings

log = logging.getLogger(__name__)

GITIGNORE_NAME = ".gitignore"
GITIGNORE = "# Created by featurecache: a cache is never committed.\n*\n"
CACHEDIR_TAG_NAME = "CACHEDIR.TAG"
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by featurecache.\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n"
)
_MARKERS = ((GITIGNORE_NAME, GITIGNORE), (CACHEDIR_TAG_NAME, CACHEDIR_TAG))


def sqlite_path(catalog_url: str) -> Path | None:
    """The file of a ``sqlite:///…`` catalog URL; None for other databases and in-memory ones."""
    prefix = "sqlite:///"
    if not catalog_url.startswith(prefix):
        return None
    database = catalog_url[len(prefix) :].split("?", 1)[0]
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def local_store_path(settings: Settings) -> Path | None:
    """The folder of a local store URL (relative ones from the project root); None for S3."""
    text = settings.store_url.strip()
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text:
        return None
    path = Path(text).expanduser()
    return path if path.is_absolute() else settings.project_root / path


def uses_cache_dir(settings: Settings) -> bool:
    """Whether the catalog, the store or the host-local state lives in ``settings.cache_dir``."""
    folder = settings.cache_dir
    if folder is None:
        return False
    paths = (sqlite_path(settings.catalog_url), local_store_path(settings), settings.state_dir)
    return any(path is not None and _inside(path, folder) for path in paths)


def _inside(path: Path, folder: Path) -> bool:
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))


def prepare_cache_dir(settings: Settings) -> Path | None:
    """Create the default cache folder with its markers when the settings keep anything in it.
    A marker is written only where missing (one a user edited is theirs). Returns the folder,
    or None when the settings put nothing there or it could not be prepared: a folder that
    cannot be written (a read-only mount) is the cache's business to report, not the
    markers', and a ``read_only`` cache writes nothing."""
    folder = settings.cache_dir
    if folder is None or settings.read_only or not uses_cache_dir(settings):
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in _MARKERS:
            target = folder / name
            if not target.exists():
                _write_new(target, content)
    except OSError as error:
        log.debug("featurecache: could not prepare %s: %s", folder, error)
        return None
    return folder


def _write_new(target: Path, content: str) -> None:
    """Write ``content`` to ``target`` whole or not at all (another process may be writing the
    same marker at the same moment: both write identical bytes, the rename is atomic)."""
    handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(content)
        os.chmod(temp, 0o644)  # mkstemp's 0600 would hide it from the other users of a team
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
