"""Partition sources and the checks ``Feature.map`` makes before any task starts: hive
folders, globs, lists of dicts, and a clear ``ConfigError`` naming the argument for bad input."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from featurecache import Feature, FeatureCache
from featurecache.errors import ConfigError
from featurecache.partitions import Partition, files, hive
from featurecache.partitions.sources import as_partitions, label_of
from tests.fixtures_s3 import S3Endpoint


def _days(root: Path, *days: str) -> None:
    for day in days:
        (root / f"day={day}").mkdir(parents=True)
        (root / f"day={day}" / "part.parquet").write_bytes(b"x")


def test_hive_lists_key_folders_sorted_with_value_and_folder(tmp_path: Path) -> None:
    _days(tmp_path, "2026-01-02", "2026-01-01")
    (tmp_path / "other").mkdir()
    (tmp_path / "day=").mkdir()  # no value: not a partition
    (tmp_path / "day=x.txt").write_text("a file, not a folder")
    found = hive(tmp_path, key="day")
    assert [p.label for p in found] == ["day=2026-01-01", "day=2026-01-02"]
    assert found[0].kwargs == {"day": "2026-01-01", "path": tmp_path / "day=2026-01-01"}
    renamed = hive(str(tmp_path), key="day", path_arg="folder", value_arg="date")
    assert renamed[1].kwargs == {"date": "2026-01-02", "folder": tmp_path / "day=2026-01-02"}


def test_hive_refuses_a_missing_folder_an_empty_one_and_bad_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a folder") as missing:
        hive(tmp_path / "nope")
    assert missing.value.setting == "location"
    with pytest.raises(ConfigError, match=r"holds no day=… folder"):
        hive(tmp_path)
    with pytest.raises(ConfigError) as bad_key:
        hive(tmp_path, key="not a name")
    assert bad_key.value.setting == "key"


def test_files_gives_one_partition_per_matching_file(tmp_path: Path) -> None:
    for name in ("2026/01/01.parquet", "2026/01/02.parquet", "2026/notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = files(tmp_path / "**" / "*.parquet")
    assert [p.label for p in found] == ["2026/01/01.parquet", "2026/01/02.parquet"]
    assert found[0].kwargs == {"path": tmp_path / "2026/01/01.parquet"}
    with pytest.raises(ConfigError, match="matches no file"):
        files(tmp_path / "*.csv")


def test_a_list_of_dicts_is_labelled_and_checked() -> None:
    found = as_partitions([{"day": "2026-01-01"}, {"day": "2026-01-02", "n": 3}])
    assert [p.label for p in found] == ["day=2026-01-01", "day=2026-01-02,n=3"]
    assert label_of({"p": Path("/a/b.parquet")}) == "p=b.parquet"
    with pytest.raises(ConfigError, match="not a list of partitions"):
        as_partitions({"day": "2026-01-01"})
    with pytest.raises(ConfigError, match="item 1 is a int"):
        as_partitions([{"day": "a"}, 3])
    with pytest.raises(ConfigError, match="no partitions"):
        as_partitions([])
    with pytest.raises(ConfigError, match="items 0 and 1 are the same partition"):
        as_partitions([{"day": "a"}, Partition("day=a", {"day": "a"})])


@pytest.fixture
def cache(tmp_path: Path) -> FeatureCache:
    return FeatureCache(catalog=f"sqlite:///{tmp_path / 'c.db'}", store=tmp_path / "store")


def test_map_checks_arguments_before_any_task_runs(cache: FeatureCache) -> None:
    ran: list[str] = []

    @cache.cached_feature
    def daily(day: str, scale: int = 1) -> pl.DataFrame:
        ran.append(day)
        return pl.DataFrame({"day": [day], "v": [scale]})

    with pytest.raises(ConfigError, match="partition d=x cannot call") as unknown:
        daily.map([{"day": "a"}, {"d": "x"}])
    assert unknown.value.setting == "partitions"
    with pytest.raises(ConfigError) as twice:
        daily.map([{"day": "a"}], day="b")
    assert twice.value.setting == "day"
    with pytest.raises(ConfigError) as executor:
        daily.map([{"day": "a"}], executor="gpu")
    assert executor.value.setting == "executor"
    with pytest.raises(ConfigError) as retries:
        daily.map([{"day": "a"}], retries=-1)
    assert retries.value.setting == "retries"
    assert ran == []


def test_map_in_process_and_on_threads_shares_keys_with_plain_calls(cache: FeatureCache) -> None:
    @cache.cached_feature
    def daily(day: str, scale: int = 1) -> pl.DataFrame:
        return pl.DataFrame({"day": [day] * 3, "v": [scale, scale + 1, scale + 2]})

    daily("2026-01-01", scale=2)  # a plain call: the same key as the first partition's
    days = [{"day": f"2026-01-0{i}"} for i in range(1, 4)]
    first = daily.map(days, scale=2)
    assert (first.hits, first.misses) == (1, 2)
    again = daily.map(days, executor="threads", scale=2)
    assert (again.hits, again.misses) == (3, 0)
    assert again.ref == first.ref and again.parts == first.parts
    got = again.lazy().filter(pl.col("day") > "2026-01-01").select("v").collect()
    assert got["v"].to_list() == [2, 3, 4, 2, 3, 4]


def test_a_partition_that_returns_no_frame_is_refused(cache: FeatureCache) -> None:
    from featurecache.errors import UnsupportedOutputError

    @cache.cached_feature
    def pair(day: str) -> tuple[pl.DataFrame, pl.DataFrame]:
        return pl.DataFrame({"a": [1]}), pl.DataFrame({"b": [2]})

    with pytest.raises(UnsupportedOutputError, match="one frame per partition"):
        pair.map([{"day": "a"}])


@pytest.mark.s3
def test_an_s3_prefix_of_hive_folders_maps_and_a_changed_day_recomputes_alone(
    s3_endpoint: S3Endpoint, cache: FeatureCache
) -> None:
    client = s3_endpoint.client()
    bucket = s3_endpoint.bucket()
    prefix = f"clicks-{uuid.uuid4().hex[:8]}"
    for day in ("2026-01-02", "2026-01-01", "2026-01-03"):
        client.put_object(Bucket=bucket, Key=f"{prefix}/day={day}/clicks.parquet", Body=b"v1")
    client.put_object(Bucket=bucket, Key=f"{prefix}/_SUCCESS", Body=b"")  # not a partition
    found = hive(f"s3://{bucket}/{prefix}", key="day")
    assert [p.label for p in found] == ["day=2026-01-01", "day=2026-01-02", "day=2026-01-03"]
    assert found[0].kwargs == {
        "day": "2026-01-01",
        "path": f"s3://{bucket}/{prefix}/day=2026-01-01/",
    }

    @cache.cached_feature
    def listed(day: str, path: str) -> pl.DataFrame:
        return pl.DataFrame({"day": [day], "path": [path]})

    first = listed.map(found)
    assert (first.hits, first.misses) == (0, 3)
    client.put_object(Bucket=bucket, Key=f"{prefix}/day=2026-01-02/clicks.parquet", Body=b"v2")
    again = listed.map(hive(f"s3://{bucket}/{prefix}", key="day"))
    assert (again.hits, again.misses) == (2, 1)
    changed = [a != b for a, b in zip(first.key_ids, again.key_ids, strict=True)]
    assert changed == [False, True, False]  # the day's key follows the objects under it
    assert again.lazy().select("day").collect()["day"].to_list() == [
        "2026-01-01",
        "2026-01-02",
        "2026-01-03",
    ]


def _daily(tmp_path: Path, **settings: Any) -> Feature[[str], pl.DataFrame]:
    cache = FeatureCache(catalog=f"sqlite:///{tmp_path / 'c.db'}", store=tmp_path / "s", **settings)

    @cache.cached_feature
    def daily(day: str) -> pl.DataFrame:
        return pl.DataFrame({"day": [day]})

    return daily


def test_a_cache_that_cannot_store_says_so_instead_of_naming_no_artifact(tmp_path: Path) -> None:
    from featurecache.errors import PartitionNotStoredError

    daily = _daily(tmp_path, read_only=True)
    with pytest.raises(PartitionNotStoredError, match="FEATURECACHE_READ_ONLY") as refused:
        daily.map([{"day": "2026-01-01"}])
    assert refused.value.feature == daily.name


def test_caching_disabled_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"feature\.func") as refused:
        _daily(tmp_path, disable=True).map([{"day": "2026-01-01"}])
    assert refused.value.setting == "FEATURECACHE_DISABLE"
