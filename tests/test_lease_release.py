"""No code path leaves a lease behind once its holder is done with it (SQLite and PostgreSQL):
a failure right after the lease was acquired gives it back, and a write transaction that was
rerun after its first attempt had committed neither loses nor leaks the lease."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

import pytest
from sqlalchemy import Engine, exc
from sqlalchemy.engine import Connection

from featurecache.catalog import Catalog, database
from featurecache.catalog.records import Hit, LeaseRecord
from featurecache.errors import CatalogError
from featurecache.singleflight import LeaseKeeper, acquire_or_wait, new_owner
from tests.catalog.factories import key_id

KEY = key_id("lease release")
T = TypeVar("T")


def acquire(
    catalog: Catalog,
    poll: Callable[[], Hit | None],
    *,
    lease_seconds: float = 30.0,
    heartbeat_seconds: float = 5.0,
) -> Hit | LeaseKeeper:
    return acquire_or_wait(
        catalog,
        KEY,
        new_owner(),
        lease_seconds=lease_seconds,
        heartbeat_seconds=heartbeat_seconds,
        wait_timeout=30.0,
        poll=poll,
    )


def test_a_failing_poll_right_after_acquiring_gives_the_lease_back(catalog: Catalog) -> None:
    def poll() -> Hit | None:
        raise CatalogError("lookup failed: connection refused")

    with pytest.raises(CatalogError, match="connection refused"):
        acquire(catalog, poll)
    assert catalog.get_lease(KEY) is None


def test_a_keeper_that_cannot_start_gives_the_lease_back(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot_start(self: LeaseKeeper) -> LeaseKeeper:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(LeaseKeeper, "start", cannot_start)
    with pytest.raises(RuntimeError, match="new thread"):
        acquire(catalog, lambda: None)
    assert catalog.get_lease(KEY) is None


def test_invalid_lease_settings_are_refused_before_acquiring(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="heartbeat"):
        acquire(catalog, lambda: None, lease_seconds=1.0, heartbeat_seconds=1.0)
    assert catalog.get_lease(KEY) is None


class CommitThenDrop:
    """``database.transaction`` whose next write commits, then fails as a dropped connection
    would (the client never hears that the COMMIT succeeded), so ``run_write`` reruns it.
    ``through_driver``: on a SQLite catalog, a miss's writes go through the driver first
    (``catalog.prepared``); its next write fails the same way, after its commit, and the
    ordinary path redoes it."""

    def __init__(
        self, real: Callable[[Engine, database.TxMode], AbstractContextManager[Connection]]
    ) -> None:
        self.real = real
        self.armed = True
        self.dropped = 0

    def through_driver(self, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
        driver = catalog._direct
        if driver is None:
            return
        real_write = driver.write

        def write(work: Callable[[sqlite3.Connection], T]) -> T:
            result = real_write(work)
            if self.armed:
                self.armed = False
                self.dropped += 1
                raise sqlite3.OperationalError("disk I/O error")
            return result

        monkeypatch.setattr(driver, "write", write)

    @contextmanager
    def __call__(self, engine: Engine, mode: database.TxMode) -> Iterator[Connection]:
        with self.real(engine, mode) as conn:
            yield conn
        if mode == "write" and self.armed:
            self.armed = False
            self.dropped += 1
            raise exc.OperationalError(
                "COMMIT",
                {},
                Exception("server closed the connection unexpectedly"),
                connection_invalidated=True,
            )


def test_an_acquire_rerun_after_its_commit_keeps_and_then_releases_the_lease(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropping = CommitThenDrop(database.transaction)
    monkeypatch.setattr(database, "transaction", dropping)
    dropping.through_driver(catalog, monkeypatch)
    keeper = acquire(catalog, lambda: None)
    assert dropping.dropped == 1  # the acquire committed, failed and was rerun
    assert isinstance(keeper, LeaseKeeper)  # the rerun found our own row: still ours
    lease = catalog.get_lease(KEY)
    assert lease is not None and lease.owner == keeper.owner
    keeper.release()
    assert catalog.get_lease(KEY) is None


def test_a_release_rerun_after_its_commit_leaves_nothing(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    keeper = acquire(catalog, lambda: None)
    assert isinstance(keeper, LeaseKeeper)
    dropping = CommitThenDrop(database.transaction)
    monkeypatch.setattr(database, "transaction", dropping)
    dropping.through_driver(catalog, monkeypatch)
    keeper.release()
    assert dropping.dropped == 1
    assert catalog.get_lease(KEY) is None


class FlakyRelease:
    """The catalog, with the next ``fail`` releases failing (a brief catalog outage)."""

    def __init__(self, catalog: Catalog, fail: int) -> None:
        self.catalog = catalog
        self.fail = fail

    def try_acquire_lease(self, key_id: str, owner: str, seconds: float) -> bool:
        return self.catalog.try_acquire_lease(key_id, owner, seconds)

    def renew_lease(self, key_id: str, owner: str, seconds: float) -> bool:
        return self.catalog.renew_lease(key_id, owner, seconds)

    def release_lease(self, key_id: str, owner: str) -> None:
        if self.fail > 0:
            self.fail -= 1
            raise CatalogError("releasing a lease failed: sorry, too many clients already")
        self.catalog.release_lease(key_id, owner)

    def get_lease(self, key_id: str) -> LeaseRecord | None:
        return self.catalog.get_lease(key_id)


def test_a_release_that_fails_for_a_moment_is_retried(catalog: Catalog) -> None:
    flaky = FlakyRelease(catalog, fail=2)
    keeper = acquire_or_wait(
        flaky,
        KEY,
        new_owner(),
        lease_seconds=30.0,
        heartbeat_seconds=5.0,
        wait_timeout=30.0,
        poll=lambda: None,
    )
    assert isinstance(keeper, LeaseKeeper)
    keeper.release()  # never raises for the catalog; retries instead of leaving the lease
    assert flaky.fail == 0
    assert catalog.get_lease(KEY) is None
