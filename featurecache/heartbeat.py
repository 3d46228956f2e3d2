"""One heartbeat thread per process that renews every lease this process holds.

A ``singleflight.LeaseKeeper`` used to start a thread of its own for each miss and join it
at release. ``Thread.start`` waits until the new thread has been scheduled, and ``join``
until it has woken and ended: on a loaded machine those two waits cost more than the rest of
a tiny miss. Here the keepers register with the process's one ``Heartbeat``, whose daemon
thread (started on first use, again after a fork, where threads do not survive) sleeps until
the earliest renewal is due, renews what is due, and sleeps again. A keeper is forgotten
without waiting for the thread: a renewal already under way when its lease is released is
harmless, since a renewal only updates a lease row this owner still holds (``… WHERE key_id
= :key AND owner = :me``), so after the release it updates nothing.

Renewals run one after another on the one thread: a catalog that answers slowly delays the
renewals of other leases too. Each keeper still measures its own deadline on the monotonic
clock (``LeaseKeeper.lost``), so a delayed renewal fences its owner exactly as a stuck
thread of its own would.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from typing import Protocol

log = logging.getLogger(__name__)


class Renewable(Protocol):
    """What the heartbeat needs from a held lease (``LeaseKeeper`` provides it)."""

    heartbeat_seconds: float

    def renew(self) -> bool:
        """Renew once; False when the lease is gone for good (taken): stop renewing it."""
        ...


class Heartbeat:
    """Renews each registered lease every ``heartbeat_seconds`` (its own) until forgotten."""

    def __init__(self) -> None:
        self._lock = threading.Condition(threading.Lock())
        # (due on the monotonic clock, registration number, keeper); forgotten keepers are
        # dropped from the heap when they come due.
        self._due: list[tuple[float, int, Renewable]] = []
        self._held: set[int] = set()
        self._numbers = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, keeper: Renewable) -> int:
        """Start renewing ``keeper``; the number ``forget`` takes."""
        with self._lock:
            number = next(self._numbers)
            due = time.monotonic() + keeper.heartbeat_seconds
            earliest = self._due[0][0] if self._due else None
            heapq.heappush(self._due, (due, number, keeper))
            self._held.add(number)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="featurecache-heartbeat", daemon=True
                )
                self._thread.start()
            elif earliest is None or due < earliest:
                self._lock.notify()
            return number

    def forget(self, number: int) -> None:
        """Stop renewing (no wait: a renewal under way may still end, harmlessly)."""
        with self._lock:
            self._held.discard(number)

    def holding(self) -> int:
        """How many leases are renewed now (for tests)."""
        with self._lock:
            return len(self._held)

    def _next_due(self) -> tuple[int, Renewable]:
        """Wait until a registered keeper is due; it and its number."""
        with self._lock:
            while True:
                while self._due and self._due[0][1] not in self._held:
                    heapq.heappop(self._due)
                if not self._due:
                    self._lock.wait()
                    continue
                due, number, keeper = self._due[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._lock.wait(wait)
                    continue
                heapq.heappop(self._due)
                return number, keeper

    def _run(self) -> None:
        while True:
            number, keeper = self._next_due()
            try:
                keep = keeper.renew()
            except Exception:  # one keeper's bug must not stop the others' renewals
                log.exception("renewing a lease failed")
                keep = True  # its own deadline fences it if this goes on
            with self._lock:
                if keep and number in self._held:
                    due = time.monotonic() + keeper.heartbeat_seconds
                    heapq.heappush(self._due, (due, number, keeper))
                else:
                    self._held.discard(number)


_heartbeat = Heartbeat()


def heartbeat() -> Heartbeat:
    """This process's heartbeat."""
    return _heartbeat


def _after_fork_in_child() -> None:
    # The parent's thread does not exist here, and the leases it renews are not the child's.
    global _heartbeat
    _heartbeat = Heartbeat()


os.register_at_fork(after_in_child=_after_fork_in_child)
