"""What a user sees of each call: one ``logging`` record per call on the ``featurecache``
logger, the ``FEATURECACHE_LOG`` handler for people who never configure ``logging``, and a
one-line summary of the session at exit.

* A hit: ``hit sessionize 47a070f7 in 4 ms (saved 12.3 s)``, INFO (the artifact's short id). Built only when the
  logger is enabled for INFO (``enabled()``, one cached check per call): a hit never queries
  anything for its log line.
* A miss: ``miss user_features: helper `clean_ts` in `util.py` changed; computed in 8.1 s``,
  INFO. The reason is the caller's when it knows it (a file the body read changed, a
  recompute asked for, an unreadable artifact); otherwise the key is compared with the
  feature's newest stored keys, fetched with one bounded query, and with the keys the cache
  computed lately in this process (``RecentKeys``; ``ops.miss_reason``).

Every record carries the call as ``record.featurecache`` (a ``CallEvent``) for handlers that
want fields rather than text.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from featurecache.usage import PROCESS

if TYPE_CHECKING:
    from featurecache.catalog import Catalog
    from featurecache.catalog.records import EntryRecord
    from featurecache.keys import CacheKey
    from featurecache.usage import SessionSnapshot

log = logging.getLogger("featurecache")

# How many of a feature's newest keys a miss's reason is searched in.
MISS_SCAN_LIMIT = 50


@dataclass(frozen=True)
class CallEvent:
    """One call, as attached to its log record (``record.featurecache``)."""

    kind: Literal["hit", "miss"]
    feature: str
    key_id: str | None
    artifact_id: str | None  # a hit's artifact; None on a miss
    seconds: float  # a hit: the whole call; a miss: the body
    seconds_avoided: float  # a hit: the recorded compute time of its result; a miss: 0
    reason: str | None  # a miss: why


def enabled() -> bool:
    """Whether call records would be emitted (``logging`` caches this per level)."""
    return log.isEnabledFor(logging.INFO)


def seconds_text(seconds: float) -> str:
    """``4 ms``, ``8.1 s``, ``12 min``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.0f} min"


def hit(feature: str, key_id: str, artifact_id: str, seconds: float, avoided: float) -> None:
    event = CallEvent("hit", feature, key_id, artifact_id, seconds, avoided, None)
    log.info(
        "hit %s %s in %s (saved %s)",
        feature,
        artifact_id[:8],
        seconds_text(seconds),
        seconds_text(avoided),
        extra={"featurecache": event},
    )


def miss(feature: str, key_id: str | None, reason: str, seconds: float) -> None:
    event = CallEvent("miss", feature, key_id, None, seconds, 0.0, reason)
    log.info(
        "miss %s: %s; computed in %s",
        feature,
        reason,
        seconds_text(seconds),
        extra={"featurecache": event},
    )


class RecentKeys:
    """The keys one cache computed lately in this process, per feature (bounded): a miss is
    compared with them too, since their entries may not be committed yet (a background
    publish) and waiting for those publishes would make logging slow down every miss."""

    def __init__(self, per_feature: int = 8, features: int = 256) -> None:
        self._per_feature = per_feature
        self._features = features
        self._keys: dict[str, deque[EntryRecord]] = {}
        self._lock = threading.Lock()

    def add(self, feature: str, key: CacheKey) -> None:
        from featurecache.catalog.records import EntryRecord

        entry = EntryRecord(
            key_id=key.key_id,
            feature=feature,
            code_digest=key.code.digest,
            artifact_id="",
            return_kind="polars",
            components=key.components,
        )
        with self._lock:
            keys = self._keys.pop(feature, None) or deque(maxlen=self._per_feature)
            keys.appendleft(entry)
            self._keys[feature] = keys  # most recently used feature last
            if len(self._keys) > self._features:
                del self._keys[next(iter(self._keys))]

    def of(self, feature: str) -> list[EntryRecord]:
        """Newest first."""
        with self._lock:
            return list(self._keys.get(feature, ()))


