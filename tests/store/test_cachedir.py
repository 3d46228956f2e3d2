"""The default cache folder's markers: a new ``.featurecache/`` is ignored by git and tagged
for backup tools, and only a cache that is used creates it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from featurecache.settings import load_settings
from featurecache.store.cachedir import (
    CACHEDIR_TAG_NAME,
    prepare_cache_dir,
    sqlite_path,
    uses_cache_dir,
)
from tests.e2e import Project


def _project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\n')
    return tmp_path


def test_a_new_cache_folder_gets_a_gitignore_of_everything_and_a_cachedir_tag(
    tmp_path: Path,
) -> None:
    root = _project(tmp_path)
    folder = prepare_cache_dir(load_settings(environ={}, cwd=root))
    assert folder == root.resolve() / ".featurecache"
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (
        (folder / CACHEDIR_TAG_NAME)
        .read_text()
        .startswith("Signature: 8a477f597d28d172789f06886806bc55")
    )
    assert oct((folder / ".gitignore").stat().st_mode & 0o777) == oct(0o644)


def test_a_marker_someone_edited_is_left_alone(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / ".featurecache").mkdir()
    (root / ".featurecache" / ".gitignore").write_text("artifacts/\n")
    prepare_cache_dir(load_settings(environ={}, cwd=root))
    assert (root / ".featurecache" / ".gitignore").read_text() == "artifacts/\n"


def test_nothing_is_created_when_every_location_is_configured_elsewhere(tmp_path: Path) -> None:
    root = _project(tmp_path)
    env = {
        "FEATURECACHE_CATALOG": f"sqlite:///{tmp_path / 'team' / 'catalog.db'}",
        "FEATURECACHE_STORE": "s3://bucket/features",
        "FEATURECACHE_STATE_DIR": str(tmp_path / "state"),
    }
    settings = load_settings(environ=env, cwd=root)
    assert not uses_cache_dir(settings)
    assert prepare_cache_dir(settings) is None
    assert not (root / ".featurecache").exists()


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:////abs/c.db", Path("/abs/c.db")),
        ("sqlite:///rel/c.db?timeout=5", Path("rel/c.db")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("postgresql+psycopg://u@h/db", None),
    ],
)
def test_sqlite_path(url: str, path: Path | None) -> None:
    assert sqlite_path(url) == path


def test_git_add_never_commits_the_cache(tmp_path: Path) -> None:
    """The user's view: a git project, one run of a feature, then ``git status``."""
    project = Project.create(tmp_path / "proj")
    subprocess.run(["git", "init", "-q", str(project.root)], check=True)
    project.write(
        "features.py",
        """
        import polars as pl
        from featurecache import cached_feature

        @cached_feature
        def doubled(n: int) -> pl.DataFrame:
            return pl.DataFrame({"x": [n * 2]})

        doubled(21)
        """,
    )
    # The default location: no FEATURECACHE_CATALOG / _STORE.
    env = {k: v for k, v in project.env().items() if not k.startswith("FEATURECACHE_")}
    subprocess.run(
        [sys.executable, "features.py"], cwd=project.root, env=env, check=True, timeout=300
    )
    assert (project.root / ".featurecache" / "catalog.db").is_file()
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=project.root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ".featurecache" not in status and "features.py" in status


def test_a_folder_that_cannot_be_written_is_left_to_the_cache_to_report(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / ".featurecache").mkdir()
    (root / ".featurecache").chmod(0o555)
    try:
        if os.access(root / ".featurecache", os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        assert prepare_cache_dir(load_settings(environ={}, cwd=root)) is None
    finally:
        (root / ".featurecache").chmod(0o755)


def test_a_read_only_cache_writes_no_marker(tmp_path: Path) -> None:
    root = _project(tmp_path)
    settings = load_settings(environ={"FEATURECACHE_READ_ONLY": "1"}, cwd=root)
    assert prepare_cache_dir(settings) is None
    assert not (root / ".featurecache").exists()


def test_a_cache_path_taken_by_a_file_is_not_the_markers_business(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / ".featurecache").write_text("not a folder")
    assert prepare_cache_dir(load_settings(environ={}, cwd=root)) is None
    assert (root / ".featurecache").read_text() == "not a folder"
