"""Helpers for the team-cache end-to-end tests (tests/test_team_*.py): the two backends a team
runs on, a user project pointed at them, racing subprocesses behind a start barrier, and what
the catalog and the store hold afterwards.

Backends: "sqlite+local" (a SQLite file and a directory in tmp) and "postgres+s3" (a fresh,
empty PostgreSQL schema from ``tests.fixtures_pg`` and a fresh ``s3://bucket/prefix`` on the
moto server of ``tests.fixtures_s3``, whose endpoint and dummy credentials every child gets).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from featurecache.catalog import Catalog
from featurecache.catalog.database import run_read
from featurecache.catalog.models import CacheEntry, Lease
from featurecache.catalog.records import ArtifactRecord
from featurecache.settings import load_settings, local_tier_dir
from featurecache.store.base import ArtifactStore, StoredObject
from featurecache.store.factory import open_store
from tests.e2e import SESSION, Project, Running

SQLITE_LOCAL = "sqlite+local"
POSTGRES_S3 = "postgres+s3"
BACKENDS = [
    SQLITE_LOCAL,
    pytest.param(POSTGRES_S3, marks=[pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]),
]

# Short leases so that a take-over after a SIGKILL happens within seconds.
FAST_LEASES = {"FEATURECACHE_LEASE_SECONDS": "3", "FEATURECACHE_HEARTBEAT_SECONDS": "0.5"}

# Script prelude for racing children: open the cache (catalog created or checked, store probed)
# before the barrier, so that what races is the call, then wait for the start file.
BARRIER = (
    SESSION
    + """
import hashlib, os, time
import featurecache

def _ready_then_wait():
    featurecache.default_cache().engine
    open(os.path.join(os.environ["TEAM_READY_DIR"], str(os.getpid())), "w").close()
    while not os.path.exists(os.environ["TEAM_START_FILE"]):
        time.sleep(0.005)

def _digest(frame):
    return hashlib.sha256(frame.write_csv().encode()).hexdigest()
"""
)

# A user module's helper counting executions: one line per execution, appended with O_APPEND
# (atomic for short writes), so concurrent processes never lose a count.
COUNTER = """
import os
import shutil

CALLS = "calls.log"

