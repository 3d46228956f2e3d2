"""The artifact reader over an S3 store (the moto server): the download is verified before a
row is decoded, then streamed like a local file; with the local tier, from a held copy there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.compute as pc
import pytest

import featurecache
from featurecache.errors import ArtifactCorruptError
from featurecache.stream.source import LocalSource, MemorySource
from tests.fixtures_s3 import s3_cache

pytestmark = [pytest.mark.s3, pytest.mark.slow]  # moto server


def test_an_s3_artifact_streams_after_its_download_is_verified(
    s3_store_url: str, tmp_path: Path
) -> None:
    """Without the tier: downloaded into memory, verified, streamed."""
    with s3_cache(
        s3_store_url, tmp_path, local_tier="off", row_group_rows=500, compression="none"
    ) as fc:
        store = fc.engine.store

        @fc.cached_feature(name="remote")
        def remote(rows: int) -> pl.DataFrame:
            return pl.DataFrame({"row": np.arange(rows, dtype=np.int64)})

        out = remote(2_100)
        reader = featurecache.open(out, cache=fc)
        assert isinstance(reader._source, MemorySource) and reader.num_row_groups == 5
        shards = [
            [v for b in reader.batches(128, shard=(i, 2)) for v in b.column("row").to_pylist()]
            for i in range(2)
        ]
        assert sorted(shards[0] + shards[1]) == list(range(2_100))
        filtered = reader.batches(100, filter=pc.field("row") >= 2_000)
        assert [v for b in filtered for v in b.column("row").to_pylist()] == list(
            range(2_000, 2_100)
        )

        [obj] = list(store.iter_artifacts())
        good = bytes(store.read_bytes(reader.artifact_id))
        old, new = np.int64(1500).tobytes(), np.int64(1501).tobytes()
        assert old in good
        client = store._client()  # type: ignore[attr-defined]
        client.put_object(
            Bucket=store.bucket,  # type: ignore[attr-defined]
            Key=store._key(obj.name),  # type: ignore[attr-defined]
            Body=good.replace(old, new),
        )
        with pytest.raises(ArtifactCorruptError, match="file hash"):
            featurecache.open("remote", cache=fc)


def test_an_s3_artifact_streams_from_a_held_copy_in_the_local_tier(
    s3_store_url: str, tmp_path: Path
) -> None:
    """With the tier, a stream reads the tier's verified copy through a hold (never evicted
    under the reader), and a stream of an artifact the tier already holds contacts nothing."""
    with s3_cache(
        s3_store_url, tmp_path, local_tier=str(tmp_path / "tier"), row_group_rows=500
    ) as fc:

        @fc.cached_feature(name="remote")
        def remote(rows: int) -> pl.DataFrame:
            return pl.DataFrame({"row": np.arange(rows, dtype=np.int64)})

        out = remote(2_100)
        reader = featurecache.open(out, cache=fc)
        source = reader._source
        assert isinstance(source, LocalSource)
        copies = [p for p in (tmp_path / "tier").rglob("*.parquet") if ".holds" not in p.parts]
        assert len(copies) == 1
        assert Path(source.path).samefile(copies[0]) and Path(source.path) != copies[0]
        assert copies[0].stat().st_nlink >= 2  # held: eviction skips it
        rows = [v for b in reader.batches(256) for v in b.column("row").to_pylist()]
        assert rows == list(range(2_100))
