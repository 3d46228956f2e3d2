"""Shared fixtures. Backend fixtures live in their own plugin modules so each backend's
owner can change them without touching the others."""

from collections.abc import Iterator

import pytest

pytest_plugins = [
    "tests.fixtures_pg",
    "tests.fixtures_s3",
]


@pytest.fixture(scope="session", autouse=True)
def _user_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Outside any project the default cache is the user's (``$XDG_CACHE_HOME/featurecache``):
    no test, nor a module-scoped fixture set up before any test, may write into the real one.
    Session-wide, so it holds before every other fixture (subprocesses inherit it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("user-cache")))
        yield
