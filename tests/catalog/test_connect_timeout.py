"""A PostgreSQL server that accepts TCP and never answers must not block for psycopg's default
(minutes): the catalog engine connects with a timeout from FEATURECACHE_REMOTE_TIMEOUT."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.blackhole import black_hole
from tests.remote_timeout_support import DEADLINE_SLACK, run_operation

pytestmark = [
    pytest.mark.slow,  # a child process and a 2 s connect timeout
    pytest.mark.skipif(importlib.util.find_spec("psycopg") is None, reason="needs psycopg"),
]


def test_a_hanging_postgresql_server_gives_up_within_the_timeout(tmp_path: Path) -> None:
    with black_hole() as hole:
        url = f"postgresql+psycopg://featurecache@127.0.0.1:{hole.port}/catalog"
        ending = run_operation("catalog", url, home=tmp_path, endpoint_url=hole.url)
        assert hole.accepted >= 1

    assert ending.outcome != "timeout", ending.message
    assert ending.handled, f"{ending.outcome}: {ending.message}"
    assert ending.elapsed < DEADLINE_SLACK
