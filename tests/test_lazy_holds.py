"""Issue 16, item 5: a lazy local hit is a scan of a file GC may delete before ``.collect()``.

The scan reads a per-process hold (a hard link in ``<store>/.holds/<host>-<pid>/``), so GC
unlinking the artifact's name leaves the scanned file alive; holds are never listed as
artifacts or temp files, are removed at exit, and stale ones are swept by gc and verify.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from featurecache import FeatureCache
from featurecache.ops.gc_plan import GcPolicy
from featurecache.ops.gc_run import collect_garbage
from featurecache.store.local import HOLDS_DIR, LocalStore, release_holds

DELETE_ALL = GcPolicy(older_than=timedelta(microseconds=1), grace=timedelta(0))


@pytest.fixture
def fc(tmp_path: Path) -> Iterator[FeatureCache]:
    cache = FeatureCache(
        catalog=f"sqlite:///{tmp_path / 'catalog.db'}",
        store=tmp_path / "artifacts",
        background_publish=False,
    )
    try:
        yield cache
    finally:
        cache.close()


def _frame(n: int) -> pl.DataFrame:
    return pl.DataFrame({"a": list(range(n)), "b": [f"v{i}" for i in range(n)]})


def _artifacts(root: Path) -> list[Path]:
    return [p for shard in root.iterdir() if len(shard.name) == 2 for p in shard.iterdir()]


@pytest.mark.parametrize("how", ["lazyframe_result", "lazy_option"])
def test_a_lazy_hit_survives_gc_deleting_its_artifact_before_collect(
    fc: FeatureCache, tmp_path: Path, how: str
) -> None:
    if how == "lazyframe_result":

        @fc.cached_feature
        def feature(n: int) -> pl.LazyFrame:
            return _frame(n).lazy()

    else:

        @fc.cached_feature(lazy=True)
        def feature(n: int) -> pl.DataFrame:  # type: ignore[misc]
            return _frame(n)

    miss = feature(50)
    fc.engine.flush()
    hit = feature(50)
    assert isinstance(hit, pl.LazyFrame) and isinstance(miss, pl.LazyFrame)
    assert fc.engine.session.hits == 1

    result = collect_garbage(fc.engine.catalog, fc.engine.store, DELETE_ALL)
    assert result.files_removed == 1
    assert _artifacts(tmp_path / "artifacts") == []

    assert hit.collect().equals(_frame(50)), "a lazy hit lost its file to gc"
    assert miss.collect().equals(_frame(50)), "a lazy miss lost its file to gc"
    # The next call recomputes (the row is gone) and works as before.
    assert feature(50).collect().equals(_frame(50))


def test_holds_are_never_listed_as_artifacts_or_temp_files(
    fc: FeatureCache, tmp_path: Path
) -> None:
    @fc.cached_feature(lazy=True)
    def feature(n: int) -> pl.DataFrame:
        return _frame(n)

    feature(10)
    feature(10).collect()
    store = fc.engine.store
    assert isinstance(store, LocalStore)
    holds = list((store.root / HOLDS_DIR).rglob("*"))
    assert any(p.is_file() for p in holds)
    assert [obj.artifact_id for obj in store.iter_artifacts()] == [
        p.parent.name + p.stem for p in _artifacts(store.root)
    ]
    assert list(store.iter_temp()) == []


def test_repeated_lazy_hits_reuse_one_hold(fc: FeatureCache) -> None:
    @fc.cached_feature(lazy=True)
    def feature(n: int) -> pl.DataFrame:
        return _frame(n)

    for _ in range(4):
        assert feature(20).collect().height == 20
    store = fc.engine.store
    assert isinstance(store, LocalStore)
    mine = store.root / HOLDS_DIR / f"{socket.gethostname()}-{os.getpid()}"
    assert len(list(mine.iterdir())) == 1


def test_release_holds_removes_this_process_folder(fc: FeatureCache) -> None:
    @fc.cached_feature(lazy=True)
    def feature(n: int) -> pl.DataFrame:
        return _frame(n)

    feature(5).collect()
    store = fc.engine.store
    assert isinstance(store, LocalStore)
    mine = store.root / HOLDS_DIR / f"{socket.gethostname()}-{os.getpid()}"
    assert mine.is_dir()
    release_holds()
    assert not mine.exists()
    assert feature(5).collect().height == 5  # holds again after a release


def test_stale_holds_of_dead_processes_are_swept(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "artifacts")
    folder = store.root / HOLDS_DIR
    host = socket.gethostname()
    dead_pid = 2**22 + 12345  # above Linux's pid_max default range: no such process
    dead = folder / f"{host}-{dead_pid}"
    alive = folder / f"{host}-{os.getpid()}"
    elsewhere = folder / f"another-host-{dead_pid}"
    for path in (dead, alive, elsewhere):
        path.mkdir(parents=True)
        (path / "x.hold").write_bytes(b"held")
    assert store.sweep_holds() == 1
    assert not dead.exists() and alive.is_dir() and elsewhere.is_dir()


def test_gc_sweeps_stale_holds(fc: FeatureCache) -> None:
    store = fc.engine.store
    assert isinstance(store, LocalStore)
    dead = store.root / HOLDS_DIR / f"{socket.gethostname()}-{2**22 + 4321}"
    dead.mkdir(parents=True)
    (dead / "x.hold").write_bytes(b"held")
    collect_garbage(fc.engine.catalog, store, DELETE_ALL)
    assert not dead.exists()


@pytest.mark.slow
def test_a_process_removes_its_holds_at_exit(tmp_path: Path) -> None:
    script = f"""
import polars as pl
from featurecache import FeatureCache
fc = FeatureCache(catalog="sqlite:///{tmp_path / "catalog.db"}", store="{tmp_path / "artifacts"}",
                  background_publish=False)
@fc.cached_feature(lazy=True)
def feature(n: int) -> pl.DataFrame:
    return pl.DataFrame({{"a": list(range(n))}})
assert feature(3).collect().height == 3
assert feature(3).collect().height == 3
import pathlib
assert list(pathlib.Path("{tmp_path / "artifacts" / HOLDS_DIR}").iterdir())
"""
    subprocess.run([sys.executable, "-c", script], check=True)
    folder = tmp_path / "artifacts" / HOLDS_DIR
    assert not folder.exists() or list(folder.iterdir()) == []
