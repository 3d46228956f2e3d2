"""Issue 14: the local tier in front of an S3 store (``featurecache.store.tier``).

Real moto S3 (``tests.fixtures_s3``), real Parquet, SQLite and PostgreSQL catalogs, and real
processes for the races (two downloads of one artifact; hits racing with eviction).
"""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from featurecache import FeatureCache
from featurecache.catalog.records import ArtifactRecord
from featurecache.errors import ArtifactCorruptError
from featurecache.hashing import hash_file_bytes
from featurecache.store.factory import open_store
from featurecache.store.s3.store import S3Store
from featurecache.store.tier import USED_SUFFIX, LocalTier

pytestmark = [pytest.mark.s3, pytest.mark.slow]  # the moto server


def _frame(n: int, tag: str = "AAAA") -> pl.DataFrame:
    return pl.DataFrame({"x": list(range(n)), "tag": [f"MARKER-{tag}"] * n})


def _cache(
    tmp_path: Path, store_url: str, catalog_url: str | None = None, **settings: Any
) -> FeatureCache:
    return FeatureCache(
        catalog=catalog_url or f"sqlite:///{tmp_path / 'catalog.db'}",
        store=store_url,
        state_dir=tmp_path / "state",
        compression="none",  # a flipped byte lands in a value
        background_publish=False,
        **settings,
    )


def _session(fc: FeatureCache) -> tuple[int, int]:
    return fc.engine.session.hits, fc.engine.session.misses


def _tier_files(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("??/*.parquet"))


def _only_record(fc: FeatureCache) -> ArtifactRecord:
    store = fc.engine.store
    [obj] = list(store.iter_artifacts())
    assert obj.artifact_id is not None
    record = fc.engine.catalog.get_artifact(obj.artifact_id)
    assert record is not None
    return record


def _feature(fc: FeatureCache) -> Any:
    @fc.cached_feature
    def feature(n: int) -> pl.DataFrame:
        return _frame(n)

    return feature


def _plant_impostor(fc: FeatureCache, record: ArtifactRecord) -> S3Store:
    """Replace the remote object with one of the same size holding other values."""
    store = fc.engine.store
    assert isinstance(store, S3Store)
    good = bytes(store.read_bytes(record.artifact_id))
    key = store._key(f"{record.artifact_id[:2]}/{record.artifact_id[2:]}.parquet")
    store._client().put_object(Bucket=store.bucket, Key=key, Body=good.replace(b"AAAA", b"BBBB"))
    return store


@pytest.fixture
def tier_root(tmp_path: Path) -> Path:
    return tmp_path / "state" / "tier"


def test_a_hit_downloads_once_then_reads_the_verified_local_copy(
    s3_store_url: str, tmp_path: Path, tier_root: Path, any_catalog_url: str
) -> None:
    with _cache(tmp_path, s3_store_url, any_catalog_url) as fc:
        feature = _feature(fc)
        feature(100)  # a miss publishes to S3; nothing is in the tier yet
        assert _tier_files(tier_root) == []
        record = _only_record(fc)
        assert feature(100)["tag"][99] == "MARKER-AAAA"
        [copy] = _tier_files(tier_root)
        assert copy.name == record.artifact_id[2:] + ".parquet"
        assert hash_file_bytes(str(copy)) == record.file_hash
        assert not copy.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
        assert copy.with_suffix(USED_SUFFIX).exists()

        _plant_impostor(fc, record)  # the tier copy is what hits read
        assert feature(100)["tag"][99] == "MARKER-AAAA"
        lazy = fc.engine._read(record, "lazy")
        assert lazy.collect()["tag"][0] == "MARKER-AAAA"
        assert _session(fc) == (2, 1)
        assert not list(tier_root.glob("??/.tmp-*"))


