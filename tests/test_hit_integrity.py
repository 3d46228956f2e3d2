"""Issue 16: what a hit checks before it hands a value out, and what publishing trusts.

In-process: one ``FeatureCache`` on a SQLite catalog and a local store per test.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurecache import FeatureCache
from featurecache.fingerprint.arrow.content import fingerprint_table
from featurecache.settings import load_settings
from featurecache.store.local import LocalStore


def _session(fc: FeatureCache) -> tuple[int, int]:
    """(hits, misses) of this process: a miss is a computation (a call counter referenced by
    the function would be part of its code identity, and change its key)."""
    return fc.engine.session.hits, fc.engine.session.misses


@pytest.fixture
def fc(tmp_path: Path) -> Iterator[FeatureCache]:
    cache = FeatureCache(
        catalog=f"sqlite:///{tmp_path / 'catalog.db'}",
        store=tmp_path / "artifacts",
        compression="none",  # a flipped byte lands in a value, not in a compressed page
        background_publish=False,
    )
    try:
        yield cache
    finally:
        cache.close()


def _artifact_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.parquet") if "quarantine" not in p.parts]


def _quarantined(root: Path) -> list[Path]:
    return list((root / "quarantine").glob("*.parquet"))


def _flip_a_value_byte(path: Path, old: bytes, new: bytes) -> None:
    """Rewrite one stored value in place (and its statistics): same size, still a valid
    Parquet file, other values."""
    path.chmod(0o644)
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new))


def _frame() -> pl.DataFrame:
    return pl.DataFrame({"x": list(range(100)), "tag": ["ordinary"] * 99 + ["MARKER-AAAA"]})


# -- 1. lazy hits check content --------------------------------------------------------------


@pytest.mark.parametrize("how", ["lazyframe_result", "lazy_option"])
def test_a_lazy_hit_of_a_same_size_impostor_is_quarantined_and_recomputed(
    fc: FeatureCache, tmp_path: Path, how: str
) -> None:
    if how == "lazyframe_result":

        @fc.cached_feature
        def feature(n: int) -> pl.LazyFrame:
            return _frame().head(n).lazy()

    else:

        @fc.cached_feature(lazy=True)
        def feature(n: int) -> pl.DataFrame:
            return _frame().head(n)

    first = feature(100).collect()
    fc.engine.flush()
    [path] = _artifact_files(tmp_path / "artifacts")
    _flip_a_value_byte(path, b"MARKER-AAAA", b"MARKER-BBBB")

    second = feature(100).collect()

    assert second.equals(first), "a lazy hit served the impostor's values"
    assert _session(fc) == (0, 2)
    assert len(_quarantined(tmp_path / "artifacts")) == 1
    assert feature(100).collect().equals(first)
    assert _session(fc) == (1, 2)


def test_repeated_lazy_hits_of_an_unchanged_file_are_hashed_once(
    fc: FeatureCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    import featurecache.engine as engine_module

    @fc.cached_feature(lazy=True)
    def feature(n: int) -> pl.DataFrame:
        return _frame().head(n)

    hashed: list[str] = []
    real = engine_module.hash_file_bytes

    def counting(path: str) -> str:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(engine_module, "hash_file_bytes", counting)
    feature(100)  # the miss hands back a scan of the artifact it published: verified once
    fc.engine.flush()
    for _ in range(3):
        assert feature(100).collect().height == 100
    assert _session(fc) == (3, 1)
    assert len(hashed) == 1


def _swap_file_and_catalog(tmp_path: Path, path: Path, impostor: pa.Table) -> None:
    """A file that matches the catalog's size and hash but not its row count: what adopting
    a planted file at publish time, or a hand-edited catalog, leaves behind."""
    path.chmod(0o644)
    pq.write_table(impostor, path)
    data = path.read_bytes()
    from featurecache.hashing import digest_bytes

    with sqlite3.connect(tmp_path / "catalog.db") as db:
        db.execute(
            "UPDATE artifacts SET size_bytes = ?, file_hash = ?", (len(data), digest_bytes(data))
        )


@pytest.mark.parametrize("lazy", [False, True])
def test_a_footer_that_disagrees_with_the_catalog_is_quarantined(
    fc: FeatureCache, tmp_path: Path, lazy: bool
) -> None:
    @fc.cached_feature(lazy=lazy)
    def feature(n: int) -> pa.Table:
        return pa.table({"x": list(range(n))})

    feature(10)
    fc.engine.flush()
    [path] = _artifact_files(tmp_path / "artifacts")
    _swap_file_and_catalog(tmp_path, path, pa.table({"x": list(range(1_000))}))

    value = feature(10)

    rows = value.collect().height if lazy else value.num_rows
    assert rows == 10
    assert _session(fc) == (0, 2)
    assert len(_quarantined(tmp_path / "artifacts")) == 1


# -- 2. publishing does not adopt what already sits at the artifact's path ------------------


def _artifact_id_and_path(store: LocalStore, table: pa.Table) -> tuple[str, Path]:
    artifact_id = fingerprint_table(table)
    path = store.local_path(artifact_id)
    assert path is not None
    return artifact_id, path


def _planted(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


@pytest.mark.parametrize(
    "leftover", ["other_values", "truncated", "zeros"], ids=["planted", "damaged", "crashed"]
)
def test_publish_replaces_a_file_that_is_not_the_artifact(tmp_path: Path, leftover: str) -> None:
    from featurecache.parquet import write_parquet

    store = LocalStore(tmp_path / "artifacts")
    settings = load_settings(environ={}, cwd=tmp_path)
    table = pa.table({"x": list(range(50)), "y": [float(i) for i in range(50)]})
    artifact_id, path = _artifact_id_and_path(store, table)
    impostor = pa.table({"x": list(range(50)), "y": [0.0] * 50})
    _planted(path, impostor)
    if leftover == "truncated":
        path.write_bytes(path.read_bytes()[:-40])
    elif leftover == "zeros":
        path.write_bytes(bytes(path.stat().st_size))

    stored = store.publish(artifact_id, lambda p: write_parquet(table, p, settings, kind="arrow"))

    assert stored.created
    assert pq.read_table(path).equals(table)
    from featurecache.hashing import hash_file_bytes

    assert stored.file_hash == hash_file_bytes(str(path))
    assert stored.size_bytes == path.stat().st_size
    assert list(store.iter_temp()) == []


def test_publish_keeps_an_existing_file_with_the_same_content(tmp_path: Path) -> None:
    """Write-once still holds for a genuine artifact: other bytes, same logical content."""
    from featurecache.parquet import write_parquet

    store = LocalStore(tmp_path / "artifacts")
    settings = load_settings(environ={}, cwd=tmp_path)
    table = pa.table({"x": list(range(50))})
    artifact_id, path = _artifact_id_and_path(store, table)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="NONE")  # other bytes than the store's writer
    before = path.read_bytes()

    stored = store.publish(artifact_id, lambda p: write_parquet(table, p, settings, kind="arrow"))

    assert not stored.created
    assert path.read_bytes() == before


def test_a_planted_file_is_not_served_by_the_cache(fc: FeatureCache, tmp_path: Path) -> None:
    table = pa.table({"x": list(range(20))})

    @fc.cached_feature
    def feature() -> pa.Table:
        return table

    store = fc.engine.store
    assert isinstance(store, LocalStore)
    _, path = _artifact_id_and_path(store, table)
    _planted(path, pa.table({"x": [-1] * 20}))

    assert feature().equals(table)  # the miss returns its own value
    assert feature().equals(table)  # the hit reads the artifact
    assert pq.read_table(path).column("x").to_pylist() == list(range(20))


# -- 3. pandas None vs NaN in an object column ----------------------------------------------


def test_none_and_nan_in_an_object_column_are_different_inputs(fc: FeatureCache) -> None:
    pd = pytest.importorskip("pandas")

    @fc.cached_feature
    def is_none(df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"none": df["c"].apply(lambda v: v is None)})

    with_none = pd.DataFrame({"c": pd.Series(["a", None, "b"], dtype=object)})
    with_nan = pd.DataFrame({"c": pd.Series(["a", float("nan"), "b"], dtype=object)})

    assert is_none(with_none)["none"].tolist() == [False, True, False]
    assert is_none(with_nan)["none"].tolist() == [False, False, False]


def test_object_columns_without_nan_keep_their_fingerprint() -> None:
    pd = pytest.importorskip("pandas")
    from featurecache.frames import frame_to_arrow

    frame = pd.DataFrame({"c": pd.Series(["a", None, "b"], dtype=object), "n": [1.0, None, 2.0]})
    plain = pa.Table.from_pandas(frame, preserve_index=None)

    assert fingerprint_table(frame_to_arrow(frame, "pandas")) == fingerprint_table(plain)


@pytest.mark.s3
@pytest.mark.slow  # moto server
@pytest.mark.parametrize("kept", [False, True], ids=["impostor", "same_content"])
def test_s3_publish_verifies_an_existing_object_instead_of_its_metadata(
    s3_endpoint: Any, tmp_path: Path, kept: bool
) -> None:
    import io
    import uuid

    from featurecache.hashing import digest_bytes
    from featurecache.parquet import write_parquet
    from featurecache.store.s3.store import META_HASH, S3Store

    store = S3Store(s3_endpoint.bucket(), f"prefix-{uuid.uuid4().hex[:12]}")
    settings = load_settings(environ={}, cwd=tmp_path)
    table = pa.table({"x": list(range(50))})
    artifact_id = fingerprint_table(table)
    planted = io.BytesIO()
    pq.write_table(table if kept else pa.table({"x": [0] * 50}), planted, compression="NONE")
    ours = tmp_path / "ours.parquet"
    write_parquet(table, ours, settings, kind="arrow")
    key = store._key(f"{artifact_id[:2]}/{artifact_id[2:]}.parquet")
    # Metadata claiming the hash of the file the publish is about to write: not to be trusted.
    store._client().put_object(
        Bucket=store.bucket,
        Key=key,
        Body=planted.getvalue(),
        Metadata={META_HASH: digest_bytes(ours.read_bytes())},
    )

    stored = store.publish(artifact_id, lambda p: write_parquet(table, p, settings, kind="arrow"))

    data = bytes(store.read_bytes(artifact_id))
    assert stored.created is not kept
    assert stored.file_hash == digest_bytes(data)
    assert pq.read_table(pa.BufferReader(data)).equals(table)
    assert (data == planted.getvalue()) is kept


@pytest.mark.s3
@pytest.mark.slow  # moto server
def test_an_s3_lazy_hit_is_verified_and_scanned_from_the_download(
    s3_store_url: str, tmp_path: Path
) -> None:
    from featurecache.store.factory import open_store

    settings = load_settings(environ={}, cwd=tmp_path)
    store = open_store(s3_store_url, settings)
    with FeatureCache(
        catalog=f"sqlite:///{tmp_path / 'catalog.db'}",
        store=store,
        background_publish=False,
        local_tier="off",  # every hit downloads (the tier's own checks: tests/store/test_tier.py)
    ) as fc:

        @fc.cached_feature(lazy=True)
        def feature(n: int) -> pl.DataFrame:
            return _frame().head(n)

        feature(100)
        [obj] = list(store.iter_artifacts())
        assert obj.artifact_id is not None
        good = bytes(store.read_bytes(obj.artifact_id))
        key = store._key(obj.name)  # type: ignore[attr-defined]
        client = store._client()  # type: ignore[attr-defined]
        bucket = store.bucket  # type: ignore[attr-defined]

        hit = feature(100)
        assert hit.filter(pl.col("x") >= 99).collect()["tag"].to_list() == ["MARKER-AAAA"]
        # An impostor of the same size: the next lazy hit downloads, checks and recomputes.
        client.put_object(Bucket=bucket, Key=key, Body=good.replace(b"AAAA", b"BBBB"))
        again = feature(100)
        assert again.filter(pl.col("x") >= 99).collect()["tag"].to_list() == ["MARKER-AAAA"]
        assert _session(fc) == (1, 2)