def miss_reason(catalog: Catalog, feature: str, key: CacheKey, recent: RecentKeys) -> str:
    """Why ``key`` missed, from the feature's newest stored keys (one bounded query) and the
    keys this cache computed lately. Every change is named at DEBUG, the first few at INFO."""
    from featurecache.errors import CatalogError
    from featurecache.ops.miss_reason import explain_miss

    try:
        stored = catalog.newest_entries(feature, MISS_SCAN_LIMIT)
    except CatalogError as exc:
        return f"reason unknown (the catalog could not be read: {exc})"
    return explain_miss(
        feature,
        key.key_id,
        key.code.digest,
        key.components,
        stored,
        pending=recent.of(feature),
        all_changes=log.isEnabledFor(logging.DEBUG),
    )


# -- FEATURECACHE_LOG: a handler for people who never configure logging ---------------------


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted (a notebook or a test
    may replace it after the handler was attached)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        """The stream is always the current ``sys.stderr``."""


class _Formatter(logging.Formatter):
    """``featurecache: <message>``, without doubling a prefix some messages already have."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if text.startswith("featurecache") else f"featurecache: {text}"


_LEVELS = {"info": logging.INFO, "debug": logging.DEBUG}
_handler: _Stderr | None = None
_configure_lock = threading.Lock()


def configure(level: str) -> None:
    """Apply ``FEATURECACHE_LOG``: ``info``/``debug`` attach one stderr handler to the
    ``featurecache`` logger (once per process, whatever the number of caches; the more
    verbose level wins) and stop its records from reaching the root logger's handlers too,
    which would print each line twice. ``off`` changes nothing: records still propagate to
    whatever ``logging`` configuration the program has."""
    global _handler
    wanted = _LEVELS.get(level)
    if wanted is None:
        return
    with _configure_lock:  # two threads opening two caches attach one handler
        if _handler is None:
            _handler = _Stderr()
            _handler.setFormatter(_Formatter("%(message)s"))
            log.addHandler(_handler)
            log.propagate = False
        if log.level == logging.NOTSET or wanted < log.level:
            log.setLevel(wanted)
            _handler.setLevel(wanted)


def summary_line(stats: SessionSnapshot | None = None) -> str | None:
    """``featurecache: 12 calls this session: 9 hits (saved 41.2 s), 3 misses (computed in
    10.3 s)`` for ``stats`` (default: this process's), or None when there was no call."""
    stats = PROCESS.snapshot() if stats is None else stats
    if not stats.calls:
        return None
    calls = "call" if stats.calls == 1 else "calls"
    hits = "hit" if stats.hits == 1 else "hits"
    misses = "miss" if stats.misses == 1 else "misses"
    return (
        f"featurecache: {stats.calls} {calls} this session: {stats.hits} {hits} (saved "
        f"{seconds_text(stats.seconds_avoided)}), {stats.misses} {misses} (computed in "
        f"{seconds_text(stats.compute_seconds)})"
    )


_refresh_names: set[str] = set()


def expect_refreshed(names: tuple[str, ...]) -> None:
    """Note the features a cache's refresh setting names, so that a name no feature called
    has (a typo refreshes nothing, silently) is reported at exit."""
    _refresh_names.update(name for name in names if name != "*")


def unmatched_refresh_line(stats: SessionSnapshot | None = None) -> str | None:
    """The warning for refresh names that no feature called in this process has, or None."""
    stats = PROCESS.snapshot() if stats is None else stats
    unmatched = sorted(_refresh_names - set(stats.features))
    if not unmatched:
        return None
    names = ", ".join(f"`{name}`" for name in unmatched)
    called = ", ".join(sorted(stats.features)) or "none"
    which = "names" if len(unmatched) == 1 else "name"
    has = "has" if len(unmatched) == 1 else "have"
    return (
        f"FEATURECACHE_REFRESH {which} {names}, which no feature called in this process "
        f"{has} (called: {called}); check the name"
    )


def _summary_at_exit() -> None:
    if (warning := unmatched_refresh_line()) is not None:
        log.warning(warning)
    if enabled() and (line := summary_line()) is not None:
        log.info(line)


# Registered after ``logging``'s own exit hook (``logging.shutdown``), so it runs before it.
atexit.register(_summary_at_exit)
