"""Timing helpers shared by the small benchmark programs (``path_strings``, ``observed_inputs``,
``object_inputs``, ``input_mutation``): medians, never means, so one burst of load from another
process does not move a figure."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    """Median over ``repeat`` runs of the seconds one call of ``fn`` takes."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def per_call_us(fn: Callable[[], object], *, calls: int = 2000, repeats: int = 5) -> float:
    """Median over ``repeats`` of the mean time of one call out of ``calls``, in microseconds."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)
