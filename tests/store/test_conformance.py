"""One conformance suite for every ArtifactStore: a local directory and S3 (moto's server).

Each test states a promise of ``featurecache/store/base.py`` and runs unchanged on both
backends, opened through ``open_store`` as the cache opens them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from featurecache.errors import ArtifactNotFoundError, InvalidArtifactIdError, StoreError
from featurecache.hashing import digest_bytes
from featurecache.settings import load_settings
from featurecache.store.base import ArtifactStore, StoredFile, StoredObject
from featurecache.store.factory import open_store
from tests.store.conformance_helpers import (
    leave_temp_behind,
    new_id,
    parquet_bytes,
    quarantined,
    writer,
)


@pytest.fixture(
    params=["local", pytest.param("s3", marks=[pytest.mark.s3, pytest.mark.slow])]  # moto server
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "artifacts")
    return str(request.getfixturevalue("s3_store_url"))


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> ArtifactStore:
    return open_store(store_url, load_settings(environ={}, cwd=tmp_path))


def test_store_satisfies_the_protocol(store: ArtifactStore) -> None:
    assert isinstance(store, ArtifactStore)


def test_publish_then_read_round_trips(store: ArtifactStore) -> None:
    artifact_id, data = new_id(), b"PAR1" + bytes(range(256)) * 100 + b"PAR1"

    stored = store.publish(artifact_id, writer(data))

    assert stored == StoredFile(
        artifact_id, store.artifact_uri(artifact_id), len(data), digest_bytes(data), created=True
    )
    assert bytes(store.read_bytes(artifact_id)) == data
    assert store.exists(artifact_id)
    assert store.size(artifact_id) == len(data)


def test_publish_is_write_once(store: ArtifactStore) -> None:
    artifact_id = new_id()
    first = store.publish(artifact_id, writer(b"first bytes"))

    second = store.publish(artifact_id, writer(b"other bytes, same logical content"))

    assert (first.created, second.created) == (True, False)
    assert second.file_hash == first.file_hash == digest_bytes(b"first bytes")
    assert second.size_bytes == len(b"first bytes")
    assert bytes(store.read_bytes(artifact_id)) == b"first bytes"


def test_losing_a_race_returns_the_winner(store: ArtifactStore) -> None:
    """Another writer publishes the id while ours is being written: ours is discarded."""
    artifact_id = new_id()
    rival: list[StoredFile] = []

    def write_after_a_rival_won(path: Path) -> None:
        rival.append(store.publish(artifact_id, writer(b"the rival's bytes")))
        path.write_bytes(b"our slower bytes")

    ours = store.publish(artifact_id, write_after_a_rival_won)

    assert rival[0].created and not ours.created
    assert ours.file_hash == rival[0].file_hash == digest_bytes(b"the rival's bytes")
    assert bytes(store.read_bytes(artifact_id)) == b"the rival's bytes"
    assert list(store.iter_temp()) == []


def test_concurrent_publishes_from_threads_create_once(store: ArtifactStore) -> None:
    artifact_id, writers = new_id(), 8
    # Every thread is inside ``write`` before any finishes, so all of them race to publish.
    everyone_writing = threading.Barrier(writers, timeout=30)
    payloads = [f"payload {i} ".encode() * 5000 for i in range(writers)]

    def publish(index: int) -> StoredFile:
        def write(path: Path) -> None:
            path.write_bytes(payloads[index])
            everyone_writing.wait()

        return store.publish(artifact_id, write)

    with ThreadPoolExecutor(writers) as pool:
        results = list(pool.map(publish, range(writers)))

    winners = [i for i, result in enumerate(results) if result.created]
    assert len(winners) == 1
    content = bytes(store.read_bytes(artifact_id))
    assert content == payloads[winners[0]]
    assert {r.file_hash for r in results} == {digest_bytes(content)}
    assert {r.size_bytes for r in results} == {len(content)}
    assert list(store.iter_temp()) == []


_CHILD = r"""
import json, pathlib, sys, time
from featurecache.settings import load_settings
from featurecache.store.factory import open_store

url, artifact_id, index, gate = sys.argv[1:5]
store = open_store(url, load_settings(environ={}), check=False)
payload = f"process {index} ".encode() * 5000

