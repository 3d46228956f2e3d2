"""Controlling the cache per feature (README "Seeing and controlling the cache"): ``.func`` /
``__wrapped__``, ``.is_cached``, ``.recompute``, ``.clear``, and the settings
``FEATURECACHE_DISABLE`` and ``FEATURECACHE_REFRESH``, on SQLite and on PostgreSQL (a real
catalog each, a local store, real Parquet files)."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import featurecache
from featurecache import Feature, FeatureCache
from featurecache.catalog import Catalog

Factory = Callable[..., FeatureCache]


@pytest.fixture
def make_cache(any_clean_catalog_url: str, tmp_path: Path) -> Iterator[Factory]:
    """Caches sharing one catalog (a new SQLite file, or an emptied PostgreSQL schema) and
    one local store, with extra settings per cache."""
    opened: list[FeatureCache] = []

    def make(**settings: Any) -> FeatureCache:
        cache = FeatureCache(
            catalog=any_clean_catalog_url,
            store=tmp_path / "artifacts",
            state_dir=tmp_path / "state",
            **settings,
        )
        opened.append(cache)
        return cache

    yield make
    for cache in opened:
        cache.close()


def _features(cache: FeatureCache, runs: list[str]) -> tuple[Feature[..., Any], ...]:
    """Two features whose bodies note each execution in ``runs`` and whose output differs
    at every execution (so a recomputed result is a new artifact)."""

    @cache.cached_feature(name="numbers", ignore=["runs"])
    def numbers(n: int) -> pl.DataFrame:
        runs.append(f"numbers({n})")
        return pl.DataFrame({"x": list(range(n)), "run": [len(runs)] * n})

    @cache.cached_feature(name="letters", ignore=["runs"])
    def letters(n: int) -> pl.DataFrame:
        runs.append(f"letters({n})")
        return pl.DataFrame({"c": ["a"] * n, "run": [len(runs)] * n})

    return numbers, letters


def _entries(url: str, feature: str) -> list[str]:
    with Catalog.open(url) as catalog:
        return [entry.artifact_id for entry in catalog.newest_entries(feature, 100)]


def test_the_undecorated_function_is_func_and_wrapped(make_cache: Factory) -> None:
    runs: list[str] = []
    numbers, _ = _features(make_cache(), runs)
    assert numbers.func is numbers.__wrapped__
    assert inspect.unwrap(numbers) is numbers.func
    assert numbers.func(2)["x"].to_list() == [0, 1]  # the plain function: nothing cached
    assert not numbers.is_cached(2)


def test_is_cached_answers_without_computing(make_cache: Factory) -> None:
    runs: list[str] = []
    cache = make_cache()
    numbers, _ = _features(cache, runs)
    before = featurecache.session_stats()
    assert numbers.is_cached(3) is False
    numbers(3)
    assert numbers.is_cached(3) is True  # waits for the background publish of the miss
    assert numbers.is_cached(n=3) is True  # bound like a call: same key
    assert numbers.is_cached(4) is False
    assert runs == ["numbers(3)"]
    after = featurecache.session_stats()
    assert (after.hits - before.hits, after.misses - before.misses) == (0, 1)


def test_is_cached_revalidates_the_files_the_body_read(
    make_cache: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "labels.csv"
    data.write_text("y\n1\n")
    monkeypatch.setenv("FC_TEST_LABELS", str(data))
    cache = make_cache(background_publish=False)

    @cache.cached_feature
    def labels(scale: int) -> pl.DataFrame:
        return pl.read_csv(os.environ["FC_TEST_LABELS"]) * scale

    labels(2)
    assert labels.is_cached(2)
    data.write_text("y\n5\n")
    assert not labels.is_cached(2)  # as the call would: the file it read changed
    assert labels(2)["y"].to_list() == [10]
    assert labels.is_cached(2)


def test_recompute_computes_and_replaces_the_entry(
    make_cache: Factory, any_clean_catalog_url: str
) -> None:
    runs: list[str] = []
    numbers, _ = _features(make_cache(), runs)
    first = numbers(3)
    again = numbers.recompute(3)
    assert runs == ["numbers(3)", "numbers(3)"]
    assert first["run"].to_list() == [1, 1, 1] and again["run"].to_list() == [2, 2, 2]
    # The key now resolves to the new result; the old artifact is left for GC.
    assert numbers(3)["run"].to_list() == [2, 2, 2]
    assert len(runs) == 2
    assert len(_entries(any_clean_catalog_url, "numbers")) == 1
    with Catalog.open(any_clean_catalog_url) as catalog:
        assert len(catalog.list_artifacts()) == 2


def test_a_fresh_cache_sees_the_recomputed_entry(make_cache: Factory) -> None:
    runs: list[str] = []
    numbers, _ = _features(make_cache(), runs)
    numbers(2)
    numbers.recompute(2)
    other = make_cache()
    numbers_elsewhere, _ = _features(other, runs)
    assert numbers_elsewhere(2)["run"].to_list() == [2, 2]
    assert len(runs) == 2


def test_clear_drops_every_entry_of_one_feature(
    make_cache: Factory, any_clean_catalog_url: str
) -> None:
    runs: list[str] = []
    numbers, letters = _features(make_cache(), runs)
    for n in (1, 2):
        numbers(n)
        letters(n)
    assert numbers.clear() == 2
    assert _entries(any_clean_catalog_url, "numbers") == []
    assert len(_entries(any_clean_catalog_url, "letters")) == 2
    with Catalog.open(any_clean_catalog_url) as catalog:
        assert len(catalog.list_artifacts()) == 4  # artifacts are GC's to delete
    runs.clear()
    numbers(1)
    letters(1)
    assert runs == ["numbers(1)"]  # cleared recomputes; the other feature still hits
    assert numbers.clear() == 1 and numbers.clear() == 0


def test_disable_computes_and_never_opens_the_cache(tmp_path: Path) -> None:
    runs: list[str] = []
    with FeatureCache(
        catalog=f"sqlite:///{tmp_path / 'cache' / 'catalog.db'}",
        store=tmp_path / "cache" / "artifacts",
        state_dir=tmp_path / "cache" / "state",
        disable=True,
    ) as cache:
        numbers, _ = _features(cache, runs)

        @cache.cached_feature(lazy=True)
        def lazy_numbers(n: int) -> pl.DataFrame:
            return pl.DataFrame({"x": list(range(n))})

        before = featurecache.session_stats()
        assert numbers(2)["x"].to_list() == [0, 1]
        assert numbers(2)["run"].to_list() == [2, 2]  # computed again: nothing was stored
        assert numbers.recompute(2)["run"].to_list() == [3, 3]
        assert numbers.is_cached(2) is False
        assert isinstance(lazy_numbers(2), pl.LazyFrame)  # the type a lazy feature promises
        after = featurecache.session_stats()
    assert (
        after.features["numbers"].misses
        - before.features.get("numbers", featurecache.FeatureTotals()).misses
        == 3
    )
    assert not (tmp_path / "cache").exists()  # nothing read, nothing created


def test_refresh_recomputes_each_key_of_the_named_features_once(make_cache: Factory) -> None:
    runs: list[str] = []
    warm = make_cache()
    numbers, letters = _features(warm, runs)
    numbers(1)
    numbers(2)
    letters(1)
    warm.close()
    runs.clear()
    refreshing = make_cache(refresh="numbers")
    numbers, letters = _features(refreshing, runs)
    assert numbers.is_cached(1) is False  # it would recompute
    numbers(1)
    numbers(1)
    numbers(2)
    letters(1)
    assert runs == ["numbers(1)", "numbers(2)"]
    assert numbers.is_cached(1) is True
    # The refreshed results replaced the old ones for every later process.
    runs.clear()
    later_numbers, _ = _features(make_cache(), runs)
    assert later_numbers(1)["run"].to_list() == [1] and runs == []


def test_refresh_star_refreshes_every_feature(make_cache: Factory) -> None:
    runs: list[str] = []
    numbers, letters = _features(make_cache(), runs)
    numbers(1)
    letters(1)
    runs.clear()
    numbers, letters = _features(make_cache(refresh=["*"]), runs)
    numbers(1)
    letters(1)
    numbers(1)
    assert runs == ["numbers(1)", "letters(1)"]


def test_control_through_a_bound_method_passes_self(make_cache: Factory) -> None:
    """``obj.feature.is_cached(n)`` asks about the call ``obj.feature(n)``: ``self`` is an
    argument of the key, so the bound method's control calls must pass it (they reached the
    unbound feature before, which took ``n`` for ``self``)."""
    cache = make_cache()

    class Scaler:
        def __init__(self, factor: int) -> None:
            self.factor = factor

        @cache.cached_feature(name="scaled")
        def scaled(self, n: int) -> pl.DataFrame:
            return pl.DataFrame({"x": [i * self.factor for i in range(n)]})

    def misses() -> int:
        return featurecache.session_stats().misses

    two, three = Scaler(2), Scaler(3)
    start = misses()
    assert two.scaled.is_cached(3) is False
    assert two.scaled(3)["x"].to_list() == [0, 2, 4]
    assert two.scaled.is_cached(3) is True
    assert two.scaled.is_cached(n=3) is True
    assert three.scaled.is_cached(3) is False  # another self, another key
    assert misses() == start + 1
    assert two.scaled.recompute(3)["x"].to_list() == [0, 2, 4]
    assert misses() == start + 2
    assert two.scaled(3)["x"].to_list() == [0, 2, 4]  # a hit
    assert misses() == start + 2
    assert two.scaled.func(3)["x"].to_list() == [0, 2, 4]  # the plain function, bound
    assert misses() == start + 2
    assert two.scaled.name == "scaled" and two.scaled.__self__ is two
    assert two.scaled == two.scaled and two.scaled != three.scaled
    assert two.scaled.clear() == 1
    assert two.scaled.is_cached(3) is False
