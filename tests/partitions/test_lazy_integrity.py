"""A partitioned result's ``lazy()`` reads only verified bytes: every part is checked in the
reading process against the catalog (size, whole-file hash, footer) before it is scanned, as a
lazy hit is, so bytes changed after the worker checked them are never served (fault
injection: one value rewritten in place, same size)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from featurecache import FeatureCache
from featurecache.errors import ArtifactCorruptError
from tests.fixtures_s3 import s3_cache


def _feature(fc: FeatureCache) -> object:
    @fc.cached_feature(name="numbers")
    def numbers(day: int) -> pl.DataFrame:
        return pl.DataFrame({"day": [day] * 100, "v": np.arange(100, dtype=np.int64) + day * 1000})

    return numbers


def _rewrite(data: bytes) -> bytes:
    old, new = np.int64(2_050).tobytes(), np.int64(2_051).tobytes()
    assert data.count(old) == 1
    return data.replace(old, new)


@pytest.fixture
def local_cache(tmp_path: Path) -> Iterator[FeatureCache]:
    with FeatureCache(
        catalog=f"sqlite:///{tmp_path / 'catalog.db'}",
        store=tmp_path / "artifacts",
        state_dir=tmp_path / "state",
        compression="none",
    ) as fc:
        yield fc


def test_a_local_part_changed_after_the_map_is_not_scanned(
    local_cache: FeatureCache, tmp_path: Path
) -> None:
    numbers = _feature(local_cache)
    result = numbers.map([{"day": d} for d in (1, 2, 3)])  # type: ignore[attr-defined]
    assert result.lazy().select(pl.col("v").sum()).collect().item() == sum(
        int(v) + d * 1000 for d in (1, 2, 3) for v in range(100)
    )
    path = local_cache.engine.store.local_path(result.artifact_ids[1])
    assert path is not None
    path.chmod(0o644)
    path.write_bytes(_rewrite(path.read_bytes()))
    with pytest.raises(ArtifactCorruptError):
        result.lazy().collect()


@pytest.mark.s3
@pytest.mark.slow  # moto server
@pytest.mark.parametrize("tier", ["off", "on"])
def test_an_s3_part_changed_in_the_bucket_is_not_scanned(
    s3_store_url: str, tmp_path: Path, tier: str
) -> None:
    with s3_cache(s3_store_url, tmp_path, local_tier=tier, compression="none") as fc:
        store = fc.engine.store
        numbers = _feature(fc)
        result = numbers.map([{"day": d} for d in (1, 2, 3)])  # type: ignore[attr-defined]
        victim = result.artifact_ids[1]
        [obj] = [o for o in store.iter_artifacts() if o.artifact_id == victim]
        client = store._client()  # type: ignore[attr-defined]
        client.put_object(
            Bucket=store.bucket,  # type: ignore[attr-defined]
            Key=store._key(obj.name),  # type: ignore[attr-defined]
            Body=_rewrite(bytes(store.read_bytes(victim))),
        )
        with pytest.raises(ArtifactCorruptError):
            result.lazy().collect()
