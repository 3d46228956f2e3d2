"""Pure helpers of the artifact reader: which row groups a shard reads, and cutting a stream
of record batches into batches of exactly ``batch_size`` rows (no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from featurecache.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa


def check_batch_size(batch_size: object) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(
            "batch_size",
            f"must be a positive whole number of rows, got {batch_size!r}",
            "Pass batch_size=1024 (or any number of rows >= 1).",
        )
    return batch_size


def check_shard(shard: object) -> tuple[int, int]:
    """``(index, count)`` with ``0 <= index < count``."""
    ok = (
        isinstance(shard, tuple)
        and len(shard) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) for x in shard)
        and shard[1] >= 1
        and 0 <= shard[0] < shard[1]
    )
    if not ok:
        raise ConfigError(
            "shard",
            f"must be a pair (index, count) with 0 <= index < count, got {shard!r}",
            "Pass shard=(rank, world_size), e.g. shard=(0, 2) and shard=(1, 2) for two processes.",
        )
    assert isinstance(shard, tuple)
    return shard[0], shard[1]


def shard_row_groups(row_groups: int, shard: tuple[int, int]) -> list[int]:
    """The row groups shard ``index`` of ``count`` reads: every ``count``-th, starting at
    ``index`` (round robin), so the shards together read each row group exactly once."""
    index, count = shard
    return list(range(index, row_groups, count))


def rebatch(
    batches: Iterable[pa.RecordBatch], batch_size: int, *, drop_last: bool = False
) -> Iterator[pa.RecordBatch]:
    """The rows of ``batches``, in order, cut into batches of exactly ``batch_size`` rows (the
    last one shorter, or dropped with ``drop_last``). A batch that already has the size is
    passed on as it is; rows spanning a boundary are sliced (zero-copy) and concatenated."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        offset = 0
        rows = batch.num_rows
        while offset < rows:
            take = min(batch_size - held, rows - offset)
            if take == batch_size and offset == 0 and take == rows:
                yield batch
            else:
                pending.append(batch.slice(offset, take))
                held += take
                if held == batch_size:
                    yield _joined(pending)
                    pending, held = [], 0
            offset += take
    if held and not drop_last:
        yield _joined(pending)


def _joined(parts: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(parts) == 1:
        return parts[0]
    import pyarrow

    if hasattr(pyarrow, "concat_batches"):  # pyarrow >= 19
        return pyarrow.concat_batches(parts)
    return pyarrow.Table.from_batches(parts).combine_chunks().to_batches()[0]