def test_a_damaged_tier_copy_is_downloaded_again_and_the_remote_is_kept(
    s3_store_url: str, tmp_path: Path, tier_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with _cache(tmp_path, s3_store_url) as fc:
        feature = _feature(fc)
        feature(100)
        feature(100)
        [copy] = _tier_files(tier_root)
        # Same size, still valid Parquet, another value: only the hash can tell.
        copy.chmod(0o644)
        copy.write_bytes(copy.read_bytes().replace(b"AAAA", b"CCCC"))
        assert feature(100)["tag"][0] == "MARKER-AAAA"
        [again] = _tier_files(tier_root)
        assert hash_file_bytes(str(again)) == _only_record(fc).file_hash  # downloaded again
        assert "downloading it again" in caplog.text
        # A truncated copy (wrong size) is replaced before it is even hashed.
        again.chmod(0o644)
        again.write_bytes(again.read_bytes()[:100])
        assert feature(100)["tag"][0] == "MARKER-AAAA"
        assert _session(fc) == (3, 1)
        store = fc.engine.store
        assert [o.artifact_id for o in store.iter_artifacts()] == [_only_record(fc).artifact_id]


def test_a_bad_download_is_never_kept_and_quarantines_the_remote(
    s3_store_url: str, tmp_path: Path, tier_root: Path
) -> None:
    with _cache(tmp_path, s3_store_url) as fc:
        feature = _feature(fc)
        feature(100)
        record = _only_record(fc)
        store = _plant_impostor(fc, record)
        tier = fc.engine.tier
        assert tier is not None
        with pytest.raises(ArtifactCorruptError):
            tier.fetch(store, record.artifact_id, record.size_bytes, record.file_hash)
        assert _tier_files(tier_root) == [] and not list(tier_root.glob("??/.tmp-*"))
        # Through the engine: quarantined, recomputed, republished, then served.
        assert feature(100)["tag"][0] == "MARKER-AAAA"
        assert _session(fc) == (0, 2)
        assert feature(100)["tag"][0] == "MARKER-AAAA"
        assert len(_tier_files(tier_root)) == 1


def test_least_recently_used_copies_are_evicted_but_never_a_held_one(
    s3_store_url: str, tmp_path: Path, tier_root: Path
) -> None:
    with _cache(tmp_path, s3_store_url) as fc:
        feature = _feature(fc)
        for n in (1000, 1001, 1002):
            feature(n)
        records = sorted(
            (
                fc.engine.catalog.get_artifact(o.artifact_id)
                for o in fc.engine.store.iter_artifacts()
            ),
            key=lambda r: r.rows if r else 0,
        )
        assert all(r is not None for r in records)
        size = max(r.size_bytes for r in records if r is not None)
        tier = fc.engine.tier
        assert tier is not None
        tier.max_bytes = 2 * size + size // 2  # room for two copies

        lazy_first = fc.engine._read(records[0], "lazy")  # held by its scan, not collected
        feature(1001)
        feature(1002)  # over the bound: the oldest copy (1000) is held, so 1001 goes
        held = {p.name[:30] for p in _tier_files(tier_root)}
        assert records[0] is not None and records[0].artifact_id[2:] in held
        assert records[1] is not None and records[1].artifact_id[2:] not in held
        assert lazy_first.collect().height == 1000
        usage = tier.usage()
        assert usage.files == 2 and usage.bytes <= tier.max_bytes + size

        # Bigger than the bound: read from the remote directly, never stored.
        tier.max_bytes = size // 2
        assert feature(1001).height == 1001
        assert records[1].artifact_id[2:] not in {p.name[:30] for p in _tier_files(tier_root)}


def test_off_means_every_hit_reads_the_remote_and_nothing_is_written(
    s3_store_url: str, tmp_path: Path, tier_root: Path
) -> None:
    with _cache(tmp_path, s3_store_url, local_tier="off") as fc:
        assert fc.engine.tier is None
        feature = _feature(fc)
        feature(10)
        assert feature(10).height == 10
        assert fc.engine.local_artifact_path(_only_record(fc)) is None
    assert not tier_root.exists()


def test_a_folder_given_in_the_setting_is_used(s3_store_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere"
    with _cache(tmp_path, s3_store_url, local_tier=str(folder)) as fc:
        feature = _feature(fc)
        feature(10)
        record = _only_record(fc)
        path = fc.engine.local_artifact_path(record)  # what a streaming reader calls
        assert path == folder / record.artifact_id[:2] / f"{record.artifact_id[2:]}.parquet"
        assert hash_file_bytes(str(path)) == record.file_hash
        path.chmod(0o644)
        path.write_bytes(path.read_bytes().replace(b"AAAA", b"DDDD"))
        again = fc.engine.local_artifact_path(record)  # verified: downloaded again
        assert again == path and hash_file_bytes(str(again)) == record.file_hash


# -- several processes --------------------------------------------------------------------


def _fetch_in_child(
    store_url: str, root: str, record: tuple[str, int, str], barrier: Any, out: Any
) -> None:
    from featurecache.settings import load_settings

    store = open_store(store_url, load_settings(environ={}), check=False)
    assert isinstance(store, S3Store)
    tier = LocalTier(Path(root), 10**9)
    barrier.wait()
    path = tier.fetch(store, *record)
    out.put(str(path))


def test_two_processes_downloading_one_artifact_end_with_one_good_file(
    s3_store_url: str, tmp_path: Path, tier_root: Path
) -> None:
    with _cache(tmp_path, s3_store_url) as fc:
        feature = _feature(fc)
        feature(200_000)
        record = _only_record(fc)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    out = context.Queue()
    args = (s3_store_url, str(tier_root), (record.artifact_id, record.size_bytes, record.file_hash))
    children = [context.Process(target=_fetch_in_child, args=(*args, barrier, out)) for _ in "ab"]
    for child in children:
        child.start()
    paths = {out.get(timeout=120), out.get(timeout=120)}
    for child in children:
        child.join()
        assert child.exitcode == 0
    [copy] = _tier_files(tier_root)
    assert paths == {str(copy)}
    assert hash_file_bytes(str(copy)) == record.file_hash
    assert not list(tier_root.glob("??/.tmp-*"))


def _race_features(fc: FeatureCache) -> tuple[Any, Any]:
    """The same two features (the same keys) in the test and in its child process."""

    @fc.cached_feature(lazy=True)
    def scanned(n: int) -> pl.DataFrame:
        return _frame(n)

    return _feature(fc), scanned


def _hits_in_child(
    tmp: str, store_url: str, rounds: int, evicting: Any, evictions: Any, done: Any, out: Any
) -> None:
    fc = _cache(Path(tmp), store_url)
    feature, scanned = _race_features(fc)
    held = scanned(7000)  # a scan handed out before the evictions, collected after them
    bad = calls = 0
    evicting.wait()  # the evictor is running: every hit below races with it
    while calls < rounds or evictions.value < 5:  # at least 5 eviction rounds during the hits
        n = 5000 + calls % 3
        frame = feature(n)  # eager hits: their copies are evicted and downloaded again
        bad += frame.height != n or frame["x"].sum() != n * (n - 1) // 2
        calls += 1
    bad += held.collect()["x"].sum() != 7000 * 6999 // 2
    done.set()  # the evictor stops before this process releases its holds at exit
    out.put((bad, calls, fc.engine.session.hits, fc.engine.session.misses))
    fc.close()


def _evict_in_child(root: str, evicting: Any, evictions: Any, done: Any) -> None:
    tier = LocalTier(Path(root), 1)  # evicts every copy it may
    while not done.is_set():
        tier.evict()
        with evictions.get_lock():
            evictions.value += 1
        evicting.set()


def test_hits_racing_with_eviction_stay_correct(
    s3_store_url: str, tmp_path: Path, tier_root: Path
) -> None:
    with _cache(tmp_path, s3_store_url) as fc:
        feature, scanned = _race_features(fc)
        for n in (5000, 5001, 5002):
            feature(n)
        scanned(7000).collect()
        [held_path] = [
            fc.engine.tier.path_of(record.artifact_id)  # type: ignore[union-attr]
            for obj in fc.engine.store.iter_artifacts()
            if (record := fc.engine.catalog.get_artifact(str(obj.artifact_id))) is not None
            and record.rows == 7000
        ]
    context = multiprocessing.get_context("spawn")
    evicting, done, evictions = context.Event(), context.Event(), context.Value("i", 0)
    hits_out = context.Queue()
    hitter = context.Process(
        target=_hits_in_child,
        args=(str(tmp_path), s3_store_url, 60, evicting, evictions, done, hits_out),
    )
    evictor = context.Process(
        target=_evict_in_child, args=(str(tier_root), evicting, evictions, done)
    )
    hitter.start()
    evictor.start()
    try:
        bad, calls, hits, misses = hits_out.get(timeout=600)
    finally:
        done.set()  # a failed hitter must not leave the evictor running
        for child in (hitter, evictor):
            child.join(timeout=120)
            if child.is_alive():
                child.kill()
    assert (hitter.exitcode, evictor.exitcode) == (0, 0)
    assert (bad, hits, misses) == (0, calls + 1, 0)
    assert calls >= 60 and evictions.value >= 5
    assert held_path.exists()  # the held copy outlived every eviction round


def test_download_to_streams_into_a_file_with_its_hash(s3_store_url: str, tmp_path: Path) -> None:
    from featurecache.settings import load_settings

    store = open_store(s3_store_url, load_settings(environ={}, cwd=tmp_path))
    assert isinstance(store, S3Store)
    payload = os.urandom(3 << 20)
    stored = store.publish("ab" * 16, lambda p: p.write_bytes(payload))
    target = tmp_path / "copy"
    assert store.download_to("ab" * 16, target) == (len(payload), stored.file_hash)
    assert target.read_bytes() == payload
