"""``to_torch()`` with a real ``torch.utils.data.DataLoader`` and worker processes: each
worker reads its own row groups, so an epoch yields every row exactly once, in batches of the
requested size. Run with ``make test-torch`` (torch is not part of ``[dev]``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import featurecache
from featurecache import FeatureCache
from featurecache.errors import NotStreamableError
from featurecache.stream.reader import ArtifactReader

pytestmark = pytest.mark.torch
torch = pytest.importorskip(
    "torch", reason="TORCH TESTS SKIPPED: torch is not installed; run them with: make test-torch"
)
from torch.utils.data import DataLoader  # noqa: E402

ROWS = 10_500
GROUP = 1_000  # 11 row groups


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[ArtifactReader]:
    with FeatureCache(
        catalog=f"sqlite:///{tmp_path / 'catalog.db'}",
        store=tmp_path / "artifacts",
        row_group_rows=GROUP,
        background_publish=False,
    ) as fc:

        @fc.cached_feature(name="training_table")
        def training_table(rows: int) -> pl.DataFrame:
            return pl.DataFrame(
                {
                    "row": np.arange(rows, dtype=np.int64),
                    "x": np.linspace(0.0, 1.0, rows, dtype=np.float32),
                    "label": np.arange(rows) % 2 == 0,
                    "name": [f"u{i}" for i in range(rows)],
                }
            )

        yield featurecache.open(training_table(ROWS), cache=fc)


def _epoch(loader: DataLoader[Any]) -> tuple[list[int], list[int]]:
    rows: list[int] = []
    sizes: list[int] = []
    for batch in loader:
        rows += batch["row"].tolist()
        sizes.append(len(batch["row"]))
    return rows, sizes


def test_two_workers_yield_every_row_once_per_epoch_in_batches_of_the_size(
    reader: ArtifactReader,
) -> None:
    dataset = reader.to_torch(256, columns=["row", "x", "label"])
    loader = DataLoader(dataset, batch_size=None, num_workers=2)
    for _ in range(2):  # two epochs
        rows, sizes = _epoch(loader)
        assert Counter(rows) == Counter(range(ROWS))  # every row, exactly once
        short = [size for size in sizes if size != 256]
        assert len(short) <= 2 and all(0 < size < 256 for size in short)  # one per worker
    batch = next(iter(loader))
    assert batch["x"].dtype == torch.float32 and batch["label"].dtype == torch.bool
    assert batch["row"].dtype == torch.int64


def test_drop_last_gives_only_full_batches(reader: ArtifactReader) -> None:
    loader = DataLoader(
        reader.to_torch(300, columns=["row"], drop_last=True), batch_size=None, num_workers=2
    )
    rows, sizes = _epoch(loader)
    assert set(sizes) == {300}
    assert len(rows) == len(set(rows)) and ROWS - len(rows) < 2 * 300


def test_a_process_shard_is_split_again_across_its_workers(reader: ArtifactReader) -> None:
    seen = []
    for rank in range(2):
        loader = DataLoader(
            reader.to_torch(128, columns=["row"], shard=(rank, 2)), batch_size=None, num_workers=2
        )
        seen += _epoch(loader)[0]
    assert Counter(seen) == Counter(range(ROWS))


@pytest.mark.slow  # spawned workers import torch afresh
def test_spawned_workers_get_a_picklable_dataset_with_its_filter_and_transform(
    reader: ArtifactReader,
) -> None:
    dataset = reader.to_torch(100, filter=pc.field("row") >= 9_950, transform=_names_and_rows)
    loader = DataLoader(dataset, batch_size=None, num_workers=2, multiprocessing_context="spawn")
    got = [tuple(pair) for batch in loader for pair in batch]  # collation makes lists
    assert sorted(got, key=lambda pair: pair[1]) == [(f"u{i}", i) for i in range(9_950, ROWS)]


def _names_and_rows(batch: pa.RecordBatch) -> list[tuple[str, int]]:
    return list(zip(batch.column("name").to_pylist(), batch.column("row").to_pylist(), strict=True))


def test_a_column_a_tensor_cannot_hold_is_a_clear_error(reader: ArtifactReader) -> None:
    with pytest.raises(NotStreamableError, match="transform"):
        next(iter(reader.to_torch(10)))
