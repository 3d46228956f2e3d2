"""``s3://`` strings: an object like ``S3Path``, a prefix or a glob by the objects it lists,
and a string that names nothing stays a value (against moto's S3 server)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.inputs import fingerprint_input
from featurecache.fingerprint.s3object import S3Path, _s3_pattern, fingerprint_s3_object
from featurecache.fingerprint.values import value_digest
from tests.fixtures_s3 import S3Endpoint


def test_s3_glob_patterns_follow_path_segments() -> None:
    pattern = _s3_pattern("data/*/part-?.parquet")
    assert pattern.fullmatch("data/2024/part-1.parquet")
    assert not pattern.fullmatch("data/2024/01/part-1.parquet")
    assert _s3_pattern("data/**.parquet").fullmatch("data/2024/01/part-1.parquet")
    assert _s3_pattern("data/**/*.parquet").fullmatch("data/2024/01/part-1.parquet")
    assert _s3_pattern("data/**/*.parquet").fullmatch("data/part-1.parquet")  # no folder
    assert _s3_pattern("data/[ab].csv").fullmatch("data/a.csv")
    assert not _s3_pattern("data/[!ab].csv").fullmatch("data/a.csv")
    assert _s3_pattern("data/x+(1).csv").fullmatch("data/x+(1).csv")  # regex characters


@pytest.fixture
def files(tmp_path: Path) -> Iterator[FileFingerprinter]:
    with FileFingerprinter(tmp_path / "state", project_root=tmp_path) as fingerprinter:
        yield fingerprinter


@pytest.fixture
def bucket(s3_endpoint: S3Endpoint) -> str:
    return s3_endpoint.bucket()


@pytest.mark.s3
@pytest.mark.slow  # the moto S3 server
def test_s3_strings_name_objects_prefixes_and_globs(
    s3_endpoint: S3Endpoint, bucket: str, files: FileFingerprinter
) -> None:
    client, run = s3_endpoint.client(), uuid.uuid4().hex
    root = f"s3://{bucket}/{run}"
    client.put_object(Bucket=bucket, Key=f"{run}/train/a.parquet", Body=b"a")
    client.put_object(Bucket=bucket, Key=f"{run}/train/b.parquet", Body=b"b")
    client.put_object(Bucket=bucket, Key=f"{run}/train/notes.txt", Body=b"n")

    def fp(text: str) -> object:
        return fingerprint_input("arg", text, files=files)

    one = fingerprint_input("arg", f"{root}/train/a.parquet", files=files)
    assert one.kind == "s3" and one.value["text"] == f"{root}/train/a.parquet"
    as_path = fingerprint_s3_object("arg", S3Path(f"{root}/train/a.parquet"))
    assert one.fingerprint != as_path.fingerprint  # the text counts too
    folder = fingerprint_input("arg", f"{root}/train/", files=files)
    same_folder = fingerprint_input("arg", f"{root}/train", files=files)
    assert folder.value["files"] == same_folder.value["files"] == 3
    pattern = fingerprint_input("arg", f"{root}/train/*.parquet", files=files)
    assert set(pattern.value["listing"]) == {f"{root}/train/a.parquet", f"{root}/train/b.parquet"}

    before = {
        text: fp(text)
        for text in (f"{root}/train/a.parquet", f"{root}/train/", f"{root}/train/*.parquet")
    }
    client.put_object(Bucket=bucket, Key=f"{run}/train/a.parquet", Body=b"A")
    for text, old in before.items():
        assert fp(text) != old, text
    pattern_before = fp(f"{root}/train/*.parquet")
    client.put_object(Bucket=bucket, Key=f"{run}/train/c.parquet", Body=b"c")
    assert fp(f"{root}/train/*.parquet") != pattern_before
    client.delete_object(Bucket=bucket, Key=f"{run}/train/c.parquet")
    assert fp(f"{root}/train/*.parquet") == pattern_before

    for nothing in (
        f"{root}/missing.csv",
        f"{root}/missing/",
        f"{root}/*.csv",
        "s3://no-such-bucket-x/k",
    ):
        found = fingerprint_input("arg", nothing, files=files)
        assert found.kind == "value" and found.fingerprint == f"xxh3_128:{value_digest(nothing)}"