def _count(name):
    fd = os.open(CALLS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{name} {os.getpid()}\\n".encode())
    finally:
        os.close(fd)

def _executions(name):
    try:
        with open(CALLS) as handle:
            return sum(1 for line in handle if line.split()[0] == name)
    except FileNotFoundError:
        return 0
"""


def frame_digest(frame: Any) -> str:
    """The digest the children print (``_digest``): sha256 of the frame as CSV."""
    return hashlib.sha256(frame.write_csv().encode()).hexdigest()


@dataclass
class TeamBackend:
    """One backend under test, with a user project pointed at it."""

    name: str
    project: Project
    aws_env: dict[str, str]

    @property
    def is_s3(self) -> bool:
        return self.project.store_url.startswith("s3://")

    def env(self, **extra: str) -> dict[str, str]:
        return {**self.aws_env, **extra}

    def run_json(self, script: str, **env: str) -> Any:
        return self.project.run_json(script, **self.env(**env))

    def run(self, script: str, **env: str) -> Any:
        return self.project.run(script, check=False, timeout=300, **self.env(**env))

    def start(self, script: str, **env: str) -> Running:
        return self.project.start(script, **self.env(**env))

    # -- what the cache holds -------------------------------------------------------------

    @contextmanager
    def catalog(self) -> Iterator[Catalog]:
        catalog = Catalog.open(self.project.catalog_url)
        try:
            yield catalog
        finally:
            catalog.close()

    def store(self) -> ArtifactStore:
        settings = load_settings(
            environ={},
            cwd=self.project.root,
            catalog_url=self.project.catalog_url,
            store_url=self.project.store_url,
        )
        return open_store(self.project.store_url, settings, check=False)

    def drop_local_tier(self) -> None:
        """Empty this host's local tier (``store.tier``): the next hit downloads again."""
        folder = local_tier_dir(load_settings(environ={}, cwd=self.project.root))
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def entries(self) -> list[tuple[str, str, str]]:
        """Every cache entry row: (feature, key_id, artifact_id)."""
        with self.catalog() as catalog:
            rows = run_read(
                catalog.engine,
                lambda conn: conn.execute(
                    select(CacheEntry.feature, CacheEntry.key_id, CacheEntry.artifact_id)
                ).all(),
                what="test: entries",
            )
        return sorted((row.feature, row.key_id, row.artifact_id) for row in rows)

    def leases(self) -> list[str]:
        """Key ids that still have a lease row (a finished race leaves none)."""
        return sorted(key_id for key_id, _owner in self.lease_owners())

    def lease_owners(self) -> list[tuple[str, str]]:
        """Every lease row as (key_id, owner): the owner names the host and pid holding it."""
        with self.catalog() as catalog:
            rows = run_read(
                catalog.engine,
                lambda conn: conn.execute(select(Lease.key_id, Lease.owner)).all(),
                what="test: leases",
            )
        return sorted((row.key_id, row.owner) for row in rows)

    def artifacts(self) -> list[ArtifactRecord]:
        """Live artifact rows."""
        with self.catalog() as catalog:
            return [record for record, _features in catalog.list_artifacts()]

    def usage(self) -> dict[str, tuple[int, int]]:
        """(hits, misses) per feature from the catalog's usage log."""
        with self.catalog() as catalog:
            _names, usage, _stored, _total = catalog.usage_stats()
        return {u.feature: (u.hits, u.misses) for u in usage if u.feature is not None}

    def stored(self) -> list[StoredObject]:
        """Artifacts visible in the store (quarantine and temp objects excluded)."""
        return list(self.store().iter_artifacts())

    def artifact_frame(self, artifact_id: str) -> Any:
        import polars as pl

        return pl.read_parquet(io.BytesIO(bytes(self.store().read_bytes(artifact_id))))


def team_backend(request: pytest.FixtureRequest, tmp_path: Path) -> TeamBackend:
    """The backend named by ``request.param``, with an empty catalog and store."""
    root = tmp_path / "proj"
    if request.param == SQLITE_LOCAL:
        return TeamBackend(SQLITE_LOCAL, Project.create(root), {})
    catalog_url: str = request.getfixturevalue("pg_catalog_url")  # a new, empty schema
    store_url: str = request.getfixturevalue("s3_store_url")  # a new prefix on moto
    request.getfixturevalue("s3_endpoint")  # has set AWS_* for this session
    aws_env = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
    assert aws_env.get("AWS_ENDPOINT_URL", "").startswith("http://127.0.0.1:")
    project = Project.create(root, catalog_url=catalog_url, store_url=store_url)
    return TeamBackend(POSTGRES_S3, project, aws_env)


def race(team: TeamBackend, script: str, processes: int, **env: str) -> list[Running]:
    """Start ``processes`` copies of ``script`` (which calls ``_ready_then_wait()`` from
    ``BARRIER``), wait until every one is ready, then let them all go at once."""
    ready = team.project.root / ".ready"
    ready.mkdir(exist_ok=True)
    start_file = team.project.root / ".start"
    env = {"TEAM_READY_DIR": str(ready), "TEAM_START_FILE": str(start_file), **env}
    running = [team.start(script, **env) for _ in range(processes)]
    deadline = time.monotonic() + 240
    while len(list(ready.iterdir())) < processes:
        for child in running:
            if child.process.poll() is not None:
                out = child.finish()
                stop(running)
                raise AssertionError(f"a racer exited before the start:\n{out.stderr}")
        if time.monotonic() > deadline:
            stop(running)
            raise AssertionError("the racers never all got ready")
        time.sleep(0.05)
    start_file.touch()
    return running


def stop(running: list[Running]) -> None:
    for child in running:
        if child.process.poll() is None:
            child.process.kill()
            child.process.wait()


def executions(team: TeamBackend, name: str | None = None) -> list[str]:
    """The pids that executed (``name``'s) function body, from the O_APPEND side file."""
    path = team.project.root / "calls.log"
    if not path.exists():
        return []
    lines = [line.split() for line in path.read_text().splitlines()]
    return [pid for feature, pid in lines if name is None or feature == name]


def clean_stderr(stderr: str) -> None:
    """Nothing went wrong where the user would see it: no traceback, no raw lock or
    serialization error, nothing from deep inside boto3, no lease left behind (a process
    that gives up releasing its lease says so)."""
    bad_words = (
        "Traceback",
        "database is locked",
        "SerializationFailure",
        "botocore",
        "boto3",
        "could not release the lease",
    )
    for bad in bad_words:
        assert bad not in stderr, f"{bad!r} reached the user:\n{stderr}"


def wait_for_file(path: Path, children: list[Running], limit: float = 120) -> str:
    """The content of ``path`` once a child has written it (non-empty)."""
    deadline = time.monotonic() + limit
    while True:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        for child in children:
            if child.process.poll() is not None:
                out = child.finish()
                raise AssertionError(f"a child ended before writing {path.name}:\n{out.stderr}")
        assert time.monotonic() < deadline, f"{path.name} was never written"
        time.sleep(0.02)
