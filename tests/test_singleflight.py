"""The single-flight protocol over a real catalog (SQLite and PostgreSQL): the heartbeat
keeps a lease past its duration, a lost lease is noticed, waiters get the published result,
take over from a crashed owner, or time out."""

from __future__ import annotations

import multiprocessing
import os
import re
import socket
import time

import pytest
from sqlalchemy import update

from featurecache.catalog import Catalog
from featurecache.catalog.database import run_write
from featurecache.catalog.models import Lease
from featurecache.catalog.records import Hit, LeaseRecord
from featurecache.errors import CatalogError, LeaseLostError, WaitTimeoutError
from featurecache.singleflight import LeaseKeeper, acquire_or_wait, new_owner
from tests.catalog import workers
from tests.catalog.factories import artifact_id, key_id, publication

CTX = multiprocessing.get_context("fork")
KEY = key_id("single-flight")


def eventually(condition: object, limit: float = 10.0) -> None:
    give_up = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < give_up, "condition never became true"
        time.sleep(0.02)


def acquire(catalog: Catalog, key: str = KEY, **options: float) -> Hit | LeaseKeeper:
    settings = {"lease_seconds": 30.0, "heartbeat_seconds": 5.0, "wait_timeout": 30.0} | options
    return acquire_or_wait(
        catalog, key, new_owner(), poll=lambda: catalog.lookup(key), feature="sessions", **settings
    )


def test_owner_ids_say_where_the_owner_runs() -> None:
    owner = new_owner()
    assert re.fullmatch(rf"{re.escape(socket.gethostname())}:{os.getpid()}:[0-9a-f]{{8}}", owner)
    assert new_owner() != owner


def test_the_first_caller_gets_the_lease_and_gives_it_back(catalog: Catalog) -> None:
    keeper = acquire(catalog)
    assert isinstance(keeper, LeaseKeeper)
    with keeper:
        lease = catalog.get_lease(KEY)
        assert lease is not None and lease.owner == keeper.owner
        keeper.check()
    assert catalog.get_lease(KEY) is None
    assert keeper.lost  # released: it must not publish any more
    keeper.release()  # idempotent


@pytest.mark.slow  # sleeps past the lease
def test_the_heartbeat_keeps_a_lease_past_its_duration(catalog: Catalog) -> None:
    keeper = acquire(catalog, lease_seconds=1.0, heartbeat_seconds=0.1)
    assert isinstance(keeper, LeaseKeeper)
    with keeper:
        started = time.monotonic()
        while time.monotonic() - started < 2.0:  # two lease durations
            assert not catalog.try_acquire_lease(KEY, "intruder", 30)
            lease = catalog.get_lease(KEY)
            assert lease is not None and not lease.expired
            keeper.check()
            time.sleep(0.2)
    assert catalog.try_acquire_lease(KEY, "intruder", 30)


def test_an_owner_whose_lease_was_taken_knows_it(catalog: Catalog) -> None:
    keeper = acquire(catalog, lease_seconds=1.0, heartbeat_seconds=0.1)
    assert isinstance(keeper, LeaseKeeper)
    with keeper:
        # What a waiter's take-over looks like to the owner (e.g. after it stalled).
        run_write(
            catalog.engine,
            lambda conn: conn.execute(
                update(Lease).where(Lease.key_id == KEY).values(owner="thief")
            ),
            what="steal",
        )
        eventually(lambda: keeper.lost)
        with pytest.raises(LeaseLostError) as lost:
            keeper.check()
        assert lost.value.key_id == KEY
    lease = catalog.get_lease(KEY)
    assert lease is not None and lease.owner == "thief"  # releasing did not free theirs


class Outage:
    """The catalog, with renewals failing while ``down`` (an injected catalog outage)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.down = False

    def try_acquire_lease(self, key_id: str, owner: str, seconds: float) -> bool:
        return self.catalog.try_acquire_lease(key_id, owner, seconds)

    def renew_lease(self, key_id: str, owner: str, seconds: float) -> bool:
        if self.down:
            raise CatalogError("renewing a lease failed: connection refused")
        return self.catalog.renew_lease(key_id, owner, seconds)

    def release_lease(self, key_id: str, owner: str) -> None:
        self.catalog.release_lease(key_id, owner)

    def get_lease(self, key_id: str) -> LeaseRecord | None:
        return self.catalog.get_lease(key_id)


@pytest.mark.slow  # waits out a lease
def test_an_owner_that_cannot_renew_in_time_stops(catalog: Catalog) -> None:
    outage = Outage(catalog)
    keeper = acquire_or_wait(
        outage,
        KEY,
        new_owner(),
        lease_seconds=0.6,
        heartbeat_seconds=0.1,
        wait_timeout=5,
        poll=lambda: catalog.lookup(KEY),
    )
    assert isinstance(keeper, LeaseKeeper)
    with keeper:
        keeper.check()
        outage.down = True
        eventually(lambda: keeper.lost)
        with pytest.raises(LeaseLostError):
            keeper.check()


@pytest.mark.slow  # an owner process
def test_a_waiter_gets_what_the_owner_publishes(catalog: Catalog) -> None:
    acquired = CTX.Event()
    owner = CTX.Process(target=workers.hold_then_publish, args=(catalog.url, acquired, "k", 0.5))
    owner.start()
    assert acquired.wait(timeout=60)
    key = publication("k").entry.key_id
    got = acquire(catalog, key, wait_timeout=60)
    owner.join(timeout=60)
    assert owner.exitcode == 0
    assert isinstance(got, Hit)
    assert got.artifact.artifact_id == artifact_id("published-by-the-owner")
    assert catalog.get_lease(key) is None


@pytest.mark.slow  # a crashing owner process
def test_a_waiter_takes_over_from_a_crashed_owner(catalog: Catalog) -> None:
    acquired = CTX.Event()
    crasher = CTX.Process(target=workers.acquire_then_crash, args=(catalog.url, acquired, KEY, 0.5))
    crasher.start()
    assert acquired.wait(timeout=60)
    crasher.join(timeout=60)
    held = catalog.get_lease(KEY)
    assert held is not None and held.owner.startswith("crashed-")
    keeper = acquire(catalog, wait_timeout=60)
    assert isinstance(keeper, LeaseKeeper)
    with keeper:
        lease = catalog.get_lease(KEY)
        assert lease is not None and lease.owner == keeper.owner


def test_waiting_too_long_raises_and_names_the_holder(catalog: Catalog) -> None:
    assert catalog.try_acquire_lease(KEY, "slow-host:1:abcd", 60)
    with pytest.raises(WaitTimeoutError) as waited:
        acquire(catalog, wait_timeout=0.3)
    assert waited.value.owner == "slow-host:1:abcd"
    assert waited.value.feature == "sessions"
    assert waited.value.key_id == KEY


def test_a_result_published_just_before_we_got_the_lease_is_used(catalog: Catalog) -> None:
    pub = publication("k")
    catalog.publish(*pub.args())  # its owner published and released before we arrived
    got = acquire(catalog, pub.entry.key_id)
    assert isinstance(got, Hit) and got.entry.key_id == pub.entry.key_id
    assert catalog.get_lease(pub.entry.key_id) is None


def test_the_heartbeat_must_be_shorter_than_the_lease(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="heartbeat"):
        LeaseKeeper(catalog, KEY, "me", lease_seconds=1.0, heartbeat_seconds=1.0)
