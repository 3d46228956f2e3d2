"""S3Store-specific promises, against moto's real HTTP server: conditional multipart uploads,
crash safety of an interrupted upload, the capability probe, and typed errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from featurecache.errors import (
    ArtifactNotFoundError,
    ConfigError,
    StoreCapabilityError,
    StoreError,
)
from featurecache.hashing import digest_bytes
from featurecache.settings import load_settings
from featurecache.store.factory import open_store
from featurecache.store.s3.store import META_HASH, S3Store
from tests.fixtures_s3 import S3Endpoint
from tests.store.conformance_helpers import new_id, writer

pytestmark = [pytest.mark.s3, pytest.mark.slow]  # the moto S3 server

MIB = 1 << 20


@pytest.fixture
def make_store(s3_endpoint: S3Endpoint) -> Callable[..., S3Store]:
    """S3Stores on a fresh prefix of the test bucket."""
    prefix = f"prefix-{uuid.uuid4().hex[:12]}"

    def make(**options: Any) -> S3Store:
        return S3Store(s3_endpoint.bucket(), prefix, **options)

    return make


def _key(store: S3Store, artifact_id: str) -> str:
    return store._key(f"{artifact_id[:2]}/{artifact_id[2:]}.parquet")


def _uploads(store: S3Store) -> list[dict[str, Any]]:
    listed = store._client().list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
    return list(listed.get("Uploads", []))


def test_large_artifacts_go_through_a_conditional_multipart_upload(
    make_store: Callable[..., S3Store],
) -> None:
    store = make_store(multipart_threshold=5 * MIB, part_size=5 * MIB)
    artifact_id, data = new_id(), os.urandom(11 * MIB)

    stored = store.publish(artifact_id, writer(data))

    head = store._client().head_object(Bucket=store.bucket, Key=_key(store, artifact_id))
    assert head["ETag"].strip('"').endswith("-3")  # three parts: 5 + 5 + 1 MiB
    assert head["Metadata"][META_HASH] == stored.file_hash == digest_bytes(data)
    assert stored.created and stored.size_bytes == len(data)
    assert bytes(store.read_bytes(artifact_id)) == data
    assert _uploads(store) == []


def test_a_multipart_upload_that_loses_the_race_is_aborted(
    make_store: Callable[..., S3Store],
) -> None:
    store = make_store(multipart_threshold=5 * MIB, part_size=5 * MIB)
    artifact_id, first, second = new_id(), os.urandom(6 * MIB), os.urandom(7 * MIB)

    def write_after_a_rival_won(path: Path) -> None:
        assert store.publish(artifact_id, writer(first)).created
        path.write_bytes(second)

    ours = store.publish(artifact_id, write_after_a_rival_won)

    # Our CompleteMultipartUpload got 412: the winner's object is verified and returned.
    assert not ours.created
    assert (ours.size_bytes, ours.file_hash) == (len(first), digest_bytes(first))
    assert bytes(store.read_bytes(artifact_id)) == first
    assert _uploads(store) == [] and list(store.iter_temp()) == []


_KILLED_UPLOADER = r"""
import sys, time
from pathlib import Path
import boto3
from featurecache.store.s3.store import S3Store

bucket, prefix, artifact_id, spool = sys.argv[1:5]

def client():
    s3 = boto3.session.Session().client("s3")  # AWS_ENDPOINT_URL points at moto

    def stall_after_first_part(**_):
        print("part uploaded", flush=True)
        time.sleep(120)

    s3.meta.events.register("after-call.s3.UploadPart", stall_after_first_part)
    return s3

store = S3Store(bucket, prefix, client_factory=client, multipart_threshold=5 << 20,
                part_size=5 << 20, max_concurrency=1, spool_dir=Path(spool))
store.publish(artifact_id, lambda path: path.write_bytes(b"x" * (11 << 20)))
"""


def test_a_killed_multipart_upload_leaves_nothing_visible(
    make_store: Callable[..., S3Store], tmp_path: Path
) -> None:
    store, artifact_id = make_store(), new_id()
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_UPLOADER, store.bucket, store.prefix, artifact_id, tmp_path],
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == b"part uploaded\n"

    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    assert not store.exists(artifact_id)
    assert list(store.iter_artifacts()) == []
    with pytest.raises(ArtifactNotFoundError):
        store.read_bytes(artifact_id)
    [temp] = list(store.iter_temp())
    assert temp.name.startswith(f"{artifact_id[:2]}/{artifact_id[2:]}.parquet?uploadId=")
    assert temp.size_bytes == 5 * MIB and temp.artifact_id is None
    store.remove_object(temp)  # aborts the upload
    assert list(store.iter_temp()) == [] and _uploads(store) == []


def test_the_capability_probe_passes_on_moto_and_cleans_up(
    make_store: Callable[..., S3Store],
) -> None:
    store = make_store()

    store.check_capabilities()

    listed = store._client().list_objects_v2(Bucket=store.bucket, Prefix=store.prefix)
    assert listed.get("Contents", []) == [] and _uploads(store) == []


@pytest.fixture(scope="module")
def header_stripping_endpoint(s3_endpoint: S3Endpoint) -> Iterator[str]:
    """A second, in-process moto server behind a proxy that drops If-None-Match: an
    S3-compatible endpoint that ignores conditional writes, as some emulators did."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    moto_app = DomainDispatcherApplication(create_backend_app)

    def without_conditions(environ: dict[str, Any], start_response: Any) -> Any:
        environ.pop("HTTP_IF_NONE_MATCH", None)
        return moto_app(environ, start_response)

    server = make_server(
        "127.0.0.1", 0, without_conditions, threaded=True, request_handler=MotoRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.port}"
    S3Endpoint(url).bucket("featurecache-unconditional")
    yield url
    server.shutdown()
    thread.join()


