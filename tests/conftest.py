"""Shared fixtures. Backend fixtures live in their own plugin modules so each backend's
owner can change them without touching the others."""

import pytest

pytest_plugins = [
    "tests.fixtures_pg",
    "tests.fixtures_s3",
]


@pytest.fixture(autouse=True)
def _user_cache_in_tmp(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside any project the default cache is the user's (``$XDG_CACHE_HOME/featurecache``):
    a test run from a temporary folder must never write into the real one."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("user-cache")))
