"""A real S3 endpoint for the tests: moto's HTTP server in a subprocess on 127.0.0.1.

``s3_endpoint`` (session) starts the server on a free port, points boto3 at it for the rest of
the session (dummy credentials, region us-east-1, ``AWS_ENDPOINT_URL``; no profile or instance
metadata can leak in) and stops it at the end. ``s3_store_url`` gives each test a fresh
``s3://bucket/prefix-<random>``. When moto cannot start the tests skip loudly, or fail when
``FEATURECACHE_REQUIRE_SERVICES=1`` (CI).

A subprocess rather than moto's in-process threaded server: the tests kill child processes
mid-upload and push ~100 MB through it, which should not share a GIL with the test runner.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from featurecache import FeatureCache

REGION = "us-east-1"
TEST_BUCKET = "featurecache-test"
_START_TIMEOUT = 30.0


@dataclass
class S3Endpoint:
    """A running S3 server and a way to make buckets on it."""

    url: str
    region: str = REGION
    _buckets: set[str] = field(default_factory=set)

    def client(self) -> Any:
        import boto3

        return boto3.session.Session().client("s3", endpoint_url=self.url, region_name=self.region)

    def bucket(self, name: str = TEST_BUCKET) -> str:
        """Create ``name`` if this session has not yet; returns it."""
        if name not in self._buckets:
            client = self.client()
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                client.create_bucket(Bucket=name)
            self._buckets.add(name)
        return name


def services_required() -> bool:
    return os.environ.get("FEATURECACHE_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip loudly, or fail where CI demands every service."""
    if services_required():
        pytest.fail(f"S3 tests cannot run: {reason} (FEATURECACHE_REQUIRE_SERVICES=1)")
    pytest.skip(
        f"S3 TESTS SKIPPED: {reason}. Install featurecache[dev] (moto[server], boto3); "
        "set FEATURECACHE_REQUIRE_SERVICES=1 to make this a failure."
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(process: subprocess.Popen[bytes], url: str) -> bool:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _start_moto(log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    for _ in range(3):  # the free port can be taken between probing and binding it
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        if _wait_until_up(process, url):
            return process, url
        _stop(process)
    tail = log_path.read_text(errors="replace")[-2000:]
    unavailable(f"moto_server did not start on 127.0.0.1 (log tail: {tail!r})")
    raise AssertionError("unreachable")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def aws_test_environment(endpoint_url: str, home: Path) -> dict[str, str]:
    """Environment that confines boto3 (and child processes) to the test endpoint."""
    return {
        "AWS_ACCESS_KEY_ID": "featurecache-test",
        "AWS_SECRET_ACCESS_KEY": "featurecache-test-secret",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    for module in ("boto3", "moto.server"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            unavailable(f"the {module.split('.')[0]} package is not installed")
    home = tmp_path_factory.mktemp("s3")
    process, url = _start_moto(home / "moto.log")
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
                patch.delenv(name, raising=False)
            patch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
            for name, value in aws_test_environment(url, home).items():
                patch.setenv(name, value)
            yield S3Endpoint(url)
    finally:
        _stop(process)


@pytest.fixture
def s3_store_url(s3_endpoint: S3Endpoint) -> str:
    """A fresh, empty ``s3://bucket/prefix-<random>`` on the test endpoint."""
    return f"s3://{s3_endpoint.bucket()}/prefix-{uuid.uuid4().hex[:12]}"


def s3_cache(store_url: str, tmp_path: Path, **settings: Any) -> FeatureCache:
    """A cache on the S3 store ``store_url`` (opened as the cache opens one) with a SQLite
    catalog and state under ``tmp_path``; publishes before returning unless ``settings`` say
    otherwise."""
    from featurecache import FeatureCache
    from featurecache.settings import load_settings
    from featurecache.store.factory import open_store

    store = open_store(store_url, load_settings(environ={}, cwd=tmp_path))
    return FeatureCache(
        catalog=f"sqlite:///{tmp_path / 'catalog.db'}",
        store=store,
        state_dir=tmp_path / "state",
        **{"background_publish": False, **settings},
    )