def test_the_probe_refuses_an_endpoint_that_ignores_conditions(
    header_stripping_endpoint: str,
) -> None:
    store = S3Store("featurecache-unconditional", "p", endpoint_url=header_stripping_endpoint)

    with pytest.raises(StoreCapabilityError, match="FEATURECACHE_ALLOW_UNCONDITIONAL_STORE=1"):
        store.check_capabilities()


def test_allow_unconditional_warns_and_falls_back_to_head_then_put(
    header_stripping_endpoint: str,
) -> None:
    store = S3Store(
        "featurecache-unconditional",
        f"p-{uuid.uuid4().hex[:8]}",
        endpoint_url=header_stripping_endpoint,
        allow_unconditional=True,
    )
    with pytest.warns(RuntimeWarning, match="HEAD-then-PUT"):
        store.check_capabilities()
    artifact_id = new_id()

    first = store.publish(artifact_id, writer(b"first"))
    second = store.publish(artifact_id, writer(b"second"))

    assert (first.created, second.created) == (True, False)
    assert bytes(store.read_bytes(artifact_id)) == b"first"


def test_a_deleted_object_is_artifact_not_found(make_store: Callable[..., S3Store]) -> None:
    store, artifact_id = make_store(), new_id()
    store.publish(artifact_id, writer(b"soon gone"))
    store._client().delete_object(Bucket=store.bucket, Key=_key(store, artifact_id))

    with pytest.raises(ArtifactNotFoundError):
        store.read_bytes(artifact_id)
    assert store.size(artifact_id) is None and not store.exists(artifact_id)


def test_a_missing_bucket_is_a_store_error_naming_it(s3_endpoint: S3Endpoint) -> None:
    store = S3Store("featurecache-no-such-bucket", "x")

    with pytest.raises(StoreError, match=r"NoSuchBucket.*FEATURECACHE_STORE") as raised:
        store.publish(new_id(), writer(b"x"))
    assert type(raised.value).__module__.startswith("featurecache")
    with pytest.raises(StoreError, match="NoSuchBucket"):
        store.read_bytes(new_id())
    with pytest.raises(StoreError, match="NoSuchBucket"):
        store.check_capabilities()


def test_an_unreachable_endpoint_is_a_store_error(s3_endpoint: S3Endpoint) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    store = S3Store(
        "featurecache-test", "x", endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1
    )

    with pytest.raises(StoreError, match="cannot reach the endpoint"):
        store.read_bytes(new_id())


def test_an_object_written_by_someone_else_is_hashed(make_store: Callable[..., S3Store]) -> None:
    store, artifact_id = make_store(), new_id()
    store._client().put_object(Bucket=store.bucket, Key=_key(store, artifact_id), Body=b"foreign")

    stored = store.publish(artifact_id, writer(b"ours"))

    assert not stored.created
    assert (stored.size_bytes, stored.file_hash) == (7, digest_bytes(b"foreign"))


def test_scan_target_carries_endpoint_region_and_credentials(
    make_store: Callable[..., S3Store], s3_endpoint: S3Endpoint
) -> None:
    store, artifact_id = make_store(), new_id()

    target = store.scan_target(artifact_id)

    assert (
        target.path
        == f"s3://{store.bucket}/{store.prefix}/{artifact_id[:2]}/{artifact_id[2:]}.parquet"
    )
    assert target.storage_options is not None
    assert target.storage_options["aws_endpoint_url"] == s3_endpoint.url
    assert target.storage_options["aws_allow_http"] == "true"
    assert target.storage_options["aws_region"] == "us-east-1"
    assert target.storage_options["aws_access_key_id"] == os.environ["AWS_ACCESS_KEY_ID"]


def test_open_store_builds_an_s3_store(s3_store_url: str, tmp_path: Path) -> None:
    settings = load_settings(environ={"FEATURECACHE_ALLOW_UNCONDITIONAL_STORE": "1"}, cwd=tmp_path)

    store = open_store(s3_store_url + "/", settings)

    assert isinstance(store, S3Store)
    assert store.location == s3_store_url and store.allow_unconditional


@pytest.mark.parametrize("url", ["s3://", "s3://x/prefix", "s3://bad_bucket!/p", "gs://bucket/p"])
def test_open_store_rejects_bad_urls(url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FEATURECACHE_STORE"):
        open_store(url, load_settings(environ={}, cwd=tmp_path))
