"""An owner whose lease is taken over while it computes must not publish, and its caller
still gets the right value (never a LeaseLostError)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from featurecache import FeatureCache
from tests.lease_support import LOST_WAIT_SECONDS, lease_loss_seen


@pytest.mark.slow  # waits for a heartbeat to find the lease taken
@pytest.mark.parametrize("kind", ["pandas", "lazy"])
def test_stolen_lease_means_no_publish_and_a_correct_result(tmp_path: Path, kind: str) -> None:
    pd = pytest.importorskip("pandas")
    import polars as pl

    cache = FeatureCache(
        catalog=f"sqlite:///{tmp_path / 'catalog.db'}",
        store=tmp_path / "artifacts",
        lease_seconds=30.0,
        heartbeat_seconds=0.1,
    )

    def steal_the_lease() -> None:
        with cache.engine.catalog.engine.begin() as conn:
            stolen = conn.execute(text("UPDATE leases SET owner = 'thief'")).rowcount
        assert stolen == 1
        assert lost.wait(LOST_WAIT_SECONDS)  # the owner's heartbeat noticed, however slow

    if kind == "pandas":

        @cache.cached_feature
        def feature(n: int):  # type: ignore[no-untyped-def]
            steal_the_lease()
            return pd.DataFrame({"x": list(range(n))})

    else:

        @cache.cached_feature
        def feature(n: int) -> pl.LazyFrame:
            steal_the_lease()
            return pl.LazyFrame({"x": list(range(n))})

    try:
        with lease_loss_seen() as lost:
            value = feature(5)
        if kind == "pandas":
            assert list(value["x"]) == [0, 1, 2, 3, 4]
        else:
            assert isinstance(value, pl.LazyFrame)
            assert value.collect()["x"].to_list() == [0, 1, 2, 3, 4]
        assert cache.engine.catalog.list_artifacts() == []
    finally:
        cache.close()
