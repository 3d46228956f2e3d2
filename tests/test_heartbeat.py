"""The process's one heartbeat thread: leases held at once are all renewed by it (no thread
started or joined per lease), a forgotten lease is not renewed again (even when it was
forgotten during its renewal), one keeper's failure does not stop the others', and a forked
child gets a heartbeat of its own."""

from __future__ import annotations

import multiprocessing
import threading

from featurecache import heartbeat as heartbeat_module
from featurecache.catalog import Catalog
from featurecache.heartbeat import Heartbeat, heartbeat
from featurecache.singleflight import LeaseKeeper
from tests.catalog.factories import key_id
from tests.test_singleflight import acquire, eventually


class Counter:
    """A lease stand-in that counts its renewals; ``gate`` (when given) holds a renewal."""

    def __init__(self, seconds: float, *, gate: threading.Event | None = None) -> None:
        self.heartbeat_seconds = seconds
        self.renewals = 0
        self.gate = gate
        self.in_renewal = threading.Event()
        self.fail = False

    def renew(self) -> bool:
        self.renewals += 1
        self.in_renewal.set()
        if self.gate is not None:
            assert self.gate.wait(timeout=60)
        if self.fail:
            raise RuntimeError("a bug in one keeper")
        return True


def test_many_leases_start_no_thread_each_and_are_all_renewed(catalog: Catalog) -> None:
    acquire(catalog, key_id("warm-up")).release()  # the heartbeat thread may start here, once
    before = threading.active_count()
    held_before = heartbeat().holding()  # leases other tests left to expire, if any
    keepers = [acquire(catalog, key_id(f"held {i}"), heartbeat_seconds=0.05) for i in range(20)]
    assert all(isinstance(k, LeaseKeeper) for k in keepers)
    assert threading.active_count() <= before + 1  # not one thread per lease
    first = {
        k.key_id: lease.heartbeat_at
        for k in keepers
        if isinstance(k, LeaseKeeper) and (lease := catalog.get_lease(k.key_id)) is not None
    }
    assert len(first) == 20

    def all_renewed() -> bool:
        leases = [catalog.get_lease(key) for key in first]
        return all(
            lease is not None and lease.heartbeat_at > first[lease.key_id] for lease in leases
        )

    eventually(all_renewed, limit=120)
    for keeper in keepers:
        assert isinstance(keeper, LeaseKeeper)
        keeper.check()
        keeper.release()
    assert all(catalog.get_lease(key) is None for key in first)
    assert heartbeat().holding() == held_before


def test_a_released_lease_is_not_renewed_back(catalog: Catalog) -> None:
    keeper = acquire(catalog, heartbeat_seconds=0.05)
    assert isinstance(keeper, LeaseKeeper)
    clock = acquire(catalog, key_id("clock"), heartbeat_seconds=0.05)
    assert isinstance(clock, LeaseKeeper)
    keeper.release()
    lease = catalog.get_lease(clock.key_id)
    assert lease is not None
    seen = [lease.heartbeat_at]

    def clock_renewed_twice() -> bool:
        now = catalog.get_lease(clock.key_id)
        assert now is not None
        if now.heartbeat_at > seen[-1]:
            seen.append(now.heartbeat_at)
        return len(seen) >= 3

    eventually(clock_renewed_twice, limit=120)  # the heartbeat went round twice since the release
    assert catalog.get_lease(keeper.key_id) is None
    clock.release()


def test_forgotten_during_its_renewal_it_is_not_renewed_again() -> None:
    beat = Heartbeat()
    gate = threading.Event()
    held = Counter(0.01, gate=gate)
    clock = Counter(0.01)
    number = beat.add(held)
    assert held.in_renewal.wait(timeout=60)
    beat.forget(number)  # returns at once, while the renewal is under way
    gate.set()
    clock_number = beat.add(clock)
    eventually(lambda: clock.renewals >= 5, limit=120)
    assert held.renewals == 1
    assert beat.holding() == 1
    beat.forget(clock_number)


def test_one_keeper_failing_does_not_stop_the_others() -> None:
    beat = Heartbeat()
    broken, healthy = Counter(0.01), Counter(0.01)
    broken.fail = True
    numbers = [beat.add(broken), beat.add(healthy)]
    eventually(lambda: broken.renewals >= 3 and healthy.renewals >= 3, limit=120)
    for number in numbers:
        beat.forget(number)


def test_a_later_earlier_lease_wakes_the_heartbeat() -> None:
    beat = Heartbeat()
    slow, quick = Counter(3600), Counter(0.01)
    numbers = [beat.add(slow)]  # the thread now sleeps for an hour
    numbers.append(beat.add(quick))
    eventually(lambda: quick.renewals >= 3, limit=120)
    assert slow.renewals == 0
    for number in numbers:
        beat.forget(number)


def _child_renews(done: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    counter = Counter(0.01)
    heartbeat().add(counter)
    eventually(lambda: counter.renewals >= 3, limit=120)
    done.set()


def test_a_forked_child_gets_its_own_heartbeat() -> None:
    parent = heartbeat()
    number = parent.add(Counter(3600))  # the parent's thread exists and holds something
    context = multiprocessing.get_context("fork")
    done = context.Event()
    child = context.Process(target=_child_renews, args=(done,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0 and done.is_set()
    assert heartbeat_module.heartbeat() is parent
    parent.forget(number)
