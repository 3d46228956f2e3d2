"""Background publishing: the caller gets its result while the artifact is written, and what is
stored is always exactly what the function returned — whatever the caller does to the frame
afterwards."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Set
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from featurecache import FeatureCache, frames, parquet, publish


def _cache(tmp_path: Path, **settings: Any) -> FeatureCache:
    return FeatureCache(catalog=f"sqlite:///{tmp_path / 'c.db'}", store=tmp_path / "a", **settings)


class HeldWrites:
    """Holds every artifact write (a file written, a small table encoded in memory) until
    ``release`` is set (``started`` says one is waiting), once ``install``ed."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def install(self, patch: pytest.MonkeyPatch) -> None:
        for name in ("write_parquet", "encode_small"):
            patch.setattr(parquet, name, self._held(getattr(parquet, name)))

    def _held(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def held(*args: Any, **kwargs: Any) -> Any:
            self.started.set()
            self.release.wait(30)
            return real(*args, **kwargs)

        return held


def _pandas_result() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": np.arange(1_000, dtype="int64"),
            "b": np.linspace(0.0, 1.0, 1_000),
            "s": [f"v{i % 7}" for i in range(1_000)],
        }
    )


def _pandas_feature(n: int) -> pd.DataFrame:
    return _pandas_result()


# Zero-copy source of ``_arrow_view``'s result; its bytes are part of that feature's code
# identity (a module constant), so keys are taken before it changes.
_SHARED = np.arange(10_000, dtype="int64")


def _arrow_view(n: int) -> pa.Table:
    return pa.table({"x": pa.array(_SHARED)})


def test_pandas_result_is_published_in_the_background_from_a_snapshot(tmp_path: Path) -> None:
    fc = _cache(tmp_path)
    held_write = HeldWrites()  # the caller writes to its frame before the file is written
    started, release = held_write.started, held_write.release

    feature = fc.cached_feature(_pandas_feature)
    try:
        key_id = fc.engine.key_for(feature, (1,), {})[0].key_id
        with pytest.MonkeyPatch.context() as patch:
            held_write.install(patch)
            out = feature(1)
            assert started.wait(30)
            assert fc.engine.catalog.lookup(key_id) is None  # returned before the commit
            # Every kind of in-place write a user might make to the result.
            out.loc[0, "a"] = -1
            out["b"] *= 2
            out.iloc[3, 2] = "changed"
            del out["s"]
            release.set()
            fc.engine.flush()
        assert fc.engine.catalog.lookup(key_id) is not None
    finally:
        release.set()
        fc.close()
    fresh = _cache(tmp_path)
    try:
        stored = fresh.cached_feature(_pandas_feature)(1)
        assert (fresh.engine.session.hits, fresh.engine.session.misses) == (1, 0)
        pd.testing.assert_frame_equal(stored, _pandas_result())
    finally:
        fresh.close()


def test_pandas_result_is_published_before_returning_without_background(tmp_path: Path) -> None:
    fc = _cache(tmp_path, background_publish=False)

    @fc.cached_feature
    def feature(n: int) -> pd.DataFrame:
        return _pandas_result()

    try:
        out = feature(1)
        key_id = fc.engine.key_for(feature, (1,), {})[0].key_id
        assert fc.engine.catalog.lookup(key_id) is not None  # committed before the return
        out.loc[0, "a"] = -1
        pd.testing.assert_frame_equal(feature(1), _pandas_result())
    finally:
        fc.close()


def test_pandas_snapshot_is_shallow_and_isolated() -> None:
    frame = _pandas_result()
    snapshot = frames.pandas_snapshot(frame)
    assert snapshot is not None
    table = pa.Table.from_pandas(snapshot)
    frame.loc[0, "a"] = 99
    frame["b"] += 1.0
    assert table.column("a")[0].as_py() == 0
    assert table.column("b")[0].as_py() == 0.0
    assert snapshot.loc[0, "a"] == 0


def _small_arrow_view(n: int) -> pa.Table:
    return pa.table({"x": pa.array(_SHARED[:100])})  # encoded in memory (``encode_small``)


