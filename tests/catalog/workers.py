"""Entry points of the processes that the concurrency tests start (module level, so any
multiprocessing start method can find them). Each reports through a queue: a value, or the
repr of the exception it hit, so the test sees every failure, "database is locked" included."""

from __future__ import annotations

import os
import time
from typing import Any

from featurecache.catalog import Catalog
from tests.catalog.factories import publication


def _report(queue: Any, work: Any) -> None:
    try:
        queue.put(("ok", work()))
    except BaseException as error:  # noqa: BLE001 (everything must reach the test)
        queue.put(("error", f"{type(error).__name__}: {error}"))


def open_new_catalog(url: str, barrier: Any, queue: Any) -> None:
    def work() -> str:
        barrier.wait()
        with Catalog.open(url) as catalog:
            return catalog.url

    _report(queue, work)


def publish_same_key(url: str, barrier: Any, queue: Any, index: int) -> None:
    def work() -> str:
        with Catalog.open(url) as catalog:
            mine = publication("shared", artifact=f"variant-{index}")
            barrier.wait()
            return catalog.publish(*mine.args()).artifact.artifact_id

    _report(queue, work)


def acquire(url: str, barrier: Any, queue: Any, key_id: str, owner: str) -> None:
    def work() -> bool:
        with Catalog.open(url) as catalog:
            barrier.wait()
            return catalog.try_acquire_lease(key_id, owner, 30.0)

    _report(queue, work)


def hold_then_publish(url: str, acquired: Any, key: str, delay: float) -> None:
    """Take the lease on ``key``, say so, compute for ``delay`` seconds, publish, release."""
    with Catalog.open(url) as catalog:
        mine = publication(key, artifact="published-by-the-owner")
        owner = f"owner-{os.getpid()}"
        assert catalog.try_acquire_lease(mine.entry.key_id, owner, 30.0)
        acquired.set()
        time.sleep(delay)
        catalog.publish(*mine.args())
        catalog.release_lease(mine.entry.key_id, owner)


def acquire_then_crash(url: str, acquired: Any, key_id: str, lease_seconds: float) -> None:
    """Take a lease and die without releasing it."""
    catalog = Catalog.open(url)
    assert catalog.try_acquire_lease(key_id, f"crashed-{os.getpid()}", lease_seconds)
    acquired.set()
    os._exit(0)
