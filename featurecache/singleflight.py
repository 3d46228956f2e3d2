"""The single-flight protocol: concurrent callers of one key compute it once.

The first caller takes the key's lease in the catalog and computes; the others poll for the
published result with jittered exponential backoff. The owner renews its lease from the
process's one heartbeat thread (``heartbeat.py``); a crashed owner stops renewing, its lease
expires (by the database clock) and one waiter takes over. An owner on the waiter's own host whose process no longer exists
(a killed pool worker) is taken over at once rather than after its lease expires
(``owner_is_dead``). An owner that cannot renew in time fences itself: ``check()``
raises ``LeaseLostError`` so it does not publish (restic's self-fencing). Even a late publish
would be harmless, since publishing is insert-if-absent: the lease only saves work.

``engine.CacheEngine._miss`` uses it like this (one owner id per process and thread)::

    outcome = acquire_or_wait(catalog, key_id, f"{new_owner()}:{thread_id}",
                              lease_seconds=60, heartbeat_seconds=10, wait_timeout=3600,
                              poll=lambda: catalog.lookup(key_id))
    if isinstance(outcome, LeaseKeeper):   # ours, held and heartbeating: compute
        job = PublishJob(..., lease=outcome)
        publisher.publish(job)             # outcome.check() before the commit, then release()
    else:                                  # a Hit another process published meanwhile
        value = load(outcome)
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self

from featurecache.background import process_gone
from featurecache.catalog.records import Hit, LeaseRecord
from featurecache.errors import FeatureCacheError, LeaseLostError, WaitTimeoutError
from featurecache.heartbeat import heartbeat

log = logging.getLogger(__name__)

FIRST_POLL_SECONDS = 0.02
MAX_POLL_SECONDS = 1.0


class LeaseCatalog(Protocol):
    """What single-flight needs from the catalog (``Catalog`` provides it)."""

    def try_acquire_lease(self, key_id: str, owner: str, seconds: float) -> bool: ...
    def take_over_lease(self, key_id: str, dead_owner: str, owner: str, seconds: float) -> bool: ...
    def renew_lease(self, key_id: str, owner: str, seconds: float) -> bool: ...
    def release_lease(self, key_id: str, owner: str) -> None: ...
    def get_lease(self, key_id: str) -> LeaseRecord | None: ...


class NoLease:
    """The lease of a ``wait=False`` call: there is none to check or release."""

    def check(self) -> None:
        return None

    def release(self) -> None:
        return None

    def row(self) -> tuple[str, str] | None:
        return None

    def released_by_caller(self) -> None:
        return None


def new_owner() -> str:
    """A lease owner id that says where the owner runs: ``hostname:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_is_dead(owner: str) -> bool:
    """True if ``owner`` (``hostname:pid:…``, see ``new_owner``) runs on this host and its
    process no longer exists (or is a zombie nobody has reaped yet).

    False whenever unsure: another host, an id in another format, this very process, a
    process that exists under another user, Windows (where ``os.kill`` would terminate it).
    A pid reused since by an unrelated process reads as alive: the lease is then waited out
    until it expires, as before. Two hosts (containers) that share a hostname but not a pid
    namespace would see each other's live owners as dead: the taken owner then finds at its
    next heartbeat that it lost the lease and does not publish (work is duplicated, results
    stay correct)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    return process_gone(int(pid_text))


def _check_timing(lease_seconds: float, heartbeat_seconds: float) -> None:
    if not 0 < heartbeat_seconds < lease_seconds:
        raise ValueError("heartbeat_seconds must be positive and shorter than the lease")


class LeaseKeeper:
    """A held lease, renewed every ``heartbeat_seconds`` by the process's heartbeat thread
    (``heartbeat.py``) until released.

    The lease counts as lost when a renewal finds that someone else holds the key, or when
    no renewal has succeeded for ``lease_seconds - 1.5 * heartbeat_seconds`` (the lease may
    expire before the next heartbeat could save it): measured on this process's monotonic
    clock, so a stuck heartbeat thread or an unreachable catalog also counts.
    """

    def __init__(
        self,
        catalog: LeaseCatalog,
        key_id: str,
        owner: str,
        *,
        lease_seconds: float,
        heartbeat_seconds: float,
    ) -> None:
        _check_timing(lease_seconds, heartbeat_seconds)
        self.catalog = catalog
        self.key_id = key_id
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        # Renewal deadline, with room for one more heartbeat and a slow round trip.
        self._margin = max(lease_seconds - 1.5 * heartbeat_seconds, heartbeat_seconds)
        self._last_renewed = time.monotonic()  # the caller has just acquired it
        self._taken = False
        self._number: int | None = None  # registered with the heartbeat under this number
        self._released = False

    def start(self) -> Self:
        """Start heartbeating (idempotent): the process's one heartbeat thread renews it."""
        if self._number is None:
            self._number = heartbeat().add(self)
        return self

    def renew(self) -> bool:
        """Renew once (called by the heartbeat); False once another process holds the key."""
        try:
            renewed = self.catalog.renew_lease(self.key_id, self.owner, self.lease_seconds)
        except FeatureCacheError as error:
            # The catalog is unreachable: keep trying until the deadline says lost.
            log.warning("could not renew the lease on %s: %s", self.key_id[:12], error)
            return True
        if self._released:
            return False  # released while this renewal ran: it updated nothing
        if not renewed:
            self._taken = True
            log.warning("lost the lease on %s to another process", self.key_id[:12])
            return False
        self._last_renewed = time.monotonic()
        return True

    @property
    def lost(self) -> bool:
        """True once this process can no longer trust that it holds the lease."""
        if self._released:
            return True
        return self._taken or time.monotonic() - self._last_renewed > self._margin

    def check(self) -> None:
        """Raise ``LeaseLostError`` unless the lease is still ours (call before publishing)."""
        if self.lost:
            raise LeaseLostError(self.key_id)

    def row(self) -> tuple[str, str] | None:
        """``(key_id, owner)`` of this lease's catalog row, for a caller that deletes it in its
        own transaction (a batched publish); None once released."""
        return None if self._released else (self.key_id, self.owner)

    def released_by_caller(self) -> None:
        """The caller's committed transaction deleted the row (``row``): stop heartbeating,
        and do not delete it again (idempotent)."""
        if self._released:
            return
        self._released = True
        if self._number is not None:
            heartbeat().forget(self._number)

    def release(self) -> None:
        """Stop heartbeating and give the lease up (idempotent; never raises for a catalog
        failure). A failed release is retried for up to one heartbeat interval (the catalog
        layer retries only what it knows to be transient): given up, the lease blocks the key
        until it expires."""
        if self._released:
            return
        self._released = True
        if self._number is not None:
            heartbeat().forget(self._number)  # no wait for the heartbeat thread
        give_up = time.monotonic() + self.heartbeat_seconds
        delay = FIRST_POLL_SECONDS
        while True:
            try:
                self.catalog.release_lease(self.key_id, self.owner)
                return
            except FeatureCacheError as error:
                if time.monotonic() + delay > give_up:
                    log.warning("could not release the lease on %s: %s", self.key_id[:12], error)
                    return
                log.debug("retrying the release of %s: %s", self.key_id[:12], error)
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, MAX_POLL_SECONDS)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _hand_over(
    catalog: LeaseCatalog,
    key_id: str,
    owner: str,
    poll: Callable[[], Hit | None],
    *,
    lease_seconds: float,
    heartbeat_seconds: float,
) -> Hit | LeaseKeeper:
    """Just after acquiring: the Hit if the previous owner published and released before we
    got here (the lease given back), else our heartbeating keeper. Whatever fails in between
    (the poll, starting the heartbeat) gives the lease back before it propagates: nobody else
    could release it, and it would block the key for ``lease_seconds``."""
    keeper = LeaseKeeper(
        catalog, key_id, owner, lease_seconds=lease_seconds, heartbeat_seconds=heartbeat_seconds
    )
    try:
        # The previous owner may have published and released just before we got here.
        hit = poll()
        if hit is None:
            return keeper.start()
    except BaseException:
        keeper.release()  # stops a heartbeat that did start; never raises for the catalog
        raise
    catalog.release_lease(key_id, owner)
    return hit


