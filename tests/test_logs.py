"""One log record per call (README "Seeing and controlling the cache"): a hit with what it
saved, a miss with its reason; the hit path queries nothing for its line; the
FEATURECACHE_LOG handler is attached once; the session summary line. On SQLite and PostgreSQL."""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from featurecache import FeatureCache, logs
from featurecache.logs import CallEvent
from featurecache.usage import FeatureTotals, SessionSnapshot

LOGGER = logging.getLogger("featurecache")


@pytest.fixture(autouse=True)
def _restore_logger() -> Iterator[None]:
    """``logs.configure`` changes the process's ``featurecache`` logger: put it back."""
    state = (LOGGER.level, LOGGER.propagate, list(LOGGER.handlers), logs._handler)
    yield
    LOGGER.setLevel(state[0])
    LOGGER.propagate = state[1]
    LOGGER.handlers[:] = state[2]
    logs._handler = state[3]


@pytest.fixture
def cache(any_clean_catalog_url: str, tmp_path: Path) -> Iterator[FeatureCache]:
    with FeatureCache(
        catalog=any_clean_catalog_url,
        store=tmp_path / "artifacts",
        state_dir=tmp_path / "state",
    ) as opened:
        yield opened


def _calls(caplog: pytest.LogCaptureFixture) -> list[tuple[str, CallEvent]]:
    out = [
        (record.getMessage(), record.featurecache)
        for record in caplog.records
        if hasattr(record, "featurecache")
    ]
    caplog.clear()
    return out


