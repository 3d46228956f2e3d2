"""Background publishing: a miss hands its result back while the artifact is written, made
durable and committed on one background thread. The result must not change meanwhile: polars
and pyarrow results are immutable, a pandas result is published from a copy-on-write snapshot,
and what was written is re-fingerprinted before it is committed.

Invariants kept: the catalog row is committed only after the file is durable (the job runs the
same ``CacheEngine.publish`` as a synchronous miss); a read of a key that is still being
published waits for it; the process waits for every pending publish at exit.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from featurecache.cache import CacheEngine, PublishJob

log = logging.getLogger("featurecache")

_open_publishers: weakref.WeakSet[Publisher] = weakref.WeakSet()


def _close_open_publishers() -> None:
    for publisher in list(_open_publishers):
        publisher.close()


# Pending publishes must finish before concurrent.futures' own exit hook, after which no
# thread pool accepts work (a publish to S3 uploads its parts through one): threading's exit
# hooks run before atexit's, last registered first, and concurrent.futures.thread registered
# its hook when it was imported above. atexit is the fallback where that hook is missing.
try:
    threading._register_atexit(_close_open_publishers)  # type: ignore[attr-defined]
except (AttributeError, RuntimeError):
    atexit.register(_close_open_publishers)
# A forked child must not wait at exit for its parent's publishes: they run in the parent.
os.register_at_fork(after_in_child=_open_publishers.clear)


class Publisher:
    def __init__(self, engine: CacheEngine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._pending: dict[str, Future[Any]] = {}
        self._executor: ThreadPoolExecutor | None = None

    def submit(self, job: PublishJob) -> None:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="featurecache-publish")
                _open_publishers.add(self)
            future = self._executor.submit(self._run, job)
            self._pending[job.key.key_id] = future
        future.add_done_callback(functools.partial(self._done, job.key.key_id))

    def _run(self, job: PublishJob) -> None:
        try:
            self._engine.publish(job)
        except Exception as exc:
            log.warning(
                "featurecache: could not publish %s (key %s): %s; it will be recomputed next time",
                job.feature.name,
                job.key.key_id[:12],
                exc,
            )
            raise

    def _done(self, key_id: str, future: Future[Any]) -> None:
        with self._lock:
            if self._pending.get(key_id) is future:
                del self._pending[key_id]

    def wait_for(self, key_id: str) -> None:
        """Block until a pending publish of ``key_id`` (if any) has finished."""
        with self._lock:
            future = self._pending.get(key_id)
        if future is not None:
            future.exception()  # waits; the failure was already logged

    def flush(self) -> None:
        """Block until every pending publish has finished."""
        with self._lock:
            futures = list(self._pending.values())
        for future in futures:
            future.exception()

    def close(self) -> None:
        self.flush()
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
            _open_publishers.discard(self)
