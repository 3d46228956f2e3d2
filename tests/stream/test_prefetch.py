"""The prefetch plumbing: items in task order, bounded read-ahead, exceptions handed to the
consumer, and no thread left behind however the consumer stops."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from featurecache.stream.prefetch import THREAD_PREFIX, prefetched


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


def _task(start: int, count: int) -> Callable[[], Iterator[int]]:
    return lambda: iter(range(start, start + count))


def test_items_come_in_task_order_whatever_the_workers() -> None:
    tasks = [_task(100 * t, t % 4) for t in range(11)]
    expected = [v for t in range(11) for v in range(100 * t, 100 * t + t % 4)]
    for workers in (1, 2, 3, 16):
        assert list(prefetched(tasks, workers=workers, depth=1)) == expected
    assert _prefetch_threads() == []


def test_no_tasks_start_no_thread() -> None:
    assert list(prefetched([], workers=4, depth=2)) == []


class _Counting:
    """Infinite tasks that count what they produced; the consumer counts what it took."""

    def __init__(self) -> None:
        self.produced = [0, 0]
        self.taken = 0
        self.changed = threading.Condition()

    def task(self, lane: int) -> Callable[[], Iterator[int]]:
        def run() -> Iterator[int]:
            while True:
                with self.changed:
                    self.produced[lane] += 1
                    self.changed.notify_all()
                yield lane

        return run


def test_read_ahead_is_bounded_by_depth_per_worker() -> None:
    depth = 3
    counting = _Counting()
    # Task 0 (worker 0) is consumed forever; task 1 (worker 1) is never reached.
    items = prefetched([counting.task(0), counting.task(1)], workers=2, depth=depth)
    for _ in range(200):
        assert next(items) == 0
        counting.taken += 1
        with counting.changed:
            # Let both workers fill their queues (plus the item each holds while it waits).
            assert counting.changed.wait_for(
                lambda: (
                    counting.produced[0] >= counting.taken + depth + 1
                    and counting.produced[1] >= depth + 1
                ),
                timeout=60,
            )
    assert counting.produced[1] == depth + 1
    assert counting.produced[0] <= counting.taken + depth + 2
    items.close()
    assert _prefetch_threads() == []


def test_closing_early_stops_and_joins_the_workers() -> None:
    counting = _Counting()
    items = prefetched([counting.task(0), counting.task(1)], workers=2, depth=2)
    next(items)
    assert len(_prefetch_threads()) == 2
    items.close()
    assert _prefetch_threads() == []


def test_breaking_out_of_a_loop_leaves_no_thread() -> None:
    counting = _Counting()
    for _ in prefetched([counting.task(0), counting.task(1)], workers=2, depth=2):
        break
    assert _prefetch_threads() == []


def test_a_producer_error_reaches_the_consumer_in_place() -> None:
    def failing() -> Iterator[int]:
        yield 10
        raise ValueError("bad row group")

    items = prefetched([_task(0, 3), failing, _task(20, 3)], workers=2, depth=2)
    assert [next(items) for _ in range(4)] == [0, 1, 2, 10]
    with pytest.raises(ValueError, match="bad row group"):
        next(items)
    assert _prefetch_threads() == []


def test_a_consumer_error_stops_the_workers() -> None:
    counting = _Counting()

    def consume() -> None:
        for _ in prefetched([counting.task(0), counting.task(1)], workers=2, depth=2):
            raise RuntimeError("training step failed")

    with pytest.raises(RuntimeError, match="training step failed"):
        consume()
    assert _prefetch_threads() == []
