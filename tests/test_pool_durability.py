"""Results computed in worker processes are durable when the call returns, and a lease whose
owner process died on this host is taken over at once (issue 16, item 4).

``multiprocessing.Pool`` terminates its workers at ``__exit__``: a publish still running on a
worker's background thread was lost, leaving its lease and a temp file behind, and the next
run waited ``lease_seconds`` for each stale lease. Both on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import select

from featurecache import FeatureCache
from featurecache.catalog import Catalog
from featurecache.catalog.database import run_read
from featurecache.catalog.models import Lease
from featurecache.settings import load_settings
from featurecache.singleflight import LeaseKeeper, acquire_or_wait, new_owner
from featurecache.store.factory import open_store
from tests.e2e import REPO, SESSION, Project

pytestmark = pytest.mark.slow  # process pools and processes that get killed

FEATURE = """
import polars as pl
from featurecache import cached_feature

@cached_feature
def numbers(n: int) -> pl.DataFrame:
    return pl.DataFrame({"x": list(range(n)), "y": [i * 3 for i in range(n)]})
"""

ITEMS = [1_000, 1_001, 1_002, 1_003]

POOL = f"""
import multiprocessing, sys
from feat import numbers

if __name__ == "__main__":
    with multiprocessing.get_context(sys.argv[1]).Pool(4) as pool:
        frames = pool.map(numbers, {ITEMS!r})
    assert [frame.height for frame in frames] == {ITEMS!r}
"""


def check_script(items: list[int]) -> str:
    """A fresh process calling ``numbers`` on ``items`` and printing its session counts."""
    return (
        SESSION
        + f"""
from feat import numbers
for n in {items!r}:
    numbers(n)
print(json.dumps(_session()))
"""
    )


CHECK = check_script(ITEMS)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'proj' / 'cache' / 'catalog.db'}"
    url: str = request.getfixturevalue("pg_catalog_url")
    return url


def lease_rows(url: str) -> list[tuple[str, str]]:
    with Catalog.open(url) as catalog:
        rows = run_read(
            catalog.engine,
            lambda conn: conn.execute(select(Lease.key_id, Lease.owner)).all(),
            what="test: leases",
        )
    return [(row.key_id, row.owner) for row in rows]


def temp_files(project: Project) -> list[str]:
    settings = load_settings(
        environ={},
        cwd=project.root,
        catalog_url=project.catalog_url,
        store_url=project.store_url,
    )
    store = open_store(project.store_url, settings, check=False)
    return [found.name for found in store.iter_temp()]  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_pool_map_stores_every_result(method: str, catalog_url: str, tmp_path: Path) -> None:
    project = Project.create(tmp_path / "proj", catalog_url=catalog_url)
    project.write("feat.py", FEATURE)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(POOL), method],
        cwd=project.root,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # Checked before the fresh run: a stale lease would make it wait (or take it over).
    assert lease_rows(catalog_url) == []
    assert temp_files(project) == []
    assert project.run_json(CHECK) == {"hits": len(ITEMS), "misses": 0}


# -- a lease held by a dead process on this host ------------------------------------------

HOLDER = """
import os, socket, sys, time
from featurecache.catalog import Catalog

catalog = Catalog.open(sys.argv[1])
owner = f"{socket.gethostname()}:{os.getpid()}:deadbeef:1"
assert catalog.try_acquire_lease(sys.argv[2], owner, 3600)
print(owner, flush=True)
time.sleep(3600)
"""


def hold_then_die(url: str, key_id: str) -> str:
    """A process on this host takes ``key_id``'s lease for an hour, then is SIGKILLed (and
    reaped). Returns its owner id."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), url, key_id],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        owner = holder.stdout.readline().strip()
        assert owner, "the holder never took the lease"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    return owner


@pytest.fixture
def open_url(catalog_url: str) -> Iterator[str]:
    Catalog.open(catalog_url).close()  # created (and migrated) before a child uses it
    yield catalog_url


def test_a_waiter_takes_over_at_once_from_a_dead_owner_on_this_host(open_url: str) -> None:
    key = "b" * 64
    dead = hold_then_die(open_url, key)
    with Catalog.open(open_url) as catalog:
        held = catalog.get_lease(key)
        assert held is not None and held.owner == dead and not held.expired
        me = new_owner()
        got = acquire_or_wait(
            catalog,
            key,
            me,
            lease_seconds=3600,
            heartbeat_seconds=600,
            wait_timeout=30,  # the old behaviour: WaitTimeoutError after 30 s
            poll=lambda: catalog.lookup(key),
        )
        assert isinstance(got, LeaseKeeper)
        with got:
            lease = catalog.get_lease(key)
            assert lease is not None and lease.owner == me
        assert catalog.get_lease(key) is None


def test_a_live_owner_on_this_host_is_not_taken_over(open_url: str) -> None:
    from featurecache.errors import WaitTimeoutError

    key = "c" * 64
    alive = f"{socket.gethostname()}:{os.getpid()}:cafebabe:{threading.get_ident()}"
    with Catalog.open(open_url) as catalog:
        assert catalog.try_acquire_lease(key, alive, 3600)
        with pytest.raises(WaitTimeoutError):
            acquire_or_wait(
                catalog,
                key,
                new_owner(),
                lease_seconds=3600,
                heartbeat_seconds=600,
                wait_timeout=0.5,
                poll=lambda: catalog.lookup(key),
            )
        lease = catalog.get_lease(key)
        assert lease is not None and lease.owner == alive
        catalog.release_lease(key, alive)


def test_a_call_computes_at_once_when_the_lease_holder_died(open_url: str, tmp_path: Path) -> None:
    ran: list[int] = []
    cache = FeatureCache(
        open_url,
        tmp_path / "artifacts",
        lease_seconds=3600,
        heartbeat_seconds=600,
        wait_timeout_seconds=30,  # the old behaviour: WaitTimeoutError after 30 s
    )
    try:

        @cache.cached_feature(name="took_over")
        def took_over(n: int) -> pl.DataFrame:
            ran.append(os.getpid())
            return pl.DataFrame({"x": list(range(n))})

        key, _inputs = cache.engine.key_for(took_over, (5,), {})  # type: ignore[arg-type]
        dead = hold_then_die(open_url, key.key_id)
        assert cache.engine.catalog.get_lease(key.key_id) is not None
        assert took_over(5).height == 5
        cache.engine.flush()
        assert ran == [os.getpid()]  # this process computed it
        assert cache.engine.session.misses == 1
        hit = cache.engine.catalog.lookup(key.key_id)
        assert hit is not None and hit.entry.feature == "took_over"
        assert cache.engine.catalog.get_lease(key.key_id) is None
        assert all(owner != dead for _key, owner in lease_rows(open_url))
    finally:
        cache.close()
