"""Read-only consumers and full disks (issue 16, items 8 and 9): a cache whose store or catalog
cannot be written still serves hits and computes misses, warning once per process."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from featurecache import FeatureCache
from featurecache import publish as publish_module
from featurecache.settings import load_settings


def _mount(folder: Path, size: str = "4m") -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs of our own (skipped where this sandbox cannot mount)."""
    folder = tmp_path / "mnt"
    if os.geteuid() != 0 or not _mount(folder):
        pytest.skip("needs root and a working `mount -t tmpfs`")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def _remount_read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    # "Once per process": each test starts as a fresh process would.
    monkeypatch.setattr(publish_module, "_WARNED", set())


def _numbers(n: int) -> pl.DataFrame:
    return pl.DataFrame({"x": list(range(n))})


def _cache(catalog: str, store: Path, **settings: object) -> FeatureCache:
    return FeatureCache(catalog=catalog, store=store, **settings)


def _warm(catalog: str, store: Path) -> None:
    fc = _cache(catalog, store)
    try:
        fc.cached_feature(_numbers)(3)
        fc.engine.flush()
    finally:
        fc.close()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- item 8: read-only stores and the read_only setting ----------------------------------------


def test_read_only_setting_parses_from_every_source(tmp_path: Path) -> None:
    assert load_settings(environ={}, cwd=tmp_path).read_only is False
    assert load_settings(environ={"FEATURECACHE_READ_ONLY": "1"}, cwd=tmp_path).read_only is True
    (tmp_path / "pyproject.toml").write_text("[tool.featurecache]\nread_only = true\n")
    assert load_settings(environ={}, cwd=tmp_path).read_only is True
    assert load_settings(environ={}, cwd=tmp_path, read_only=False).read_only is False


