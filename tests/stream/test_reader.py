"""``featurecache.open(ref).batches(...)`` on a real cache (SQLite catalog, local store, real
Parquet with many row groups): every row once, in exact batches; projections and filters;
what a reference may be; what is verified; no thread left behind."""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import featurecache
from featurecache import FeatureCache
from featurecache.errors import (
    AmbiguousReferenceError,
    ArtifactCorruptError,
    ArtifactNotFoundError,
    ConfigError,
    MissingDependencyError,
    NotStreamableError,
)
from featurecache.stream.prefetch import THREAD_PREFIX
from featurecache.stream.reader import ArtifactReader

ROWS = 10_500
GROUP = 1_000  # rows per row group: 11 row groups


def _cache(root: Path) -> FeatureCache:
    return FeatureCache(
        catalog=f"sqlite:///{root / 'catalog.db'}",
        store=root / "artifacts",
        row_group_rows=GROUP,
        compression="none",  # a flipped byte lands in a value, not in a compressed page
        background_publish=False,
    )


@pytest.fixture
def fc(tmp_path: Path) -> Iterator[FeatureCache]:
    cache = _cache(tmp_path)
    try:
        yield cache
    finally:
        cache.close()


def _frame(rows: int = ROWS) -> pl.DataFrame:
    rng = np.random.default_rng(7)
    return pl.DataFrame(
        {
            "row": np.arange(rows, dtype=np.int64),
            "x": rng.random(rows),
            "day": np.arange(rows, dtype=np.int64) // GROUP,
        }
    )


def _stored(fc: FeatureCache, rows: int = ROWS) -> tuple[pl.DataFrame, ArtifactReader]:
    @fc.cached_feature(name="features")
    def features(rows: int) -> pl.DataFrame:
        return _frame(rows)

    out = features(rows)
    return out, featurecache.open(out, cache=fc)


def _rows(batches: list[pa.RecordBatch]) -> list[int]:
    return [v for b in batches for v in b.column("row").to_pylist()]


def _stream_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


@pytest.mark.parametrize("batch_size", [1, 7, 999, 1000, 1001, 4096, ROWS, 50_000])
def test_every_row_exactly_once_in_batches_of_the_requested_size(
    fc: FeatureCache, batch_size: int
) -> None:
    _, reader = _stored(fc)
    assert reader.num_row_groups == 11 and reader.num_rows == ROWS
    batches = list(reader.batches(batch_size))
    assert _rows(batches) == list(range(ROWS))
    sizes = [b.num_rows for b in batches]
    assert all(size == batch_size for size in sizes[:-1]) and 0 < sizes[-1] <= batch_size
    assert _stream_threads() == []


def test_drop_last_drops_the_short_batch(fc: FeatureCache) -> None:
    _, reader = _stored(fc)
    batches = list(reader.batches(4000, drop_last=True))
    assert [b.num_rows for b in batches] == [4000, 4000]
    assert _rows(batches) == list(range(8000))


def test_columns_and_a_filter_on_a_column_not_read(fc: FeatureCache) -> None:
    frame, reader = _stored(fc)
    batches = list(reader.batches(300, columns=["x"], filter=pc.field("day") >= 8))
    assert all(b.schema.names == ["x"] for b in batches)
    got = np.concatenate([b.column("x").to_numpy() for b in batches])
    assert np.array_equal(got, frame.filter(pl.col("day") >= 8)["x"].to_numpy())
    assert [b.num_rows for b in batches[:-1]] == [300] * (len(batches) - 1)


def test_a_filter_skips_row_groups_whose_statistics_exclude_it(fc: FeatureCache) -> None:
    _, reader = _stored(fc)
    plan = reader.plan(100, filter=(pc.field("row") >= 2500) & (pc.field("row") < 4100))
    assert plan.row_groups_for((0, 1)) == [2, 3, 4]
    assert plan.row_groups_for((1, 2)) == [3]
    assert _rows(list(plan.rows())) == list(range(2500, 4100))


def test_polars_and_pandas_batches(fc: FeatureCache) -> None:
    frame, reader = _stored(fc)
    polars_batches = list(reader.batches(4000, format="polars"))
    assert all(isinstance(b, pl.DataFrame) for b in polars_batches)
    assert pl.concat(polars_batches).equals(frame)
    pandas_batches = list(reader.batches(4000, columns=["row"], format="pandas"))
    assert isinstance(pandas_batches[0], pd.DataFrame)
    assert pd.concat(pandas_batches)["row"].tolist() == list(range(ROWS))


