"""Measuring inside a scenario process: timers, peak memory, and the one result line.

Peak memory: on Linux the kernel's high-water mark (``VmHWM``) can be reset to the current RSS
by writing ``5`` to ``/proc/self/clear_refs``; we reset it just before the measured call, so
``VmHWM - VmRSS(before)`` is exactly what the call added at its peak. Where that is refused we
fall back to ``getrusage(RUSAGE_SELF).ru_maxrss`` minus the RSS before the call, which is only
right when the call sets a new process-wide peak (it reports ``fallback: true`` then).
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULT_MARK = "@@BENCH "


def _status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    """Current resident set size (falls back to the peak where /proc is missing)."""
    value = _status_bytes("VmRSS")
    if value is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return value


class PeakMemory:
    """What a block of code added to the process's peak RSS."""

    def __init__(self) -> None:
        self.before = 0
        self.peak_delta = 0
        self.fallback = False

    def start(self) -> None:
        gc.collect()
        self.before = rss_bytes()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.fallback = _status_bytes("VmHWM") is None
        except OSError:
            self.fallback = True

    def stop(self) -> int:
        peak = None if self.fallback else _status_bytes("VmHWM")
        if peak is None:
            self.fallback = True
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.peak_delta = max(peak - self.before, 0)
        return self.peak_delta


@contextmanager
def timer(into: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        into[name] = time.perf_counter() - start


def frame_bytes(frame: Any) -> int:
    """In-memory size of a polars/pandas frame or an Arrow table."""
    if hasattr(frame, "estimated_size"):
        return int(frame.estimated_size())
    if hasattr(frame, "memory_usage"):
        return int(frame.memory_usage(deep=True, index=True).sum())
    if hasattr(frame, "nbytes"):
        return int(frame.nbytes)
    return 0


def emit(result: dict[str, Any]) -> None:
    """Print the scenario's result as one marked JSON line (the runner ignores other output)."""
    sys.stdout.write(RESULT_MARK + json.dumps(result, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def instrument(obj: Any, names: list[str], into: dict[str, float]) -> None:
    """Wrap ``obj``'s bound methods ``names`` so each adds its wall time to ``into[name]``.

    Diagnostics only (where a call's time goes); a name the object lacks is skipped, so a
    renamed internal never breaks the benchmark, it only drops a line from the breakdown."""
    for name in names:
        method = getattr(obj, name, None)
        if not callable(method):
            continue

        def timed(*args: Any, _method: Any = method, _name: str = name, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                into[_name] = into.get(_name, 0.0) + time.perf_counter() - started

        try:
            setattr(obj, name, timed)
        except AttributeError:  # slotted or read-only: no breakdown for this one
            continue