def write(path):
    path.write_bytes(payload)
    pathlib.Path(f"{gate}.ready{index}").touch()
    while not pathlib.Path(gate).exists():
        time.sleep(0.01)

stored = store.publish(artifact_id, write)
print(json.dumps({"created": stored.created, "file_hash": stored.file_hash}))
"""


@pytest.mark.slow  # racing publisher processes
def test_concurrent_publishes_from_processes_create_once(store_url: str, tmp_path: Path) -> None:
    artifact_id, processes, gate = new_id(), 8, tmp_path / "gate"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, store_url, artifact_id, str(i), str(gate)],
            stdout=subprocess.PIPE,
            cwd=tmp_path,
        )
        for i in range(processes)
    ]
    deadline = time.monotonic() + 120
    while not all(Path(f"{gate}.ready{i}").exists() for i in range(processes)):
        assert all(child.poll() is None for child in children), "a writer died early"
        assert time.monotonic() < deadline, "writers never got ready"
        time.sleep(0.02)
    gate.touch()
    outputs = [child.communicate(timeout=120)[0] for child in children]

    assert [child.returncode for child in children] == [0] * processes
    results = [json.loads(out) for out in outputs]
    assert sum(r["created"] for r in results) == 1
    store = open_store(store_url, load_settings(environ={}, cwd=tmp_path), check=False)
    content = bytes(store.read_bytes(artifact_id))
    assert content in {f"process {i} ".encode() * 5000 for i in range(processes)}
    assert {r["file_hash"] for r in results} == {digest_bytes(content)}


def test_missing_artifact(store: ArtifactStore) -> None:
    artifact_id = new_id()

    with pytest.raises(ArtifactNotFoundError) as raised:
        store.read_bytes(artifact_id)

    assert raised.value.ref == artifact_id
    assert not store.exists(artifact_id)
    assert store.size(artifact_id) is None
    assert store.delete(artifact_id) is False
    store.quarantine(artifact_id, "already gone")  # nothing to move: no error
    assert quarantined(store) == {}


@pytest.mark.parametrize("bad", ["", "ab", "../" + "0" * 29, "A" * 32, "g" * 32, "0" * 33])
def test_malformed_ids_are_refused(store: ArtifactStore, bad: str) -> None:
    with pytest.raises(InvalidArtifactIdError):
        store.read_bytes(bad)
    with pytest.raises(InvalidArtifactIdError):
        store.publish(bad, writer(b"x"))


def test_a_failing_writer_leaves_nothing(store: ArtifactStore) -> None:
    artifact_id = new_id()

    def write(path: Path) -> None:
        path.write_bytes(b"half")
        raise RuntimeError("the feature's parquet writer failed")

    with pytest.raises(RuntimeError, match="parquet writer failed"):
        store.publish(artifact_id, write)

    assert not store.exists(artifact_id)
    assert list(store.iter_artifacts()) == []
    assert list(store.iter_temp()) == []


def test_publish_many_hands_back_each_outcome_in_its_place(store: ArtifactStore) -> None:
    # A batch (the background publisher's): one failing writer and one malformed id fail
    # alone, an id already stored is kept (write-once), the rest are published.
    kept, fresh, failing, other = new_id(), new_id(), new_id(), new_id()
    store.publish(kept, writer(b"first bytes"))

    def broken(path: Path) -> None:
        path.write_bytes(b"half")
        raise RuntimeError("the feature's parquet writer failed")

    outcomes = store.publish_many(
        [
            (fresh, writer(b"fresh bytes")),
            (failing, broken),
            ("not-an-id", writer(b"x")),
            (kept, writer(b"second bytes")),
            (other, writer(b"other bytes")),
        ]
    )

    assert len(outcomes) == 5
    first, error, malformed, again, last = outcomes
    assert isinstance(first, StoredFile) and first.created and first.artifact_id == fresh
    assert isinstance(error, RuntimeError) and "parquet writer failed" in str(error)
    assert isinstance(malformed, InvalidArtifactIdError)
    assert isinstance(again, StoredFile) and not again.created
    assert isinstance(last, StoredFile) and last.created
    assert bytes(store.read_bytes(fresh)) == b"fresh bytes"
    assert bytes(store.read_bytes(kept)) == b"first bytes"
    assert bytes(store.read_bytes(other)) == b"other bytes"
    assert not store.exists(failing)
    assert sorted(obj.artifact_id or "" for obj in store.iter_artifacts()) == sorted(
        [fresh, kept, other]
    )
    assert list(store.iter_temp()) == []
    assert store.publish_many([]) == []


def test_delete_removes(store: ArtifactStore) -> None:
    artifact_id = new_id()
    store.publish(artifact_id, writer(b"bytes"))

    assert store.delete(artifact_id) is True

    assert not store.exists(artifact_id)
    with pytest.raises(ArtifactNotFoundError):
        store.read_bytes(artifact_id)
    assert store.publish(artifact_id, writer(b"again")).created


def test_quarantine_hides_the_artifact_and_keeps_it_aside(store: ArtifactStore) -> None:
    artifact_id, kept = new_id(), new_id()
    store.publish(artifact_id, writer(b"bad bytes"))
    store.publish(kept, writer(b"good bytes"))

    store.quarantine(artifact_id, "hash mismatch")

    assert not store.exists(artifact_id)
    with pytest.raises(ArtifactNotFoundError):
        store.read_bytes(artifact_id)
    assert [obj.artifact_id for obj in store.iter_artifacts()] == [kept]
    aside = quarantined(store)
    [parquet] = [name for name in aside if name.endswith(".parquet")]
    [sidecar] = [name for name in aside if name.endswith(".json")]
    assert parquet.startswith(f"{artifact_id}-") and aside[parquet] == b"bad bytes"
    assert json.loads(aside[sidecar])["reason"] == "hash mismatch"
    # The id is free again: a recomputation can publish it.
    assert store.publish(artifact_id, writer(b"recomputed")).created


def test_iter_artifacts_lists_exactly_what_was_published(store: ArtifactStore) -> None:
    published = {new_id(): f"artifact {i}".encode() for i in range(5)}
    for artifact_id, data in published.items():
        store.publish(artifact_id, writer(data))
    leave_temp_behind(store, new_id())  # temp files are not artifacts

    listed = {obj.artifact_id: obj for obj in store.iter_artifacts()}

    assert set(listed) == set(published)
    for found, obj in listed.items():
        assert found is not None and obj.size_bytes == len(published[found])
        assert obj.name == f"{found[:2]}/{found[2:]}.parquet"
        assert obj.modified_at.utcoffset() == timedelta(0)


def test_temp_leftovers_are_listed_and_removable(store: ArtifactStore) -> None:
    artifact_id = new_id()
    leave_temp_behind(store, artifact_id)

    [temp] = list(store.iter_temp())

    assert isinstance(temp, StoredObject) and temp.artifact_id is None
    assert temp.size_bytes > 0
    assert temp.modified_at <= datetime.now(UTC)
    assert not store.exists(artifact_id)
    store.remove_object(temp)
    assert list(store.iter_temp()) == []
    store.remove_object(temp)  # already gone: no error


def test_remove_object_refuses_foreign_names(store: ArtifactStore) -> None:
    with pytest.raises(StoreError):
        store.remove_object(StoredObject("../outside.parquet", None, 0, datetime.now(UTC)))


def test_scan_target_is_scannable_by_polars(store: ArtifactStore) -> None:
    artifact_id = new_id()
    frame = pl.DataFrame({"user": list(range(1000)), "score": [i * 0.5 for i in range(1000)]})
    store.publish(artifact_id, writer(parquet_bytes(frame)))

    target = store.scan_target(artifact_id)
    scanned = (
        pl.scan_parquet(target.path, storage_options=target.storage_options)
        .filter(pl.col("user") >= 990)
        .collect()
    )

    assert scanned.equals(frame.filter(pl.col("user") >= 990))


def test_parquet_written_by_the_callback_round_trips(store: ArtifactStore) -> None:
    artifact_id = new_id()
    frame = pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]})

    stored = store.publish(artifact_id, lambda path: frame.write_parquet(path))

    data = store.read_bytes(artifact_id)
    assert stored.size_bytes == len(data)
    assert pl.read_parquet(bytes(data)).equals(frame)