def test_shards_in_one_process_partition_the_rows(fc: FeatureCache) -> None:
    _, reader = _stored(fc)
    shards = [_rows(list(reader.batches(333, shard=(i, 3)))) for i in range(3)]
    assert sorted(v for rows in shards for v in rows) == list(range(ROWS))
    assert shards[1][:2] == [1000, 1001]  # row group 1 is shard 1's first


def _read_shard(root: str, artifact_id: str, index: int, count: int, out: Any) -> None:
    cache = _cache(Path(root))
    reader = featurecache.open(artifact_id[:10], cache=cache)
    rows = _rows(list(reader.batches(256, shard=(index, count))))
    out.put((index, os.getpid(), rows))
    cache.close()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_processes_each_reading_a_shard_read_every_row_exactly_once(
    fc: FeatureCache, tmp_path: Path, method: str
) -> None:
    _, reader = _stored(fc)
    context = multiprocessing.get_context(method)
    results = context.Queue()
    workers = [
        context.Process(target=_read_shard, args=(str(tmp_path), reader.artifact_id, i, 3, results))
        for i in range(3)
    ]
    for worker in workers:
        worker.start()
    got = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    assert len({pid for _, pid, _ in got}) == 3
    everything = sorted(v for _, _, rows in got for v in rows)
    assert everything == list(range(ROWS))


def test_stopping_early_leaves_no_thread(fc: FeatureCache) -> None:
    _, reader = _stored(fc)
    batches = reader.batches(10, parallel=3)
    next(batches)
    assert len(_stream_threads()) == 3
    batches.close()
    assert _stream_threads() == []
    for _ in reader.batches(10):
        break
    assert _stream_threads() == []


def test_an_error_in_the_training_loop_propagates_and_stops_the_threads(
    fc: FeatureCache,
) -> None:
    _, reader = _stored(fc)

    def train() -> None:
        for _ in reader.batches(10):
            raise RuntimeError("loss is nan")

    with pytest.raises(RuntimeError, match="loss is nan"):
        train()
    assert _stream_threads() == []


# -- references ----------------------------------------------------------------------------


def test_an_id_a_prefix_a_feature_name_and_the_frames_of_a_miss_and_a_hit(
    fc: FeatureCache,
) -> None:
    @fc.cached_feature(name="clicks")
    def clicks(rows: int) -> pl.DataFrame:
        return _frame(rows)

    missed = clicks(500)  # the function's own frame: fingerprinted to find its artifact
    hit = clicks(500)  # handed out by the cache: carries its artifact id
    ids = {
        featurecache.open(ref, cache=fc).artifact_id
        for ref in (missed, hit, "clicks", featurecache.open(hit, cache=fc).artifact_id[:8])
    }
    assert len(ids) == 1

    @fc.cached_feature(name="clicks_pandas")
    def clicks_pandas(rows: int) -> pd.DataFrame:
        return _frame(rows).to_pandas()

    reader = featurecache.open(clicks_pandas(300), cache=fc)  # not carried: fingerprinted
    assert _rows(list(reader.batches(64))) == list(range(300))


class Split(NamedTuple):
    train: pl.DataFrame
    test: pl.DataFrame


def test_a_composite_is_refused_with_its_parts_and_a_part_opens(fc: FeatureCache) -> None:
    @fc.cached_feature(name="split")
    def split(rows: int) -> Split:
        frame = _frame(rows)
        return Split(frame.head(300), frame.tail(200))

    split(500)
    parts = split(500)  # a hit: each part carries its own artifact id
    with pytest.raises(NotStreamableError, match="composite") as caught:
        featurecache.open("split", cache=fc)
    reader = featurecache.open(parts.test, cache=fc)
    assert reader.artifact_id[:12] in str(caught.value)
    assert _rows(list(reader.batches(64))) == list(range(300, 500))


def test_a_prefix_shared_by_two_artifacts_is_ambiguous(fc: FeatureCache) -> None:
    @fc.cached_feature(name="tiny")
    def tiny(n: int) -> pl.DataFrame:
        return pl.DataFrame({"n": [n]})

    ids = [featurecache.open(tiny(n), cache=fc).artifact_id for n in range(17)]
    shared = next(a[0] for a in ids if sum(b[0] == a[0] for b in ids) > 1)  # 17 ids, 16 digits
    with pytest.raises(AmbiguousReferenceError):
        featurecache.open(shared, cache=fc)