@pytest.mark.parametrize(
    ("function", "writer"),
    [(_arrow_view, "write_parquet"), (_small_arrow_view, "encode_small")],
    ids=["file", "small"],
)
def test_result_changed_while_it_is_written_is_not_stored(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    function: Callable[[int], pa.Table],
    writer: str,
) -> None:
    """A pyarrow table built zero-copy over a numpy array that is written to while the
    background publish runs: the publish notices the change and stores nothing."""
    fc = _cache(tmp_path)
    real_write = getattr(parquet, writer)

    def write_then_mutate(*args: Any, **kwargs: Any) -> Any:
        written = real_write(*args, **kwargs)
        _SHARED[5] = -5  # after the file was written, before the publish re-checks it
        return written

    feature = fc.cached_feature(function)
    try:
        key_id = fc.engine.key_for(feature, (1,), {})[0].key_id
        with pytest.MonkeyPatch.context() as patch, caplog.at_level(logging.WARNING):
            patch.setattr(parquet, writer, write_then_mutate)
            feature(1)
            fc.engine.flush()
        assert "modified while it was being published" in caplog.text
        assert fc.engine.catalog.lookup(key_id) is None
        assert not list((tmp_path / "a").rglob("*.parquet"))
    finally:
        _SHARED[5] = 5
        fc.close()


# Part of ``_scaled``'s code identity (a module constant read by the function).
_SCALE = 2


def _scaled(n: int) -> pl.DataFrame:
    return pl.DataFrame({"x": [i * _SCALE for i in range(n)]})


def test_the_stored_row_records_the_code_its_key_was_built_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The code changes (a notebook re-runs a cell) while the result is still being published
    # in the background: the row must say what code made the result, the key's, not the
    # code that happens to be loaded when the publish runs.
    fc = _cache(tmp_path)
    held_write = HeldWrites()
    started, release = held_write.started, held_write.release

    feature = fc.cached_feature(_scaled)
    try:
        key = fc.engine.key_for(feature, (3,), {})[0]
        with pytest.MonkeyPatch.context() as patch:
            held_write.install(patch)
            feature(3)
            assert started.wait(30)
            monkeypatch.setitem(globals(), "_SCALE", 5)
            assert fc.engine.key_for(feature, (3,), {})[0].key_id != key.key_id
            release.set()
            fc.engine.flush()
        hit = fc.engine.catalog.lookup(key.key_id)
        assert hit is not None
        assert hit.entry.code_digest == key.components["code_digest"]
    finally:
        release.set()
        fc.close()


# -- batches: misses that queue up behind a slow publish ---------------------------------------


def _numbers(n: int) -> pl.DataFrame:
    return pl.DataFrame({"n": [n, n + 1, n + 2]})


def _queued_behind_a_held_write(fc: FeatureCache, count: int) -> list[str]:
    """Call ``_numbers`` for 0..count-1 while the first call's file write is held, so the
    other ``count - 1`` jobs queue up and are published as one batch; their key ids."""
    feature = fc.cached_feature(_numbers)
    held_write = HeldWrites()
    with pytest.MonkeyPatch.context() as patch:
        held_write.install(patch)
        try:
            feature(0)
            assert held_write.started.wait(30)
            for n in range(1, count):
                feature(n)
        finally:
            held_write.release.set()
        fc.engine.flush()
    return [fc.engine.key_for(feature, (n,), {})[0].key_id for n in range(count)]


def _events(tmp_path: Path) -> list[tuple[str, str, str]]:
    import sqlite3

    with sqlite3.connect(tmp_path / "c.db") as conn:
        rows = conn.execute("SELECT kind, key_id, artifact_id FROM usage_events").fetchall()
    return [(str(kind), str(key), str(artifact)) for kind, key, artifact in rows]


def _stored_except(fc: FeatureCache, keys: list[str], missing: Set[str] = frozenset()) -> None:
    """Every key but ``missing`` has its row; no key keeps a lease (each was given back)."""
    for key_id in keys:
        assert (fc.engine.catalog.lookup(key_id) is None) == (key_id in missing), key_id
        assert fc.engine.catalog.get_lease(key_id) is None, key_id


