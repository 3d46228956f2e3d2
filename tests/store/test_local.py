"""LocalStore-specific promises: crash safety, read-only files, the on-disk layout."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurecache.errors import ArtifactNotFoundError, StoreError
from featurecache.hashing import digest_bytes
from featurecache.store.base import Encoded, StoredObject
from featurecache.store.local import LocalStore
from tests.store.conformance_helpers import new_id, writer

_KILLED_WRITER = r"""
import sys, time
from pathlib import Path
from featurecache.store.local import LocalStore

root, artifact_id = sys.argv[1:3]

def write(path):
    with open(path, "wb") as handle:
        handle.write(b"PAR1" + b"x" * 100_000)  # half a file: no footer yet
        handle.flush()
        print("inside write", flush=True)
        time.sleep(120)

LocalStore(Path(root)).publish(artifact_id, write)
"""


def test_a_writer_killed_mid_write_leaves_no_artifact(tmp_path: Path) -> None:
    store, artifact_id = LocalStore(tmp_path / "artifacts"), new_id()
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(store.root), artifact_id],
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == b"inside write\n"

    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    assert not store.exists(artifact_id)
    assert list(store.iter_artifacts()) == []
    with pytest.raises(ArtifactNotFoundError):
        store.read_bytes(artifact_id)
    [temp] = list(store.iter_temp())
    assert temp.name.startswith(f"{artifact_id[:2]}/.tmp-") and temp.size_bytes == 100_004
    store.remove_object(temp)
    assert list(store.iter_temp()) == []
    assert store.publish(artifact_id, writer(b"complete")).created


def test_published_files_are_read_only_single_links(tmp_path: Path) -> None:
    store, artifact_id = LocalStore(tmp_path), new_id()

    store.publish(artifact_id, writer(b"immutable"))

    path = store.local_path(artifact_id)
    assert path == tmp_path / artifact_id[:2] / f"{artifact_id[2:]}.parquet"
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o444
    assert info.st_nlink == 1  # the temp name is gone
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_uri_and_scan_target_are_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store, artifact_id = LocalStore(Path("relative")), new_id()

    assert store.location == str(tmp_path / "relative")
    assert store.artifact_uri(artifact_id) == (tmp_path / "relative" / artifact_id[:2]).as_uri() + (
        f"/{artifact_id[2:]}.parquet"
    )
    assert Path(store.scan_target(artifact_id).path).is_absolute()
    assert store.scan_target(artifact_id).storage_options is None


def test_quarantine_sidecar_says_why(tmp_path: Path) -> None:
    store, artifact_id = LocalStore(tmp_path), new_id()
    store.publish(artifact_id, writer(b"bad"))

    store.quarantine(artifact_id, "size 3 != recorded 10")

    [sidecar] = (tmp_path / "quarantine").glob("*.json")
    payload = json.loads(sidecar.read_text())
    assert payload["artifact_id"] == artifact_id
    assert payload["reason"] == "size 3 != recorded 10"
    assert payload["size_bytes"] == 3
    assert (tmp_path / "quarantine" / f"{sidecar.stem}.parquet").read_bytes() == b"bad"


def test_read_bytes_is_a_zero_copy_view(tmp_path: Path) -> None:
    store, artifact_id = LocalStore(tmp_path), new_id()
    store.publish(artifact_id, writer(b"0123456789"))

    view = store.read_bytes(artifact_id)

    assert view.readonly and bytes(view[2:5]) == b"234"
    store.delete(artifact_id)
    assert bytes(view) == b"0123456789"  # a mapping outlives the unlinked file


def test_empty_artifact(tmp_path: Path) -> None:
    store, artifact_id = LocalStore(tmp_path), new_id()

    stored = store.publish(artifact_id, writer(b""))

    assert stored.size_bytes == 0 and stored.file_hash == digest_bytes(b"")
    assert bytes(store.read_bytes(artifact_id)) == b""


def test_a_writer_that_removes_its_file_is_a_store_error(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)

    with pytest.raises(StoreError, match="removed its temp file"):
        store.publish(new_id(), lambda path: path.unlink())


def test_check_capabilities_creates_the_root(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "a" / "b")

    store.check_capabilities()

    assert store.root.is_dir() and list(store.iter_temp()) == []


def test_check_capabilities_reports_an_unusable_root(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store = LocalStore(tmp_path / "file" / "artifacts")

    with pytest.raises(StoreError, match=r"not writable.*FEATURECACHE_STORE"):
        store.check_capabilities()


def test_remove_object_stays_inside_the_store(tmp_path: Path) -> None:
    outside = tmp_path / "precious.parquet"
    outside.write_bytes(b"keep")
    store, now = LocalStore(tmp_path / "artifacts"), datetime.now(UTC)

    for name in ["../precious.parquet", "/etc/passwd", "ab/../../precious.parquet", "x/.tmp-a"]:
        with pytest.raises(StoreError, match="refusing"):
            store.remove_object(StoredObject(name, None, 0, now))
    assert outside.read_bytes() == b"keep"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=4096))
def test_round_trip_law(tmp_path: Path, data: bytes) -> None:
    """Any bytes published come back unchanged, hashed as the store reports."""
    store, artifact_id = LocalStore(tmp_path / "law"), new_id()

    stored = store.publish(artifact_id, writer(data))

    assert bytes(store.read_bytes(artifact_id)) == data
    assert (stored.size_bytes, stored.file_hash) == (len(data), digest_bytes(data))


def test_bytes_in_memory_are_encoded_once_and_stored_as_given(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    calls: list[int] = []

    def encode() -> memoryview:
        calls.append(1)
        return memoryview(b"PAR1 some bytes PAR1")

    ok, full, theirs = new_id(), new_id(), new_id()

    def no_space() -> memoryview:
        calls.append(2)
        raise OSError(28, "No space left on device")

    def own_error() -> memoryview:
        raise ValueError("the caller's own")

    outcomes = store.publish_many(
        [(ok, Encoded(encode)), (full, Encoded(no_space)), (theirs, Encoded(own_error))]
    )
    assert calls == [1, 2]  # each encoded once, though asked for twice
    stored = outcomes[0]
    assert not isinstance(stored, BaseException)
    assert stored.size_bytes == 20 and stored.file_hash == digest_bytes(b"PAR1 some bytes PAR1")
    assert bytes(store.read_bytes(ok)) == b"PAR1 some bytes PAR1"
    assert isinstance(outcomes[1], StoreError)  # a full disk is the store's failure
    assert isinstance(outcomes[2], ValueError)  # the caller's own error, unchanged
    assert not list(tmp_path.rglob(".tmp-*"))
