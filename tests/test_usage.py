"""Usage events are written off the hit path, in batches, and none is lost at exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import Project

FEATURE = """
import polars as pl
from featurecache import cached_feature

@cached_feature
def numbers(n: int) -> pl.DataFrame:
    return pl.DataFrame({"x": list(range(n))})
"""


@pytest.mark.slow  # three fresh processes
def test_hits_are_recorded_in_the_catalog_after_the_process_exits(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "proj")
    project.write("feat.py", FEATURE)
    project.run("from feat import numbers\nnumbers(3)\n")
    # 25 hits, and the process exits immediately after the last one.
    project.run("from feat import numbers\nfor _ in range(25):\n    numbers(3)\n")
    stats = project.run_json(
        "import json\nfrom featurecache.catalog.facade import Catalog\nimport os\n"
        "from featurecache.settings import load_settings\n"
        "c = Catalog.open(load_settings().catalog_url)\n"
        "[(a, f)] = c.list_artifacts()\n"
        "print(json.dumps({'hits': a.hits}))\n"
    )
    assert stats == {"hits": 25}


FORK_AFTER_HITS = """
import os, sys
import featurecache
from feat import numbers
engine = featurecache.default_cache().engine
# Hold the batch: the five hits below are still queued when the process forks.
recorder = getattr(engine, "usage", None) or getattr(engine, "events")
recorder._interval = 3600
for _ in range(5):
    numbers(3)
pid = os.fork()
if pid == 0:
    sys.exit(0)  # a normal exit: the interpreter runs its exit hooks
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0
"""


@pytest.mark.slow  # fresh processes that fork
def test_a_forked_child_does_not_write_its_parents_queued_events(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "proj")
    project.write("feat.py", FEATURE)
    project.run("from feat import numbers\nnumbers(3)\n")
    project.run(FORK_AFTER_HITS)
    stats = project.run_json(
        "import json\nfrom featurecache.catalog import Catalog\n"
        "from featurecache.settings import load_settings\n"
        "c = Catalog.open(load_settings().catalog_url)\n"
        "[(a, f)] = c.list_artifacts()\n"
        "print(json.dumps({'hits': a.hits}))\n"
    )
    assert stats == {"hits": 5}


class FlakyCatalog:
    """Refuses the first ``failures`` batches, then records what it is given."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.recorded: list[object] = []

    def record_events(self, batch: list[object]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("catalog unreachable")
        self.recorded.extend(batch)


def _event(n: int) -> object:
    from featurecache.catalog.queries import UsageEvent

    return UsageEvent("hit", f"k{n}", "f", f"a{n}", 0.001, 1.0)


def test_a_failed_batch_is_retried_not_dropped() -> None:
    from featurecache.usage import UsageRecorder

    catalog = FlakyCatalog(failures=2)
    recorder = UsageRecorder(catalog, interval=3600)  # type: ignore[arg-type]
    recorder.add(_event(1))  # type: ignore[arg-type]
    recorder.flush()  # refused
    recorder.add(_event(2))  # type: ignore[arg-type]
    recorder.flush()  # refused again
    recorder.close()  # the third attempt goes through, oldest first
    assert [e.key_id for e in catalog.recorded] == ["k1", "k2"]  # type: ignore[attr-defined]


def test_events_that_cannot_be_written_at_exit_are_reported(caplog) -> None:
    from featurecache.usage import UsageRecorder

    catalog = FlakyCatalog(failures=10)
    recorder = UsageRecorder(catalog, interval=3600)  # type: ignore[arg-type]
    for n in range(3):
        recorder.add(_event(n))  # type: ignore[arg-type]
    with caplog.at_level("WARNING", logger="featurecache"):
        recorder.close()
    assert catalog.recorded == []
    assert any("could not record 3 usage events" in r.getMessage() for r in caplog.records)


def test_session_stats_stay_bounded() -> None:
    from featurecache.usage import SessionStats

    stats = SessionStats()
    for _ in range(10_000):
        stats.add("hit", 1.0, "f")
    stats.add("miss", 2.0, "f")
    assert (stats.hits, stats.misses) == (10_000, 1)
    assert dict(stats.by_feature) == {("f", "hit"): 10_000, ("f", "miss"): 1}


def test_a_process_that_exits_normally_holds_no_lease(tmp_path: Path) -> None:
    # Whatever path took a lease and did not give it back, a normal exit gives it back: a
    # lease left behind blocks the key for every other process until it expires.
    project = Project.create(tmp_path / "proj")
    project.write("feat.py", FEATURE)
    project.run(
        "import threading, featurecache\n"
        "from feat import numbers\n"
        "numbers(3)\n"
        "engine = featurecache.default_cache().engine\n"
        "owner = f'{engine.owner}:{threading.get_ident()}'\n"
        "assert engine.catalog.try_acquire_lease('0' * 32, owner, 3600)\n"
    )
    leases = project.run_json(
        "import json\nfrom featurecache.catalog import Catalog\n"
        "from featurecache.settings import load_settings\n"
        "c = Catalog.open(load_settings().catalog_url)\n"
        "print(json.dumps({'lease': c.get_lease('0' * 32) is not None}))\n"
    )
    assert leases == {"lease": False}


def test_session_stats_count_per_feature_and_into_the_process_totals() -> None:
    from featurecache.usage import FeatureTotals, SessionStats

    process = SessionStats()
    cache = SessionStats(parent=process)
    cache.add("miss", 2.0, "a")
    cache.add("hit", 2.0, "a")
    cache.add("hit", 0.5, "b")
    snapshot = cache.snapshot()
    assert (snapshot.hits, snapshot.misses, snapshot.calls) == (2, 1, 3)
    assert (snapshot.seconds_avoided, snapshot.compute_seconds) == (2.5, 2.0)
    assert snapshot.features == {
        "a": FeatureTotals(hits=1, misses=1, seconds_avoided=2.0, compute_seconds=2.0),
        "b": FeatureTotals(hits=1, misses=0, seconds_avoided=0.5, compute_seconds=0.0),
    }
    assert process.snapshot() == snapshot
    cache.add("miss", 1.0, "c")
    assert "c" not in snapshot.features  # a snapshot is a copy
    assert snapshot.to_json()["features"]["a"] == {  # type: ignore[index]
        "hits": 1,
        "misses": 1,
        "seconds_avoided": 2.0,
        "compute_seconds": 2.0,
    }


def test_session_stats_is_public_and_counts_every_cache(tmp_path: Path) -> None:
    import polars as pl

    import featurecache

    before = featurecache.session_stats()
    caches = [
        featurecache.FeatureCache(
            catalog=f"sqlite:///{tmp_path / name / 'catalog.db'}",
            store=tmp_path / name / "artifacts",
            state_dir=tmp_path / name / "state",
        )
        for name in ("one", "two")
    ]
    for cache in caches:

        @cache.cached_feature(name="stats_numbers")
        def numbers(n: int) -> pl.DataFrame:
            return pl.DataFrame({"x": list(range(n))})

        numbers(2)
        numbers(2)
        assert (cache.engine.session.hits, cache.engine.session.misses) == (1, 1)  # its own
        cache.close()
    after = featurecache.session_stats()
    assert (after.hits - before.hits, after.misses - before.misses) == (2, 2)
    mine = after.features["stats_numbers"]
    old = before.features.get("stats_numbers", featurecache.FeatureTotals())
    assert (mine.hits - old.hits, mine.misses - old.misses) == (2, 2)
