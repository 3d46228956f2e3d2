"""gc and verify on the S3 store (moto's server): the same classes and repairs as on a local
directory, with S3's own leftovers (incomplete multipart uploads)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from featurecache.ops.gc_plan import GcPolicy
from featurecache.ops.gc_run import collect_garbage
from featurecache.ops.verify import CORRUPT, MISSING, ORPHAN, TEMP, verify_cache
from featurecache.store.layout import artifact_name
from featurecache.store.s3.store import S3Store
from tests.ops.seed import Cache

pytestmark = [pytest.mark.s3, pytest.mark.slow]  # the moto S3 server
NO_GRACE = timedelta(0)


@pytest.fixture
def s3_cache(tmp_path: Path, s3_store_url: str) -> Iterator[tuple[Cache, S3Store, Any]]:
    bucket, _, prefix = s3_store_url.removeprefix("s3://").partition("/")
    store = S3Store(bucket, prefix)
    cache = Cache.create(tmp_path, store)
    yield cache, store, store._client()
    cache.close()


def key(store: S3Store, artifact_id: str) -> str:
    return f"{store.prefix}/{artifact_name(artifact_id)}"


def test_gc_deletes_objects_on_s3(s3_cache: tuple[Cache, S3Store, Any]) -> None:
    cache, store, _ = s3_cache
    old = cache.publish("old").artifact.artifact_id
    new = cache.publish("new").artifact.artifact_id
    cache.age(old, 48)
    result = collect_garbage(cache.catalog, store, GcPolicy(older_than=timedelta(hours=24)))
    assert [c.artifact_id for c in result.deleted] == [old] and result.files_removed == 1
    assert not store.exists(old) and store.exists(new)
    assert verify_cache(cache.catalog, store).clean


def test_verify_finds_and_repairs_s3_inconsistencies(s3_cache: tuple[Cache, S3Store, Any]) -> None:
    cache, store, client = s3_cache
    ids = sorted(cache.publish(i, rows=30 + i).artifact.artifact_id for i in range(3))
    orphan = "cd" * 16
    body = client.get_object(Bucket=store.bucket, Key=key(store, ids[0]))["Body"].read()
    client.put_object(Bucket=store.bucket, Key=key(store, orphan), Body=body)
    client.delete_object(Bucket=store.bucket, Key=key(store, ids[1]))
    client.put_object(Bucket=store.bucket, Key=key(store, ids[2]), Body=body[:-5])
    upload = client.create_multipart_upload(Bucket=store.bucket, Key=key(store, "ef" * 16))

    # Fresh objects are work in progress under the default grace period ... (moto reports
    # every multipart upload as initiated in 2010, so there the upload counts as old.)
    report = verify_cache(cache.catalog, store)
    assert {f.kind for f in report.problems} - {TEMP} == {MISSING, CORRUPT}
    assert {f.kind for f in report.pending} - {TEMP} == {ORPHAN}
    # ... and problems without one.
    strict = verify_cache(cache.catalog, store, grace=NO_GRACE, repair=True)
    found = {(f.kind, f.subject.split("?")[0]) for f in strict.problems}
    assert found == {
        (ORPHAN, orphan),
        (MISSING, ids[1]),
        (CORRUPT, ids[2]),
        (TEMP, artifact_name("ef" * 16)),
    }
    assert all(f.repaired for f in strict.problems), strict.problems
    assert verify_cache(cache.catalog, store, grace=NO_GRACE).clean
    uploads = client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    assert upload["UploadId"] not in {u["UploadId"] for u in uploads}
    quarantined = client.list_objects_v2(Bucket=store.bucket, Prefix=f"{store.prefix}/quarantine/")
    assert any(ids[2] in item["Key"] for item in quarantined.get("Contents", []))