@pytest.mark.slow
def test_a_read_only_store_serves_hits_and_computes_misses(
    mounted: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    store = mounted / "artifacts"
    _warm(catalog, store)
    _remount_read_only(mounted)

    fc = _cache(catalog, store)
    try:
        feature = fc.cached_feature(_numbers)
        with caplog.at_level(logging.WARNING, logger="featurecache"):
            assert feature(3).equals(_numbers(3))  # a hit
            assert feature(4).equals(_numbers(4))  # a miss, computed, not stored
            assert feature(5).equals(_numbers(5))
            fc.engine.flush()
        assert fc.engine.session.hits == 1
        assert len(_warnings(caplog)) == 1, _warnings(caplog)
        assert fc.engine.catalog.lookup(fc.engine.key_for(feature, (4,), {})[0].key_id) is None
    finally:
        fc.close()


def test_read_only_true_never_stores_nor_leases(tmp_path: Path) -> None:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    store = tmp_path / "a"
    _warm(catalog, store)
    before = sorted(p.name for p in store.rglob("*"))

    fc = _cache(catalog, store, read_only=True)
    try:
        engine = fc.engine

        def no_writes(*args: object, **kwargs: object) -> None:
            raise AssertionError("a read-only cache wrote to its catalog")

        for name in ("try_acquire_lease", "take_over_lease", "publish"):
            setattr(engine.catalog, name, no_writes)
        feature = fc.cached_feature(_numbers)
        assert feature(3).equals(_numbers(3))  # a hit
        assert feature(4).equals(_numbers(4))  # computed, not stored
        lazy = fc.cached_feature(lazy=True)(_numbers)
        assert lazy(6).collect().equals(_numbers(6))
        fc.engine.flush()
        assert (engine.session.hits, engine.session.misses) == (1, 2)
    finally:
        fc.close()
    assert sorted(p.name for p in store.rglob("*")) == before


def test_read_only_with_a_read_only_catalog_writes_no_usage_events(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.db"
    store = tmp_path / "a"
    _warm(f"sqlite:///{path}", store)
    fc = _cache(f"sqlite:///file:{path}?mode=ro&uri=true", store, read_only=True)
    try:
        engine = fc.engine
        attempts: list[int] = []
        record_events = engine.catalog.record_events

        def counted(events: list[object]) -> None:
            attempts.append(len(events))
            record_events(events)  # type: ignore[arg-type]

        engine.catalog.record_events = counted  # type: ignore[method-assign,assignment]
        feature = fc.cached_feature(_numbers)
        with caplog.at_level(logging.WARNING, logger="featurecache"):
            for n in (3, 4, 3, 5, 3):
                assert feature(n).equals(_numbers(n))
                engine.flush()
        fc.close()
        assert len(attempts) == 1  # refused once: no more usage events are written
        assert engine.session.hits == 3
        assert len(_warnings(caplog)) == 1, _warnings(caplog)
    finally:
        fc.close()


# -- item 9: writes failing (a full disk, a read-only catalog) ---------------------------------


def test_a_read_only_catalog_serves_hits_and_computes_misses_without_leases(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.db"
    store = tmp_path / "a"
    _warm(f"sqlite:///{path}", store)
    fc = _cache(f"sqlite:///file:{path}?mode=ro&uri=true", store, background_publish=False)
    try:
        feature = fc.cached_feature(_numbers)
        with caplog.at_level(logging.WARNING, logger="featurecache"):
            assert feature(3).equals(_numbers(3))  # a hit: lookups are reads
            assert feature(4).equals(_numbers(4))  # lease and publish fail: computed anyway
            assert feature(5).equals(_numbers(5))
        assert fc.engine.session.hits == 1
        _once_each(_warnings(caplog))
    finally:
        with contextlib.suppress(Exception):
            fc.close()


def _once_each(warned: list[str]) -> None:
    # At most one per backend (store, catalog) and one from usage events, none repeated.
    assert len(warned) <= 3 and len(set(warned)) == len(warned), warned


def _fill(folder: Path) -> None:
    fd = os.open(folder / "ballast", os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (b"\0" * 65536, b"\0"):
            with contextlib.suppress(OSError):
                while os.write(fd, chunk):
                    pass
    finally:
        os.close(fd)


@pytest.mark.slow
@pytest.mark.parametrize("background_publish", [True, False])
def test_a_full_disk_serves_hits_and_computes_misses(
    mounted: Path, caplog: pytest.LogCaptureFixture, background_publish: bool
) -> None:
    catalog = f"sqlite:///{mounted / 'c.db'}"
    store = mounted / "artifacts"
    _warm(catalog, store)
    fc = _cache(catalog, store, background_publish=background_publish)
    try:
        feature = fc.cached_feature(_numbers)
        assert feature(3).equals(_numbers(3))  # opened (and a hit) before the disk fills
        _fill(mounted)
        with caplog.at_level(logging.WARNING, logger="featurecache"):
            for n in (3, 20_000, 30_000, 3, 40_000):
                assert feature(n).equals(_numbers(n))
            fc.engine.flush()
        assert fc.engine.session.hits >= 3
        _once_each(_warnings(caplog))
    finally:
        with contextlib.suppress(Exception):
            fc.close()


@pytest.mark.slow
def test_opening_on_a_full_disk_serves_hits(
    mounted: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = f"sqlite:///{mounted / 'c.db'}"
    store = mounted / "artifacts"
    _warm(catalog, store)
    _fill(mounted)
    fc = _cache(catalog, store)
    try:
        feature = fc.cached_feature(_numbers)
        with caplog.at_level(logging.WARNING, logger="featurecache"):
            assert feature(3).equals(_numbers(3))
            assert feature(20_000).equals(_numbers(20_000))
            assert feature(30_000).equals(_numbers(30_000))
            fc.engine.flush()
        assert fc.engine.session.hits == 1
        _once_each(_warnings(caplog))
    finally:
        with contextlib.suppress(Exception):
            fc.close()


def test_a_store_write_error_becomes_a_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from featurecache.errors import StoreError
    from featurecache.store.local import LocalStore

    store = LocalStore(tmp_path / "a")

    def full(path: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    with pytest.raises(StoreError):
        store.publish("0" * 32, full)
    assert not [p for p in (tmp_path / "a").rglob("*") if p.is_file()]
