"""Single-flight leases (SQLite and PostgreSQL): one holder at a time, expiry judged by the
database clock, take-over of an expired lease, renewal fenced by ownership."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.sql import Executable

from featurecache.catalog import Catalog, leases
from featurecache.catalog.database import read
from featurecache.catalog.models import Lease
from featurecache.catalog.records import Hit, UsageEvent
from featurecache.catalog.tx import Params, Tx
from tests.catalog.factories import key_id

KEY = key_id("leased")


def wait_until_expired(catalog: Catalog, key: str, limit: float = 10.0) -> None:
    """Poll the database's own verdict (never the test's clock) until the lease expired."""
    give_up = time.monotonic() + limit
    while True:
        lease = catalog.get_lease(key)
        assert lease is not None
        if lease.expired:
            return
        assert time.monotonic() < give_up, "the lease never expired"
        time.sleep(0.05)


def epoch(catalog: Catalog, key: str) -> int:
    with read(catalog.engine) as conn:
        return int(conn.execute(select(Lease.epoch).where(Lease.key_id == key)).scalar_one())


def test_one_holder_at_a_time(catalog: Catalog) -> None:
    assert catalog.get_lease(KEY) is None
    assert catalog.try_acquire_lease(KEY, "alice", 30)
    assert not catalog.try_acquire_lease(KEY, "bob", 30)
    assert catalog.try_acquire_lease(KEY, "alice", 30)  # the holder may acquire again
    lease = catalog.get_lease(KEY)
    assert lease is not None
    assert (lease.key_id, lease.owner, lease.expired) == (KEY, "alice", False)
    assert catalog.try_acquire_lease(key_id("other key"), "bob", 30)  # leases are per key


def test_expiry_is_computed_by_the_database_clock(catalog: Catalog) -> None:
    before = catalog.now()
    assert catalog.try_acquire_lease(KEY, "alice", 42.5)
    after = catalog.now()
    lease = catalog.get_lease(KEY)
    assert lease is not None
    assert before <= lease.heartbeat_at <= after
    assert lease.expires_at - lease.heartbeat_at == timedelta(seconds=42.5)
    assert lease.expires_at.tzinfo is not None


def test_release_only_by_the_holder(catalog: Catalog) -> None:
    assert catalog.try_acquire_lease(KEY, "alice", 30)
    catalog.release_lease(KEY, "bob")
    assert not catalog.try_acquire_lease(KEY, "bob", 30)
    catalog.release_lease(KEY, "alice")
    assert catalog.get_lease(KEY) is None
    assert catalog.try_acquire_lease(KEY, "bob", 30)
    catalog.release_lease(key_id("never leased"), "bob")


def test_an_expired_lease_is_taken_over_and_its_old_owner_cannot_renew(catalog: Catalog) -> None:
    assert catalog.try_acquire_lease(KEY, "alice", 0.3)
    assert not catalog.try_acquire_lease(KEY, "bob", 30)
    wait_until_expired(catalog, KEY)
    assert [lease.owner for lease in catalog.expired_leases()] == ["alice"]
    assert catalog.try_acquire_lease(KEY, "bob", 30)
    assert epoch(catalog, KEY) == 2
    lease = catalog.get_lease(KEY)
    assert lease is not None and (lease.owner, lease.expired) == ("bob", False)
    assert not catalog.renew_lease(KEY, "alice", 30)  # fenced: it must not publish
    assert catalog.renew_lease(KEY, "bob", 30)
    assert not catalog.try_acquire_lease(KEY, "carol", 30)
    assert catalog.expired_leases() == []


def test_renewing_extends_the_lease(catalog: Catalog) -> None:
    assert catalog.try_acquire_lease(KEY, "alice", 0.5)
    first = catalog.get_lease(KEY)
    assert catalog.renew_lease(KEY, "alice", 60)
    renewed = catalog.get_lease(KEY)
    assert first is not None and renewed is not None
    assert renewed.expires_at > first.expires_at and renewed.heartbeat_at >= first.heartbeat_at
    assert not renewed.expired
    assert not catalog.renew_lease(key_id("gone"), "alice", 60)


def test_an_owner_may_renew_its_own_expired_lease_nobody_took(catalog: Catalog) -> None:
    assert catalog.try_acquire_lease(KEY, "alice", 0.2)
    wait_until_expired(catalog, KEY)
    assert catalog.renew_lease(KEY, "alice", 30)
    assert not catalog.try_acquire_lease(KEY, "bob", 30)


def test_expired_leases_are_listed_and_deleted(catalog: Catalog) -> None:
    assert catalog.try_acquire_lease(key_id(1), "alice", 0.2)
    assert catalog.try_acquire_lease(key_id(2), "bob", 600)
    wait_until_expired(catalog, key_id(1))
    assert [lease.key_id for lease in catalog.expired_leases()] == [key_id(1)]
    assert catalog.delete_expired_leases() == 1
    assert catalog.get_lease(key_id(1)) is None
    assert catalog.get_lease(key_id(2)) is not None
    assert catalog.delete_expired_leases() == 0


class _ReleasedBeforeRead:
    """A transaction in which the holder's release commits between our INSERT (refused: the
    key was held) and our read of the holder (PostgreSQL READ COMMITTED sees it)."""

    def __init__(self, tx: Tx, holder: str) -> None:
        self.tx, self.holder, self.dialect_name = tx, holder, tx.dialect_name

    def execute(self, statement: Executable, params: Params) -> int:
        return self.tx.execute(statement, params)

    def first(self, statement: Executable, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        leases.release(self.tx, params["lease_key"], self.holder)
        return self.tx.first(statement, params)

    def lookup(self, key_id: str) -> Hit | None:
        return self.tx.lookup(key_id)

    def record_events(self, events: Sequence[UsageEvent]) -> None:
        self.tx.record_events(events)


@pytest.mark.parametrize("driver", [True, False])
def test_a_lease_released_before_the_read_is_taken(catalog: Catalog, driver: bool) -> None:
    """The key is free again: the acquire inserts anew and says so (it holds the lease)."""
    assert catalog.try_acquire_lease(KEY, "alice", 30)
    taken = catalog._write(
        lambda tx: leases.try_acquire(_ReleasedBeforeRead(tx, "alice"), KEY, "bob", 30),
        what="acquiring a lease",
        direct=driver,
    )
    lease = catalog.get_lease(KEY)
    assert lease is not None and lease.owner == "bob"
    assert taken


@pytest.mark.parametrize("driver", [True, False])
def test_an_insert_counts_the_rows_it_inserted(catalog: Catalog, driver: bool) -> None:
    """What an acquire and a publish decide by: an insert-if-absent's row count, 1 then 0."""

    def insert(owner: str) -> bool:
        return catalog._write(
            lambda tx: leases._insert_new(tx, KEY, owner, 30), what="t", direct=driver
        )

    assert [insert("alice"), insert("bob"), insert("alice")] == [True, False, False]
