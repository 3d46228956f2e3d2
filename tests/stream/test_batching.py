"""The reader's pure parts: exact-size batches across boundaries, round-robin shards."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featurecache.errors import ConfigError
from featurecache.stream.batching import (
    check_batch_size,
    check_shard,
    rebatch,
    shard_row_groups,
)


def _batches(sizes: list[int]) -> list[pa.RecordBatch]:
    out, start = [], 0
    for size in sizes:
        out.append(pa.record_batch({"i": pa.array(range(start, start + size), pa.int64())}))
        start += size
    return out


@settings(deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=40), max_size=12),
    batch_size=st.integers(min_value=1, max_value=50),
    drop_last=st.booleans(),
)
def test_rebatch_keeps_every_row_in_order_in_batches_of_exactly_the_size(
    sizes: list[int], batch_size: int, drop_last: bool
) -> None:
    total = sum(sizes)
    out = list(rebatch(_batches(sizes), batch_size, drop_last=drop_last))
    rows = [v for b in out for v in b.column("i").to_pylist()]
    full, rest = divmod(total, batch_size)
    expected = total - rest if drop_last else total
    assert rows == list(range(expected))
    assert [b.num_rows for b in out] == [batch_size] * full + (
        [rest] if rest and not drop_last else []
    )


def test_a_batch_of_the_right_size_is_passed_on_as_it_is() -> None:
    batches = _batches([4, 4])
    out = list(rebatch(batches, 4))
    assert out[0] is batches[0] and out[1] is batches[1]


@settings(deadline=None)
@given(row_groups=st.integers(min_value=0, max_value=30), count=st.integers(1, 7))
def test_shards_together_read_every_row_group_exactly_once(row_groups: int, count: int) -> None:
    read = [g for index in range(count) for g in shard_row_groups(row_groups, (index, count))]
    assert sorted(read) == list(range(row_groups))


def test_shards_are_round_robin() -> None:
    assert shard_row_groups(7, (1, 3)) == [1, 4]


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8", None])
def test_a_bad_batch_size_is_a_config_error_naming_it(bad: object) -> None:
    with pytest.raises(ConfigError) as caught:
        check_batch_size(bad)
    assert caught.value.setting == "batch_size"


@pytest.mark.parametrize("bad", [(2, 2), (-1, 2), (0, 0), (0,), [0, 1], (0.0, 1), "0/2"])
def test_a_bad_shard_is_a_config_error_naming_it(bad: object) -> None:
    with pytest.raises(ConfigError) as caught:
        check_shard(bad)
    assert caught.value.setting == "shard"
    assert check_shard((1, 2)) == (1, 2)
