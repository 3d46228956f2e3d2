"""The engine: bookkeeping that stays bounded in long-running processes, and calls that
degrade to computing (never to a wrong value or an error) when a backend fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from featurecache import Feature, FeatureCache
from featurecache import engine as engine_module
from featurecache.catalog.records import Hit
from featurecache.errors import CatalogError, StoreError
from tests.lease_support import LOST_WAIT_SECONDS, lease_loss_seen

THREE = pl.DataFrame({"x": [0, 1, 2]})


def _numbers(n: int) -> pl.DataFrame:
    return pl.DataFrame({"x": list(range(n))})


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[tuple[FeatureCache, Feature[[int], pl.DataFrame], Hit]]:
    """A cache holding ``_numbers(3)``, with its feature and its catalog row."""
    fc = FeatureCache(catalog=f"sqlite:///{tmp_path / 'c.db'}", store=tmp_path / "a")
    feature = fc.cached_feature(_numbers)
    try:
        feature(3)
        fc.engine.flush()
        hit = fc.engine.catalog.lookup(fc.engine.key_for(feature, (3,), {})[0].key_id)
        assert hit is not None
        yield fc, feature, hit
    finally:
        fc.close()


def test_seen_artifacts_keep_the_most_recent_and_stay_bounded(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(engine_module, "_SEEN_LIMIT", 3)
    fc = FeatureCache(catalog=f"sqlite:///{tmp_path / 'c.db'}", store=tmp_path / "a")
    try:
        engine = fc.engine
        for artifact_id in ["a", "b", "c", "a", "d"]:
            engine._saw(artifact_id)
        assert list(engine.seen_artifacts) == ["c", "a", "d"]
    finally:
        fc.close()


def test_a_store_that_cannot_be_read_degrades_to_computing(
    stored: tuple[FeatureCache, Feature[[int], pl.DataFrame], Hit],
) -> None:
    # An unreachable or timed-out store is not a corrupt artifact: the call computes, the
    # artifact stays recorded for when the store answers again.
    fc, feature, hit = stored

    def unreachable(artifact_id: str) -> memoryview:
        raise StoreError(f"{artifact_id}: the endpoint did not answer in time")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fc.engine.store, "local_path", lambda artifact_id: None)
        patch.setattr(fc.engine.store, "read_bytes", unreachable)
        again = feature(3)
    fc.engine.flush()
    assert again.equals(THREE)
    session = fc.engine.session
    assert (session.misses, session.hits) == (2, 0)  # computed, not served
    assert fc.engine.catalog.lookup(hit.entry.key_id) is not None
    assert fc.engine.store.exists(hit.artifact.artifact_id)
    assert feature(3).equals(THREE)  # readable again: a hit
    assert (session.misses, session.hits) == (2, 1)


def test_a_damaged_artifact_in_a_cache_that_cannot_be_written_is_never_served(
    stored: tuple[FeatureCache, Feature[[int], pl.DataFrame], Hit],
) -> None:
    # A read-only consumer cannot quarantine the file nor forget its row: it must still not
    # serve it, and not fail either.
    fc, feature, hit = stored
    path = fc.engine.store.local_path(hit.artifact.artifact_id)
    assert path is not None
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    def refuse(*args: object, **kwargs: object) -> None:
        raise StoreError("read-only store")

    def refuse_catalog(*args: object, **kwargs: object) -> None:
        raise CatalogError("attempt to write a readonly database")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fc.engine.store, "quarantine", refuse)
        patch.setattr(fc.engine.catalog, "forget_artifact", refuse_catalog)
        patch.setattr(fc.engine.store, "publish", refuse)
        assert feature(3).equals(THREE)


def test_a_lazy_feature_returns_a_lazyframe_even_when_its_artifact_vanished_at_once(
    tmp_path: Path,
) -> None:
    # GC deletes the artifact between the commit and the scan the lazy result is made of.
    fc = FeatureCache(
        catalog=f"sqlite:///{tmp_path / 'c.db'}", store=tmp_path / "a", background_publish=False
    )

    @fc.cached_feature(lazy=True)
    def numbers(n: int) -> pl.DataFrame:
        return pl.DataFrame({"x": list(range(n))})

    real = fc.engine.publisher.publish

    def publish_then_collect_garbage(job: object) -> object:
        hit = real(job)  # type: ignore[arg-type]
        for path in (tmp_path / "a").rglob("*.parquet"):
            path.unlink()
        return hit

    try:
        fc.engine.publisher.publish = publish_then_collect_garbage  # type: ignore[method-assign]
        result = numbers(3)
        assert isinstance(result, pl.LazyFrame)
        assert result.collect().equals(THREE)
    finally:
        fc.close()


def test_a_lease_whose_acquire_errs_after_committing_is_given_back(tmp_path: Path) -> None:
    # A connection lost after COMMIT: the catalog holds our lease, the call saw an error and
    # computes without one. The lease must not outlive the call (it would block the key for
    # every other process until it expired).
    fc = FeatureCache(catalog=f"sqlite:///{tmp_path / 'c.db'}", store=tmp_path / "a")
    feature = fc.cached_feature(_numbers)
    try:
        catalog = fc.engine.catalog
        real_acquire = catalog.try_acquire_lease

        def acquire_then_lose_the_answer(key_id: str, owner: str, seconds: float) -> bool:
            real_acquire(key_id, owner, seconds)
            raise CatalogError("acquiring a lease failed: server closed the connection")

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(catalog, "try_acquire_lease", acquire_then_lose_the_answer)
            assert feature(3).equals(THREE)
        fc.engine.flush()
        key_id = fc.engine.key_for(feature, (3,), {})[0].key_id
        assert catalog.get_lease(key_id) is None
    finally:
        fc.close()


def test_a_miss_counts_once_its_body_ran_even_when_its_result_is_not_stored(
    tmp_path: Path,
) -> None:
    """A computed call is a miss in the session stats even when its publish is refused (here
    its lease is taken over while it computes, so it must not publish): the stats said 0."""
    from sqlalchemy import text

    cache = FeatureCache(
        catalog=f"sqlite:///{tmp_path / 'catalog.db'}",
        store=tmp_path / "artifacts",
        lease_seconds=30.0,
        heartbeat_seconds=0.1,
    )

    @cache.cached_feature
    def feature(n: int) -> pl.DataFrame:
        with cache.engine.catalog.engine.begin() as conn:
            assert conn.execute(text("UPDATE leases SET owner = 'thief'")).rowcount == 1
        assert lost.wait(LOST_WAIT_SECONDS)  # the owner's heartbeat noticed, however slow
        return pl.DataFrame({"x": list(range(n))})

    try:
        with lease_loss_seen() as lost:
            assert feature(3).height == 3
        assert cache.engine.catalog.list_artifacts() == []  # not stored
        assert (cache.engine.session.misses, cache.engine.session.hits) == (1, 0)
    finally:
        cache.close()


def _split(n: int) -> tuple[pl.DataFrame, list[int]]:
    _SPLIT_RUNS.append(n)
    return pl.DataFrame({"x": list(range(n))}), list(range(n))


_SPLIT_RUNS: list[int] = []


def test_a_composite_this_process_cannot_rebuild_is_computed_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A composite whose structure cannot be joined here (a NamedTuple class this process does
    # not define, or whose fields changed) is not damaged: the call computes, nothing is
    # forgotten, and a process that can rebuild it still hits.
    from featurecache.results import codec

    _SPLIT_RUNS.clear()
    fc = FeatureCache(catalog=f"sqlite:///{tmp_path / 'c.db'}", store=tmp_path / "a")
    feature = fc.cached_feature(ignore=["_SPLIT_RUNS"])(_split)
    try:
        first = feature(3)
        fc.engine.flush()
        join = codec.join

        def cannot_join(structure: object, values: object) -> object:
            raise codec.CompositeStructureError("NamedTuple class Pair is not defined here")

        monkeypatch.setattr(codec, "join", cannot_join)
        again = feature(3)
        assert again[1] == first[1] and again[0].equals(first[0])
        assert _SPLIT_RUNS == [3, 3]
        monkeypatch.setattr(codec, "join", join)
        fc.engine.flush()
        assert feature(3)[1] == [0, 1, 2]
        assert _SPLIT_RUNS == [3, 3]  # the composite was kept: a hit
    finally:
        fc.close()
