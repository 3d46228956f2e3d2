"""Ordered, bounded, parallel prefetch: run several producers in background threads and hand
their items to one consumer in task order.

Task ``i`` runs on worker thread ``i % workers``; each worker runs its tasks one after another
and puts their items into its own queue of ``depth`` slots. The consumer reads the queues in
task order, so at most ``workers`` tasks are being produced at once and at most
``workers * depth`` items wait in memory, whatever the consumer does.

Closing the iterator (``close()``, ``break`` in a ``for`` loop followed by the generator being
collected, an exception in the consumer) stops the workers: each checks a stop flag between
items and gives up a ``put`` that waits on a full queue, and the iterator joins them before it
returns. An exception raised by a producer is re-raised in the consumer, at the place of the
item it failed to produce. No pyarrow here: the items can be anything.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

THREAD_PREFIX = "featurecache-prefetch"
# How often a worker blocked on a full queue looks at the stop flag. Only bounds how long
# closing the iterator takes; a consumer that keeps reading never waits for it.
_STOP_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class _TaskEnd:
    """Put after a task's last item."""


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_END = _TaskEnd()


class _Stopped(Exception):
    """Raised inside a worker when the consumer has gone away."""


@dataclass
class _Worker(Generic[T]):
    tasks: list[Callable[[], Iterator[T]]]
    slots: queue.Queue[T | _TaskEnd | _Failed]
    stop: threading.Event

    def run(self) -> None:
        try:
            for task in self.tasks:
                if self.stop.is_set():
                    return
                for item in task():
                    self._put(item)
                self._put(_END)
        except _Stopped:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            try:
                self._put(_Failed(exc))
            except _Stopped:
                return

    def _put(self, item: T | _TaskEnd | _Failed) -> None:
        while True:
            if self.stop.is_set():
                raise _Stopped
            try:
                self.slots.put(item, timeout=_STOP_POLL_SECONDS)
                return
            except queue.Full:
                continue


def prefetched(
    tasks: Sequence[Callable[[], Iterator[T]]], *, workers: int, depth: int
) -> Generator[T, None, None]:
    """Every item of every task, in task order, produced ahead by up to ``workers`` threads
    holding at most ``depth`` finished items each."""
    if not tasks:
        return
    count = max(1, min(workers, len(tasks)))
    stop = threading.Event()
    lanes: list[_Worker[T]] = [
        _Worker(list(tasks[i::count]), queue.Queue(maxsize=max(1, depth)), stop)
        for i in range(count)
    ]
    threads = [
        threading.Thread(target=lane.run, name=f"{THREAD_PREFIX}-{i}", daemon=True)
        for i, lane in enumerate(lanes)
    ]
    for thread in threads:
        thread.start()
    try:
        for index in range(len(tasks)):
            slots = lanes[index % count].slots
            while True:
                item = slots.get()
                if isinstance(item, _TaskEnd):
                    break
                if isinstance(item, _Failed):
                    raise item.error
                yield item
    finally:
        stop.set()
        for thread in threads:
            thread.join()
