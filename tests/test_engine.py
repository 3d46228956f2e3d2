"""Engine bookkeeping that must stay bounded in long-running processes."""

from __future__ import annotations

from pathlib import Path

from featurecache import FeatureCache
from featurecache import engine as engine_module


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


def test_a_store_that_cannot_be_read_degrades_to_computing(tmp_path: Path) -> None:
    # An unreachable or timed-out store is not a corrupt artifact: the call computes, the
    # artifact stays recorded for when the store answers again.
    import polars as pl
    import pytest

    from featurecache.errors import StoreError

    fc = FeatureCache(catalog=f"sqlite:///{tmp_path / 'c.db'}", store=tmp_path / "a")

    def numbers(n: int) -> pl.DataFrame:
        return pl.DataFrame({"x": list(range(n))})

    feature = fc.cached_feature(numbers)
    try:
        feature(3)
        fc.engine.flush()
        key_id = fc.engine.key_for(feature, (3,), {})[0].key_id

        def unreachable(artifact_id: str) -> memoryview:
            raise StoreError(f"{artifact_id}: the endpoint did not answer in time")

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(fc.engine.store, "local_path", lambda artifact_id: None)
            patch.setattr(fc.engine.store, "read_bytes", unreachable)
            again = feature(3)
        fc.engine.flush()
        assert again.equals(pl.DataFrame({"x": [0, 1, 2]}))
        session = fc.engine.session
        assert (session.misses, session.hits) == (2, 0)  # computed, not served
        hit = fc.engine.catalog.lookup(key_id)
        assert hit is not None and fc.engine.store.exists(hit.artifact.artifact_id)
        assert feature(3).equals(pl.DataFrame({"x": [0, 1, 2]}))  # readable again: a hit
        assert (session.misses, session.hits) == (2, 1)
    finally:
        fc.close()
