"""Repeated hits on small artifacts are served from this process's memo of decoded values
(``featurecache.parquet_memo``): each hit gets its own object, a changed file is never served
from it, and values whose cells may be mutable are never kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from featurecache import FeatureCache, parquet_memo


@pytest.fixture
def fc(tmp_path: Path) -> Iterator[FeatureCache]:
    parquet_memo.clear()
    cache = FeatureCache(
        catalog=f"sqlite:///{tmp_path / 'catalog.db'}",
        store=tmp_path / "artifacts",
        compression="none",
        background_publish=False,
    )
    try:
        yield cache
    finally:
        cache.close()
        parquet_memo.clear()


def _session(fc: FeatureCache) -> tuple[int, int]:
    return fc.engine.session.hits, fc.engine.session.misses


def test_a_polars_hit_changed_in_place_does_not_change_the_next_hit(fc: FeatureCache) -> None:
    @fc.cached_feature
    def feature(n: int) -> pl.DataFrame:
        return pl.DataFrame({"x": list(range(n)), "tag": ["a"] * n})

    expected = feature(3)
    first = feature(3)
    first.insert_column(0, pl.Series("extra", [9, 9, 9]))
    first.drop_in_place("x")
    second = feature(3)
    assert second is not first
    assert_frame_equal(second, expected)
    assert _session(fc) == (2, 1)


def test_a_pandas_hit_assigned_to_does_not_change_the_next_hit(fc: FeatureCache) -> None:
    @fc.cached_feature
    def feature(n: int) -> pd.DataFrame:
        index = pd.date_range("2024-01-01", periods=n, freq="D", name="day")
        return pd.DataFrame({"x": range(n), "tag": ["a"] * n}, index=index)

    expected = feature(4)
    first = feature(4)
    first.loc[first.index[0], "x"] = -1
    first["tag"] = "changed"
    second = feature(4)
    pd.testing.assert_frame_equal(second, expected, check_freq=True)
    assert second.index.freq == expected.index.freq
    assert _session(fc) == (2, 1)


def test_a_file_rewritten_after_a_hit_is_checked_again_and_never_served(
    fc: FeatureCache, tmp_path: Path
) -> None:
    @fc.cached_feature
    def feature(n: int) -> pl.DataFrame:
        return pl.DataFrame({"x": list(range(n)), "tag": ["ordinary"] * (n - 1) + ["MARKER-A"]})

    expected = feature(5)
    feature(5)  # decoded and kept
    [path] = [p for p in (tmp_path / "artifacts").rglob("*.parquet") if "quarantine" not in p.parts]
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b"MARKER-A", b"MARKER-B"))  # same size
    again = feature(5)
    assert_frame_equal(again, expected)
    assert _session(fc) == (1, 2)  # recomputed, not served from the memo


def test_object_cells_that_may_be_mutable_are_not_kept() -> None:
    frame = pd.DataFrame({"lists": [[1], [2]], "text": ["a", "b"]}).astype({"text": object})
    identity = ("/nowhere", 1, 1, 10, 1, 1)
    handed = parquet_memo.put(identity, ("h", 2, 2), "pandas", frame)
    assert handed is frame
    assert parquet_memo.get(identity, ("h", 2, 2), "pandas") is None
    strings = frame[["text"]]
    kept = parquet_memo.put(identity, ("h", 2, 1), "pandas", strings)
    assert kept is not strings
    assert parquet_memo.get(identity, ("h", 2, 1), "pandas") is not None
    parquet_memo.clear()


def test_a_different_record_or_file_identity_is_not_served() -> None:
    frame = pl.DataFrame({"x": [1]})
    identity = ("/nowhere", 1, 1, 10, 1, 1)
    parquet_memo.put(identity, ("h", 1, 1), "polars", frame)
    assert parquet_memo.get(identity, ("other", 1, 1), "polars") is None
    assert parquet_memo.get((*identity[:5], 2), ("h", 1, 1), "polars") is None
    assert parquet_memo.get(identity, ("h", 1, 1), "arrow") is None
    got = parquet_memo.get(identity, ("h", 1, 1), "polars")
    assert got is not frame
    assert_frame_equal(got, frame)
    parquet_memo.clear()


def test_polars_hits_served_from_the_memo_are_carried_until_changed(fc: FeatureCache) -> None:
    """A hit's copy is carried (the next feature does not rehash it) with the layout signature
    of the frame the memo keeps, which it shares; a copy changed in place is not carried."""
    from featurecache.fingerprint import carry
    from featurecache.fingerprint.arrow.content import fingerprint_table

    @fc.cached_feature
    def feature(n: int) -> pl.DataFrame:
        return pl.DataFrame({"x": list(range(n)), "tag": ["a"] * n})

    feature(3)
    decoded, copied = feature(3), feature(3)  # decoded and kept, then a copy of the kept one
    artifact_id = fingerprint_table(decoded.to_arrow(compat_level=pl.CompatLevel.newest()))
    assert carry.recall(decoded) == carry.recall(copied) == artifact_id
    copied.replace_column(0, pl.Series("x", [7, 8, 9]))
    assert carry.recall(copied) is None
    assert carry.recall(feature(3)) == artifact_id
    assert _session(fc) == (3, 1)