def test_every_call_logs_one_record_saying_hit_or_miss_and_why(
    cache: FeatureCache,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("y\n1\n")
    monkeypatch.setenv("FC_TEST_LABELS", str(labels))

    @cache.cached_feature(name="scaled")
    def scaled(n: int, factor: int = 2) -> pl.DataFrame:
        return pl.read_csv(os.environ["FC_TEST_LABELS"]) * n * factor

    caplog.set_level(logging.INFO, logger="featurecache")
    scaled(1)
    [(message, event)] = _calls(caplog)
    assert message.startswith("miss scaled: new key; computed in ")
    assert (event.kind, event.feature, event.reason) == ("miss", "scaled", "new key")
    assert event.key_id is not None and len(event.key_id) == 32

    scaled(1)
    [(message, event)] = _calls(caplog)
    assert event.kind == "hit" and event.artifact_id is not None
    assert message.startswith(f"hit scaled {event.artifact_id[:8]} in ")
    assert "(saved " in message and event.seconds_avoided > 0

    scaled(1, factor=3)
    [(message, event)] = _calls(caplog)
    assert message.startswith("miss scaled: param `factor`: 2 → 3; computed in ")

    labels.write_text("y\n7\n")
    scaled(1)
    [(message, event)] = _calls(caplog)
    assert event.reason == f"file `{labels}` (read by the body) changed"

    scaled.recompute(1)
    [(message, event)] = _calls(caplog)
    assert event.reason == "recompute requested"


def test_a_hit_queries_nothing_for_its_log_line(
    cache: FeatureCache, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    @cache.cached_feature(name="numbers")
    def numbers(n: int) -> pl.DataFrame:
        return pl.DataFrame({"x": list(range(n))})

    catalog = cache.engine.catalog
    queries: list[str] = []
    real = catalog.newest_entries

    def counted(feature: str, limit: int) -> Any:
        queries.append(feature)
        return real(feature, limit)

    monkeypatch.setattr(catalog, "newest_entries", counted)
    caplog.set_level(logging.INFO, logger="featurecache")
    numbers(3)
    assert queries == ["numbers"]  # a miss: one bounded query for its reason
    for _ in range(5):
        numbers(3)
    assert queries == ["numbers"]
    assert [event.kind for _message, event in _calls(caplog)] == ["miss"] + ["hit"] * 5
    # Logging off: a miss does not query either.
    caplog.set_level(logging.WARNING, logger="featurecache")
    numbers(4)
    assert queries == ["numbers"]


def test_debug_names_every_change_of_a_miss(
    cache: FeatureCache, caplog: pytest.LogCaptureFixture
) -> None:
    def make(version: str) -> Any:
        @cache.cached_feature(name="grid", version=version)
        def grid(a: int, b: int, c: int) -> pl.DataFrame:
            return pl.DataFrame({"x": [a, b, c]})

        return grid

    make("1")(1, 1, 1)
    caplog.set_level(logging.INFO, logger="featurecache")
    make("2")(2, 2, 2)
    [(message, _event)] = _calls(caplog)
    assert "version salt '1' → '2'" in message or "version salt" in message
    assert "more: featurecache why grid" in message
    caplog.set_level(logging.DEBUG, logger="featurecache")
    make("3")(3, 3, 3)
    [(message, _event)] = _calls(caplog)
    assert "more:" not in message and "param `c`" in message


def test_feature_cache_log_attaches_one_stderr_handler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root_records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            root_records.append(record)

    root_handler = Collect()
    logging.getLogger().addHandler(root_handler)
    try:
        caches = [
            FeatureCache(
                catalog=f"sqlite:///{tmp_path / 'catalog.db'}",
                store=tmp_path / "artifacts",
                state_dir=tmp_path / "state",
                log="info",
            )
            for _ in range(2)
        ]
        features = []
        for cache in caches:

            @cache.cached_feature(name="numbers")
            def numbers(n: int) -> pl.DataFrame:
                return pl.DataFrame({"x": list(range(n))})

            features.append(numbers)
        features[0](2)
        features[1](2)
        for cache in caches:
            cache.close()
    finally:
        logging.getLogger().removeHandler(root_handler)
    ours = [h for h in LOGGER.handlers if isinstance(h, logs._Stderr)]
    assert len(ours) == 1 and LOGGER.level == logging.INFO and LOGGER.propagate is False
    lines = stream.getvalue().splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["featurecache:", "miss", "numbers:"],
        ["featurecache:", "hit", "numbers"],
    ]
    assert root_records == []  # not printed a second time by the program's own handlers
    logs.configure("debug")
    assert LOGGER.level == logging.DEBUG
    logs.configure("off")  # never silences what another cache turned on
    logs.configure("info")  # the more verbose level wins
    assert LOGGER.level == logging.DEBUG
    assert len([h for h in LOGGER.handlers if isinstance(h, logs._Stderr)]) == 1


def test_the_summary_line() -> None:
    stats = SessionSnapshot(
        hits=9,
        misses=1,
        seconds_avoided=41.23,
        compute_seconds=0.25,
        features={"a": FeatureTotals(hits=9, misses=1)},
    )
    assert logs.summary_line(stats) == (
        "featurecache: 10 calls this session: 9 hits (saved 41.2 s), 1 miss (computed in 250 ms)"
    )
    assert logs.summary_line(SessionSnapshot(0, 0, 0.0, 0.0, {})) is None


def test_refresh_names_no_called_feature_has(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "_refresh_names", set())
    stats = SessionSnapshot(1, 0, 0.0, 0.0, {"a": FeatureTotals(hits=1)})
    assert logs.unmatched_refresh_line(stats) is None
    logs.expect_refreshed(("a", "*"))  # "*" matches every feature: never reported
    assert logs.unmatched_refresh_line(stats) is None
    logs.expect_refreshed(("c", "b"))
    assert logs.unmatched_refresh_line(stats) == (
        "FEATURECACHE_REFRESH name `b`, `c`, which no feature called in this process have "
        "(called: a); check the name"
    )
    assert logs.unmatched_refresh_line(SessionSnapshot(0, 0, 0.0, 0.0, {})) == (
        "FEATURECACHE_REFRESH name `a`, `b`, `c`, which no feature called in this process "
        "have (called: none); check the name"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0042, "4 ms"), (0.9994, "999 ms"), (8.14, "8.1 s"), (119.9, "119.9 s"), (600, "10 min")],
)
def test_seconds_text(seconds: float, text: str) -> None:
    assert logs.seconds_text(seconds) == text


def test_recent_keys_are_bounded_per_feature_and_in_features() -> None:
    from featurecache.fingerprint.types import CodeIdentity
    from featurecache.keys import CacheKey

    code = CodeIdentity(digest="c", qualname="m.f", source="")
    recent = logs.RecentKeys(per_feature=2, features=2)

    def key(key_id: str) -> CacheKey:
        return CacheKey(key_id, "", "a", code, {})

    for key_id in ("a1", "a2", "a3"):
        recent.add("a", key(key_id))
    assert [e.key_id for e in recent.of("a")] == ["a3", "a2"]
    recent.add("b", key("b1"))
    recent.add("a", key("a4"))  # "a" used last: "b" is the oldest feature
    recent.add("c", key("c1"))
    assert recent.of("b") == [] and [e.key_id for e in recent.of("a")] == ["a4", "a3"]