def test_misses_queued_behind_a_publish_are_committed_in_one_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from featurecache.catalog.facade import Catalog

    batches: list[int] = []
    real = Catalog.publish_batch

    def counted(self: Catalog, rows: Any, **kwargs: Any) -> Any:
        batches.append(len(rows))
        return real(self, rows, **kwargs)

    monkeypatch.setattr(Catalog, "publish_batch", counted)
    fc = _cache(tmp_path)
    try:
        keys = _queued_behind_a_held_write(fc, 8)
        assert batches == [7]  # the first alone, the seven that queued behind it together
        _stored_except(fc, keys)  # the leases deleted with the rows
        events = _events(tmp_path)
        assert sorted(key for kind, key, _ in events if kind == "miss") == sorted(keys)
        for _, key, artifact in events:
            stored = fc.engine.catalog.lookup(key)
            assert stored is not None and stored.artifact.artifact_id == artifact
    finally:
        fc.close()
    again = _cache(tmp_path)
    try:
        feature = again.cached_feature(_numbers)
        for n in range(8):
            assert feature(n).equals(_numbers(n))
        assert (again.engine.session.hits, again.engine.session.misses) == (8, 0)
    finally:
        again.close()


def test_a_batch_the_catalog_refuses_is_published_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from featurecache.catalog.facade import Catalog
    from featurecache.errors import CatalogError

    def refused(self: Catalog, rows: Any, **kwargs: Any) -> Any:
        raise CatalogError("publishing a batch failed: database is locked")

    monkeypatch.setattr(Catalog, "publish_batch", refused)
    fc = _cache(tmp_path)
    try:
        keys = _queued_behind_a_held_write(fc, 5)
        _stored_except(fc, keys)
        assert sorted(key for kind, key, _ in _events(tmp_path) if kind == "miss") == sorted(keys)
    finally:
        fc.close()


def test_a_file_that_cannot_be_stored_fails_alone_in_its_batch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fc = _cache(tmp_path)
    bad = frames.to_arrow(_numbers(3), "f")[0]
    real_encode = parquet.encode_small  # the results are small: encoded in memory

    def encode(table: pa.Table, *args: Any, **kwargs: Any) -> Any:
        if table.equals(bad):
            raise OSError(28, "No space left on device")
        return real_encode(table, *args, **kwargs)

    try:
        # DEBUG: a store failure is a warning once per process, then debug (``warn_once``).
        with pytest.MonkeyPatch.context() as patch, caplog.at_level(logging.DEBUG):
            patch.setattr(parquet, "encode_small", encode)
            keys = _queued_behind_a_held_write(fc, 6)
        assert "could not publish" in caplog.text
        _stored_except(fc, keys, {keys[3]})  # the failed one's lease given back too
        assert not list((tmp_path / "a").rglob(".tmp-*"))
    finally:
        fc.close()


def test_a_job_that_lost_its_lease_is_not_committed_with_its_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from featurecache.errors import LeaseLostError
    from featurecache.singleflight import LeaseKeeper

    fc = _cache(tmp_path)
    lost_key = fc.engine.key_for(fc.cached_feature(_numbers), (2,), {})[0].key_id
    real_check = LeaseKeeper.check

    def check(self: LeaseKeeper) -> None:
        if self.key_id == lost_key:
            raise LeaseLostError(self.key_id)
        real_check(self)

    monkeypatch.setattr(LeaseKeeper, "check", check)
    try:
        keys = _queued_behind_a_held_write(fc, 5)
        assert lost_key in keys
        _stored_except(fc, keys, {lost_key})
    finally:
        fc.close()


def test_a_batch_that_fails_unexpectedly_gives_every_lease_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from featurecache.store.local import LocalStore

    real = LocalStore.publish_many

    def broken(self: LocalStore, items: Any) -> Any:
        if len(items) == 1:  # LocalStore.publish: the first call's
            return real(self, items)
        raise MemoryError("the batch's file list could not be built")

    monkeypatch.setattr(LocalStore, "publish_many", broken)
    fc = _cache(tmp_path)
    try:
        with caplog.at_level(logging.WARNING):
            keys = _queued_behind_a_held_write(fc, 4)
        # The first published alone, before; the batch's leases not left blocking their keys.
        _stored_except(fc, keys, set(keys[1:]))
    finally:
        fc.close()


# -- background publishes wait while a miss computes ---------------------------------------------


def _published(fc: FeatureCache, key_id: str) -> bool:
    return fc.engine.catalog.lookup(key_id) is not None


