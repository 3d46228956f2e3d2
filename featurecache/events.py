"""Usage events off the hit path: hits are queued and written to the catalog in batches from
one daemon thread (a write costs ~1 ms on SQLite and several on a busy PostgreSQL, which a hit
should not pay). Flushed every ``interval`` seconds, on ``flush()`` (``why`` and the CLI call
it), and at exit before the interpreter stops threads.

Timestamps come from the database clock at flush time, at most ``interval`` after the call,
which is well inside any GC grace period.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from featurecache.catalog.catalog import Catalog
    from featurecache.catalog.queries import UsageEvent

log = logging.getLogger("featurecache")

_open_recorders: weakref.WeakSet[EventRecorder] = weakref.WeakSet()


def _close_open_recorders() -> None:
    for recorder in list(_open_recorders):
        recorder.close()


try:  # before concurrent.futures and atexit hooks, like the publisher's
    threading._register_atexit(_close_open_recorders)  # type: ignore[attr-defined]
except (AttributeError, RuntimeError):
    atexit.register(_close_open_recorders)


class EventRecorder:
    def __init__(self, catalog: Catalog, interval: float = 0.2) -> None:
        self._catalog = catalog
        self._interval = interval
        self._pending: list[UsageEvent] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._warned = False
        self._write_lock = threading.Lock()

    def add(self, event: UsageEvent) -> None:
        with self._cond:
            if self._closed:
                self._write([event])
                return
            self._pending.append(event)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="featurecache-events", daemon=True
                )
                self._thread.start()
                _open_recorders.add(self)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait(self._interval)
                if self._closed:
                    return
            self.flush()

    def _take(self) -> list[UsageEvent]:
        with self._cond:
            batch, self._pending = self._pending, []
        return batch

    def flush(self) -> None:
        """Write every queued event now."""
        with self._write_lock:
            self._write(self._take())

    def _write(self, batch: list[UsageEvent]) -> None:
        if not batch:
            return
        try:
            self._catalog.record_events(batch)
        except Exception as exc:  # noqa: BLE001 - usage statistics never fail a feature call
            if not self._warned:
                self._warned = True
                log.warning("featurecache: could not record %d usage events: %s", len(batch), exc)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.flush()
        _open_recorders.discard(self)
