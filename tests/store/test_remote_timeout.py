"""A hanging S3 endpoint (accepts TCP, never answers) must not block a call for minutes: every
store operation gives up within about FEATURECACHE_REMOTE_TIMEOUT with a StoreError."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.blackhole import black_hole
from tests.remote_timeout_support import DEADLINE_SLACK, run_operation

pytestmark = [
    pytest.mark.slow,  # a child process and a 2 s deadline each
    pytest.mark.skipif(importlib.util.find_spec("boto3") is None, reason="needs boto3"),
]

STORE_URL = "s3://featurecache-test/hanging"


@pytest.mark.parametrize("operation", ["probe", "read", "exists", "publish"])
def test_a_hanging_s3_endpoint_gives_up_within_the_deadline(operation: str, tmp_path: Path) -> None:
    with black_hole() as hole:
        ending = run_operation(operation, STORE_URL, home=tmp_path, endpoint_url=hole.url)
        assert hole.accepted >= 1  # the client did reach the endpoint

    assert ending.outcome != "timeout", ending.message
    assert ending.handled, f"{ending.outcome}: {ending.message}"
    assert ending.elapsed < DEADLINE_SLACK


def test_a_multipart_upload_to_an_endpoint_that_hangs_after_head_gives_up(tmp_path: Path) -> None:
    with black_hole(answer_head=True) as hole:
        ending = run_operation("multipart", STORE_URL, home=tmp_path, endpoint_url=hole.url)

    assert ending.outcome != "timeout", ending.message
    assert ending.handled, f"{ending.outcome}: {ending.message}"
    assert ending.elapsed < DEADLINE_SLACK
