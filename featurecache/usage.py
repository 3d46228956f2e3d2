"""What this process's calls did: per-process session statistics, and usage events written to
the catalog off the hit path.

Hits are queued and written in batches from one daemon thread (a write costs ~1 ms on SQLite
and several on a busy PostgreSQL, which a hit should not pay). Flushed every ``interval``
seconds, on ``flush()`` (``why`` and the CLI call it), and at exit (``background``). A batch
the catalog refuses is kept and retried with the next one; what still cannot be written at
exit, or beyond ``max_pending`` events, is reported with its count, never dropped silently:
``gc --unused-for`` and ``--max-size`` read the last-use times these events set.

Timestamps come from the database clock at flush time, at most ``interval`` after the call,
which is well inside any GC grace period.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from featurecache import background

if TYPE_CHECKING:
    from featurecache.catalog import Catalog
    from featurecache.catalog.records import UsageEvent

log = logging.getLogger("featurecache")

CallKind = Literal["hit", "miss"]


@dataclass(frozen=True)
class FeatureTotals:
    """One feature's calls in this process."""

    hits: int = 0
    misses: int = 0
    seconds_avoided: float = 0.0  # the recorded compute time of every hit's result
    compute_seconds: float = 0.0  # time spent in the body on misses

    def to_json(self) -> dict[str, float | int]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "seconds_avoided": self.seconds_avoided,
            "compute_seconds": self.compute_seconds,
        }


@dataclass(frozen=True)
class SessionSnapshot:
    """What ``featurecache.session_stats()`` returns: this process's calls so far, in total
    and per feature (a copy: later calls do not change it)."""

    hits: int
    misses: int
    seconds_avoided: float
    compute_seconds: float
    features: Mapping[str, FeatureTotals]

    @property
    def calls(self) -> int:
        return self.hits + self.misses

    def to_json(self) -> dict[str, object]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "seconds_avoided": self.seconds_avoided,
            "compute_seconds": self.compute_seconds,
            "features": {name: totals.to_json() for name, totals in self.features.items()},
        }


@dataclass
class SessionStats:
    """What this process's calls did (the catalog keeps the durable history). Bounded: counts
    per feature, not a list of calls. ``parent`` (the process-wide totals, ``PROCESS``)
    receives every count too, so one cache's numbers and the whole process's both exist."""

    hits: int = 0
    misses: int = 0
    seconds_avoided: float = 0.0
    compute_seconds: float = 0.0
    by_feature: Counter[tuple[str, CallKind]] = field(default_factory=Counter)
    parent: SessionStats | None = field(default=None, repr=False)
    _seconds: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: CallKind, compute_seconds: float, feature: str) -> None:
        with self._lock:
            self.by_feature[feature, kind] += 1
            avoided, computed = self._seconds.get(feature, (0.0, 0.0))
            if kind == "hit":
                self.hits += 1
                self.seconds_avoided += compute_seconds
                self._seconds[feature] = (avoided + compute_seconds, computed)
            else:
                self.misses += 1
                self.compute_seconds += compute_seconds
                self._seconds[feature] = (avoided, computed + compute_seconds)
        if self.parent is not None:
            self.parent.add(kind, compute_seconds, feature)

    def snapshot(self) -> SessionSnapshot:
        with self._lock:
            names = sorted({name for name, _kind in self.by_feature})
            features = {
                name: FeatureTotals(
                    hits=self.by_feature[name, "hit"],
                    misses=self.by_feature[name, "miss"],
                    seconds_avoided=self._seconds.get(name, (0.0, 0.0))[0],
                    compute_seconds=self._seconds.get(name, (0.0, 0.0))[1],
                )
                for name in names
            }
            return SessionSnapshot(
                self.hits, self.misses, self.seconds_avoided, self.compute_seconds, features
            )

    def reset(self) -> None:
        with self._lock:
            self.hits = self.misses = 0
            self.seconds_avoided = self.compute_seconds = 0.0
            self.by_feature.clear()
            self._seconds.clear()


# Every call of every cache in this process (``featurecache.session_stats()``). A forked child
# starts from zero: its parent's calls are the parent's.
PROCESS = SessionStats()


def _reset_in_child() -> None:
    PROCESS._lock = threading.Lock()  # a lock held at fork time would stay held in the child
    PROCESS.reset()


os.register_at_fork(after_in_child=_reset_in_child)


def session_stats() -> SessionSnapshot:
    """This process's feature calls so far: hits, misses, the compute seconds the hits
    avoided and the seconds the misses spent computing, in total and per feature."""
    return PROCESS.snapshot()


class UsageRecorder:
    """Writes usage events to the catalog in batches, from one daemon thread."""

    def __init__(
        self,
        catalog: Catalog,
        interval: float = 0.2,
        max_pending: int = 100_000,
        *,
        give_up_on_failure: bool = False,
    ) -> None:
        self._catalog = catalog
        self._interval = interval
        self._max_pending = max_pending
        # A read-only cache (``read_only``): a catalog that refuses a batch is taken to be
        # read-only too, and no more events are queued or written in this process.
        self._give_up_on_failure = give_up_on_failure
        self._disabled = False
        self._reset()

    def _reset(self) -> None:
        self._pending: list[UsageEvent] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._failing = False
        self._write_lock = threading.Lock()

    def add(self, event: UsageEvent) -> None:
        if self._disabled:
            return
        with self._cond:
            if self._closed:
                self._write([event], final=True)
                return
            self._pending.append(event)
            if len(self._pending) > self._max_pending:
                lost = len(self._pending) - self._max_pending
                del self._pending[:lost]
                log.warning(
                    "featurecache: %d usage events could not be recorded (the catalog has not "
                    "accepted any for a while); last-use times of their artifacts are older "
                    "than they should be",
                    lost,
                )
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="featurecache-usage", daemon=True
                )
                self._thread.start()
                background.register(self)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait(self._interval)
                if self._closed:
                    return
            self.flush()

    def flush(self, *, final: bool = False) -> None:
        """Write every queued event now."""
        with self._write_lock:
            with self._cond:
                batch, self._pending = self._pending, []
            self._write(batch, final=final)

    def _write(self, batch: list[UsageEvent], *, final: bool) -> None:
        if not batch:
            return
        try:
            self._catalog.record_events(batch)
        except Exception as exc:  # noqa: BLE001 - usage statistics never fail a feature call
            if self._give_up_on_failure:
                if not self._disabled:
                    self._disabled = True
                    log.warning(
                        "featurecache: the catalog does not accept usage events (%s); this "
                        "read-only cache stops recording them",
                        exc,
                    )
                with self._cond:
                    self._pending.clear()
                return
            if final:
                log.warning(
                    "featurecache: could not record %d usage events: %s; last-use times of "
                    "their artifacts are older than they should be",
                    len(batch),
                    exc,
                )
                return
            if not self._failing:
                log.warning(
                    "featurecache: could not record %d usage events (%s); will retry",
                    len(batch),
                    exc,
                )
            self._failing = True
            with self._cond:
                self._pending[:0] = batch  # retried with the next batch, oldest first
            return
        if self._failing:
            log.warning("featurecache: usage events are being recorded again")
            self._failing = False

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.flush(final=True)
        background.unregister(self)

    def forget_after_fork(self) -> None:
        """In a forked child: the queued events are the parent's, who writes them."""
        self._reset()