def test_bad_references_and_arguments_are_typed_errors(fc: FeatureCache) -> None:
    _, reader = _stored(fc)
    with pytest.raises(ArtifactNotFoundError):
        featurecache.open("no_such_feature", cache=fc)
    with pytest.raises(ArtifactNotFoundError):
        featurecache.open(pl.DataFrame({"never": [1, 2]}), cache=fc)
    with pytest.raises(NotStreamableError, match="neither a reference"):
        featurecache.open(42, cache=fc)
    for bad in [
        {"columns": ["nope"]},
        {"columns": "row"},
        {"filter": pl.col("row") > 3},
        {"format": "numpy"},
        {"parallel": 0},
        {"batch_size": 0},
        {"shard": (3, 3)},
        {"colums": ["row"]},  # a typo is not silently ignored
    ]:
        with pytest.raises(ConfigError) as caught:
            reader.batches(**bad)
        assert caught.value.setting == next(iter(bad))
    assert _stream_threads() == []


# -- integrity -----------------------------------------------------------------------------


def _artifact_file(fc: FeatureCache, artifact_id: str) -> Path:
    path = fc.engine.store.local_path(artifact_id)
    assert path is not None and path.is_file()
    return path


def _rewrite_a_value(path: Path) -> None:
    """The same size, still valid Parquet, a different value: the row id 5000 becomes 5001."""
    path.chmod(0o644)
    data = path.read_bytes()
    old = np.int64(5000).tobytes()
    assert data.count(old) >= 1
    path.write_bytes(data.replace(old, np.int64(5001).tobytes()))


def test_a_corrupt_artifact_is_never_opened(fc: FeatureCache, tmp_path: Path) -> None:
    _stored(fc, 10_000)
    artifact_id = featurecache.open("features", cache=fc).artifact_id
    _rewrite_a_value(_artifact_file(fc, artifact_id))
    with pytest.raises(ArtifactCorruptError, match="file hash"):
        featurecache.open(artifact_id, cache=fc)


def test_bytes_changed_while_streaming_are_not_served(fc: FeatureCache, tmp_path: Path) -> None:
    _, reader = _stored(fc)
    batches = reader.batches(100, parallel=1, prefetch=1)
    served = _rows([next(batches)])
    _rewrite_a_value(_artifact_file(fc, reader.artifact_id))
    with pytest.raises(ArtifactCorruptError, match="changed while it was being read"):
        for batch in batches:
            served += _rows([batch])
    # Only what was decoded and checked before the write was served: row 5000 never was.
    assert served == list(range(len(served))) and len(served) < 5000
    assert _stream_threads() == []


def test_another_process_holding_the_file_does_not_stop_a_stream(
    fc: FeatureCache, tmp_path: Path
) -> None:
    _, reader = _stored(fc)
    batches = reader.batches(100, parallel=1, prefetch=1)
    first = _rows([next(batches)])
    # A hard link (another reader's hold, a GC tombstone rename) changes the file's ctime.
    os.link(_artifact_file(fc, reader.artifact_id), tmp_path / "someone-elses-hold")
    assert first + _rows(list(batches)) == list(range(ROWS))


def test_an_artifact_deleted_from_the_store_keeps_streaming_from_its_hold(
    fc: FeatureCache, tmp_path: Path
) -> None:
    _, reader = _stored(fc)
    path = _artifact_file(fc, reader.artifact_id)
    batches = reader.batches(1000)
    first = _rows([next(batches)])
    path.unlink()  # a GC sweep
    assert first + _rows(list(batches)) == list(range(ROWS))
    with pytest.raises(ArtifactNotFoundError):
        featurecache.open(reader.artifact_id, cache=fc)


def test_to_torch_without_torch_says_what_to_install(
    fc: FeatureCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, reader = _stored(fc, 100)
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch fails as if not installed
    monkeypatch.delitem(sys.modules, "featurecache.stream.torch", raising=False)
    with pytest.raises(MissingDependencyError, match=r"featurecache\[torch\]"):
        reader.to_torch(10)


def test_memory_stays_at_a_few_row_groups_whatever_the_artifact_size(fc: FeatureCache) -> None:
    @fc.cached_feature(name="wide")
    def wide(rows: int) -> pl.DataFrame:
        rng = np.random.default_rng(3)
        return pl.DataFrame({f"f{i}": rng.random(rows) for i in range(40)})

    reader = featurecache.open(wide(40 * GROUP), cache=fc)  # 40 row groups of 320 kB
    group_bytes = GROUP * 40 * 8
    assert reader.num_row_groups == 40
    before = pa.total_allocated_bytes()
    peak = 0
    for batch in reader.batches(200, parallel=2, prefetch=2):
        peak = max(peak, pa.total_allocated_bytes() - before)
        del batch
    # Two row groups decoding plus a few queued batches (about 4 groups measured; 8 with an
    # unbounded queue and a fast consumer); the whole artifact is 40 groups.
    assert peak < 6 * group_bytes
