"""Helpers the store tests share: artifact ids, writers, and backend-specific peeks (what lies in
quarantine, how to leave a temp object behind) that the ``ArtifactStore`` protocol does not
expose."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from pathlib import Path

import polars as pl

from featurecache.store.base import ArtifactStore
from featurecache.store.local import LocalStore
from featurecache.store.s3.store import S3Store


def new_id() -> str:
    return uuid.uuid4().hex


def writer(data: bytes) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_bytes(data)

    return write


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def quarantined(store: ArtifactStore) -> dict[str, bytes]:
    """Every file in the store's quarantine area, by base name."""
    if isinstance(store, LocalStore):
        folder = store.root / "quarantine"
        if not folder.is_dir():
            return {}
        return {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")}
    assert isinstance(store, S3Store)
    client = store._client()
    prefix = store._key("quarantine/")
    listed = client.list_objects_v2(Bucket=store.bucket, Prefix=prefix).get("Contents", [])
    return {
        item["Key"][len(prefix) :]: client.get_object(Bucket=store.bucket, Key=item["Key"])[
            "Body"
        ].read()
        for item in listed
    }


def leave_temp_behind(store: ArtifactStore, artifact_id: str) -> None:
    """What an interrupted publish leaves: a temp file, or an incomplete multipart upload."""
    if isinstance(store, LocalStore):
        shard = store.root / artifact_id[:2]
        shard.mkdir(parents=True, exist_ok=True)
        (shard / ".tmp-leftover.parquet").write_bytes(b"PAR1 half written")
        return
    assert isinstance(store, S3Store)
    client = store._client()
    key = store._key(f"{artifact_id[:2]}/{artifact_id[2:]}.parquet")
    upload = client.create_multipart_upload(Bucket=store.bucket, Key=key)
    client.upload_part(
        Bucket=store.bucket,
        Key=key,
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"PAR1 half written",
    )