def _wait_until(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_background_publish_waits_while_a_miss_computes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A result queued for publishing is not published while another miss computes (the
    publish thread would compete with it for the GIL); it is once the computation ends."""
    monkeypatch.setattr(publish, "_MAX_DELAY_SECONDS", 600.0)  # only the computation holds it
    fc = _cache(tmp_path)
    computing, finish = threading.Event(), threading.Event()
    first = fc.cached_feature(_numbers)

    @fc.cached_feature
    def slow(n: int) -> pl.DataFrame:
        computing.set()
        assert finish.wait(30)
        return _numbers(n)

    try:
        worker = threading.Thread(target=slow, args=(2,))
        worker.start()
        assert computing.wait(30)
        first(1)  # a miss while ``slow`` computes: its publish waits for it
        first_key = fc.engine.key_for(first, (1,), {})[0].key_id
        time.sleep(0.2)  # many quiet periods: only the computation in progress holds it back
        assert not _published(fc, first_key)
        finish.set()
        worker.join(30)
        assert _wait_until(lambda: _published(fc, first_key))  # no flush: on its own
    finally:
        finish.set()
        fc.close()


def test_a_background_publish_waits_no_longer_than_its_delay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish, "_MAX_DELAY_SECONDS", 0.05)
    fc = _cache(tmp_path)
    first = fc.cached_feature(_numbers)
    first(1)
    first_key = fc.engine.key_for(first, (1,), {})[0].key_id

    @fc.cached_feature
    def waits_for_the_first(n: int) -> pl.DataFrame:
        # Computing the whole time: the first result is published once its delay is over.
        assert _wait_until(lambda: _published(fc, first_key))
        return _numbers(n)

    try:
        waits_for_the_first(2)
    finally:
        fc.close()


def test_waiting_for_a_publish_does_not_wait_for_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whoever waits for a publish (a call of the same key, ``flush``) has it published now,
    not after the quiet period or the delay."""
    monkeypatch.setattr(publish, "_QUIET_SECONDS", 600.0)
    monkeypatch.setattr(publish, "_MAX_DELAY_SECONDS", 600.0)
    fc = _cache(tmp_path)
    feature = fc.cached_feature(_numbers)

    def done_within_30_s(work: Callable[[], object]) -> None:
        # Were the wait for quiet not cut short, ``work`` would end only after 600 s.
        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        thread.join(30)
        assert not thread.is_alive()

    try:
        feature(1)
        # Waits for its own key's publish, then hits.
        done_within_30_s(lambda: feature(1))
        assert (fc.engine.session.hits, fc.engine.session.misses) == (1, 1)
        feature(2)
        done_within_30_s(fc.engine.flush)
        assert _published(fc, fc.engine.key_for(feature, (2,), {})[0].key_id)
    finally:
        fc.close()


def test_a_miss_event_is_at_its_entrys_creation(tmp_path: Path) -> None:
    """Entries are stamped in call order after the last one the catalog created (even ahead
    of the database clock, within a millisecond); each miss event is stamped with its entry's
    time, so events and entries tell the same order (``queries.recent_entries``)."""
    import sqlite3
    from datetime import UTC, datetime, timedelta

    fc = _cache(tmp_path, background_publish=False)
    feature = fc.cached_feature(_numbers)
    try:
        ahead = datetime.now(UTC) + timedelta(hours=1)
        fc.engine.catalog._created_after = ahead
        feature(1)
        fc.engine.flush()
        key_id = fc.engine.key_for(feature, (1,), {})[0].key_id
    finally:
        fc.close()
    with sqlite3.connect(tmp_path / "c.db") as conn:
        created = conn.execute(
            "SELECT created_at FROM cache_entries WHERE key_id = ?", (key_id,)
        ).fetchone()
        events = conn.execute(
            "SELECT at FROM usage_events WHERE key_id = ? AND kind = 'miss'", (key_id,)
        ).fetchall()
    assert created[0] > ahead.replace(tzinfo=None).isoformat(sep=" ")  # stamped after it
    assert events == [created]


def test_a_fork_waits_for_the_pending_publishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child forked while the publish thread encodes could inherit one of pyarrow's locks
    held and hang in its first Parquet write (seen: a pool worker forked right after a burst
    of misses). So a fork waits until every pending publish is done."""
    import os

    monkeypatch.setattr(publish, "_QUIET_SECONDS", 600.0)
    monkeypatch.setattr(publish, "_MAX_DELAY_SECONDS", 600.0)
    fc = _cache(tmp_path)
    feature = fc.cached_feature(_numbers)
    try:
        feature(1)  # held back: only a waiter (here, the fork) has it published now
        key_id = fc.engine.key_for(feature, (1,), {})[0].key_id
        assert not _published(fc, key_id)
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        assert _published(fc, key_id)
    finally:
        fc.close()
