"""Races between processes on one catalog (SQLite and PostgreSQL): creating a new catalog,
publishing the same key, acquiring and taking over the same lease. No transient database
error ("database is locked", serialization failure, deadlock) may reach a caller."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any

import pytest

from featurecache.catalog import Catalog, migrate
from tests.catalog import workers
from tests.catalog.factories import artifact_id, key_id, publication
from tests.catalog.test_leases import wait_until_expired
from tests.fixtures_pg import PgSchemas

pytestmark = pytest.mark.slow  # races of several processes each

# fork: children start in milliseconds and open their own catalogs (nothing inherited is used).
CTX = multiprocessing.get_context("fork")
PROCESSES = 6


def race(
    target: Callable[..., None],
    url: str,
    extra: Callable[[int], tuple[Any, ...]],
    n: int = PROCESSES,
) -> list[Any]:
    """Start ``n`` processes ``target(url, barrier, queue, *extra(i))`` that meet at a barrier
    and then act at once; returns what each reported (and fails on any error)."""
    barrier = CTX.Barrier(n)
    queue = CTX.Queue()
    processes = [
        CTX.Process(target=target, args=(url, barrier, queue, *extra(i))) for i in range(n)
    ]
    for process in processes:
        process.start()
    results = [queue.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    errors = [detail for status, detail in results if status == "error"]
    assert errors == []
    return [detail for _, detail in results]


def test_many_processes_create_a_new_sqlite_catalog_at_once(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'catalog.db'}"
    assert race(workers.open_new_catalog, url, lambda i: (), n=8) == [url] * 8
    assert migrate.current(url) == migrate.head()


@pytest.mark.postgres
def test_many_processes_create_a_new_postgres_catalog_at_once(pg_schemas: PgSchemas) -> None:
    url = pg_schemas.url(create=False)  # not even the schema exists yet
    assert race(workers.open_new_catalog, url, lambda i: (), n=8) == [url] * 8
    assert migrate.current(url) == migrate.head()


def test_concurrent_publishes_of_one_key_agree_on_the_first(catalog_url: str) -> None:
    Catalog.open(catalog_url).close()
    winners = race(workers.publish_same_key, catalog_url, lambda i: (i,))
    assert len(set(winners)) == 1
    assert winners[0] in {artifact_id(f"variant-{i}") for i in range(PROCESSES)}
    with Catalog.open(catalog_url) as catalog:
        hit = catalog.lookup(publication("shared").entry.key_id)
        assert hit is not None and hit.artifact.artifact_id == winners[0]
        # Every loser's artifact was recorded too (its file exists), with no entry.
        assert len(catalog.list_artifacts()) == PROCESSES


def test_exactly_one_of_many_acquirers_gets_a_free_lease(catalog_url: str) -> None:
    Catalog.open(catalog_url).close()
    key = key_id("contended")
    won = race(workers.acquire, catalog_url, lambda i: (key, f"owner-{i}"))
    assert won.count(True) == 1


def test_exactly_one_of_many_waiters_takes_over_an_expired_lease(catalog_url: str) -> None:
    key = key_id("expired")
    with Catalog.open(catalog_url) as catalog:
        assert catalog.try_acquire_lease(key, "crashed", 0.2)
        wait_until_expired(catalog, key)
    won = race(workers.acquire, catalog_url, lambda i: (key, f"waiter-{i}"))
    assert won.count(True) == 1
    with Catalog.open(catalog_url) as catalog:
        lease = catalog.get_lease(key)
        assert lease is not None and lease.owner.startswith("waiter-")