def acquire_or_wait(
    catalog: LeaseCatalog,
    key_id: str,
    owner: str,
    *,
    lease_seconds: float,
    heartbeat_seconds: float,
    wait_timeout: float,
    poll: Callable[[], Hit | None],
    feature: str = "",
    first_poll: float = FIRST_POLL_SECONDS,
    max_poll: float = MAX_POLL_SECONDS,
) -> Hit | LeaseKeeper:
    """Either a Hit that someone else published while we waited, or a held, heartbeating
    ``LeaseKeeper`` if we should compute (the key was free, its owner's lease expired, or
    its owner's process on this host is gone). Raises ``WaitTimeoutError`` after
    ``wait_timeout`` seconds of waiting."""
    _check_timing(lease_seconds, heartbeat_seconds)  # before a lease exists, not after
    deadline = time.monotonic() + wait_timeout
    delay = first_poll
    lease: LeaseRecord | None = None
    may_be_free = True  # the caller has just missed: the key is most likely free
    dead_owner: str | None = None  # the holder, if its process on this host is gone
    while True:
        # Waiters only write (try to acquire) when the lease looks free, expired or held by
        # a dead process, so a herd of them polls with reads, which SQLite's WAL serves
        # concurrently.
        taken = dead_owner is not None and catalog.take_over_lease(
            key_id, dead_owner, owner, lease_seconds
        )
        if taken:
            log.info("took over the lease on %s from %s (process gone)", key_id[:12], dead_owner)
        if taken or (may_be_free and catalog.try_acquire_lease(key_id, owner, lease_seconds)):
            return _hand_over(
                catalog,
                key_id,
                owner,
                poll,
                lease_seconds=lease_seconds,
                heartbeat_seconds=heartbeat_seconds,
            )
        hit = poll()
        if hit is not None:
            return hit
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            holder = lease.owner if lease is not None else "another process"
            raise WaitTimeoutError(feature or "a feature", key_id, wait_timeout, holder)
        # Jitter spreads a herd of waiters; the cap bounds how late a waiter notices.
        time.sleep(min(delay * random.uniform(0.5, 1.5), remaining))
        delay = min(delay * 2, max_poll)
        lease = catalog.get_lease(key_id)
        may_be_free = lease is None or lease.expired
        dead_owner = (
            lease.owner
            if lease is not None and not lease.expired and owner_is_dead(lease.owner)
            else None
        )
