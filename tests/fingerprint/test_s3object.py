"""S3Path: URL validation (pure) and metadata fingerprints against moto's S3 server."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from featurecache.errors import InputNotFoundError, InvalidS3UrlError
from featurecache.fingerprint.s3object import S3Path, fingerprint_s3_object, parse_s3_url
from tests.fixtures_s3 import S3Endpoint

# -- pure ---------------------------------------------------------------------------------


def test_s3path_parts_and_text() -> None:
    path = S3Path("s3://my-bucket/data/2024/clicks.parquet", version_id="v1")

    assert (path.bucket, path.key, path.version_id) == (
        "my-bucket",
        "data/2024/clicks.parquet",
        "v1",
    )
    assert str(path) == path.url == "s3://my-bucket/data/2024/clicks.parquet"
    assert path.name == "clicks.parquet"
    assert repr(path) == "S3Path('s3://my-bucket/data/2024/clicks.parquet', version_id='v1')"


def test_s3path_is_an_immutable_value() -> None:
    a, b = S3Path("s3://bucket/k"), S3Path("s3://bucket/k")

    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != S3Path("s3://bucket/k", version_id="v2")
    with pytest.raises(AttributeError):
        a.key = "other"


@pytest.mark.parametrize(
    "url",
    [
        "bucket/key",
        "https://bucket/key",
        "s3://",
        "s3://bucket",
        "s3://bucket/",
        "s3://bucket/folder/",
        "s3://ab/key",
        "s3://bad!bucket/key",
        "s3://-bucket/key",
        "s3://my..bucket/key",
    ],
)
def test_invalid_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidS3UrlError) as raised:
        S3Path(url)
    assert isinstance(raised.value, ValueError) and raised.value.url == url


def test_a_store_prefix_may_be_empty() -> None:
    assert parse_s3_url("s3://bucket", require_key=False) == ("bucket", "")
    assert parse_s3_url("s3://bucket/a/b/", require_key=False) == ("bucket", "a/b/")


_keys = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1
).filter(lambda key: not key.endswith("/"))


@given(key=_keys)
def test_any_key_round_trips_through_its_url(key: str) -> None:
    path = S3Path(f"s3://bucket-1/{key}")

    assert path.key == key and S3Path(str(path)) == path


# -- against S3 ---------------------------------------------------------------------------


@pytest.fixture
def s3_object_url(s3_endpoint: S3Endpoint) -> str:
    return f"s3://{s3_endpoint.bucket()}/inputs/{uuid.uuid4().hex}/clicks.csv"


@pytest.mark.s3
@pytest.mark.slow  # the moto S3 server
def test_fingerprint_describes_the_object(s3_endpoint: S3Endpoint, s3_object_url: str) -> None:
    path = S3Path(s3_object_url)
    s3_endpoint.client().put_object(Bucket=path.bucket, Key=path.key, Body=b"x" * 1_500_000)

    found = fingerprint_s3_object("clicks", path)

    assert (found.argument, found.kind, found.source_uri) == ("clicks", "s3", s3_object_url)
    assert found.fingerprint.startswith("s3:") and len(found.fingerprint) == 3 + 32
    assert found.summary.startswith(f"{s3_object_url} (1.5 MB, etag ")


@pytest.mark.s3
@pytest.mark.slow  # the moto S3 server
def test_fingerprint_changes_when_the_object_is_overwritten(
    s3_endpoint: S3Endpoint, s3_object_url: str
) -> None:
    path, client = S3Path(s3_object_url), s3_endpoint.client()
    client.put_object(Bucket=path.bucket, Key=path.key, Body=b"user,clicks\n1,2\n")
    before = fingerprint_s3_object("clicks", path).fingerprint

    assert fingerprint_s3_object("clicks", path).fingerprint == before  # stable when untouched
    client.put_object(Bucket=path.bucket, Key=path.key, Body=b"user,clicks\n1,3\n")

    assert fingerprint_s3_object("clicks", path).fingerprint != before


@pytest.mark.s3
@pytest.mark.slow  # the moto S3 server
def test_a_pinned_version_keeps_its_fingerprint(s3_endpoint: S3Endpoint) -> None:
    client, bucket = s3_endpoint.client(), s3_endpoint.bucket("featurecache-versioned")
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    key = f"inputs/{uuid.uuid4().hex}.csv"
    first = client.put_object(Bucket=bucket, Key=key, Body=b"v1")["VersionId"]
    pinned = S3Path(f"s3://{bucket}/{key}", version_id=first)
    before = fingerprint_s3_object("x", pinned)

    client.put_object(Bucket=bucket, Key=key, Body=b"v2")

    assert fingerprint_s3_object("x", pinned) == before
    assert first[:12] in before.summary
    assert (
        fingerprint_s3_object("x", S3Path(f"s3://{bucket}/{key}")).fingerprint != before.fingerprint
    )


@pytest.mark.s3
@pytest.mark.slow  # the moto S3 server
def test_a_missing_object_is_input_not_found(s3_endpoint: S3Endpoint, s3_object_url: str) -> None:
    with pytest.raises(InputNotFoundError) as raised:
        fingerprint_s3_object("clicks", S3Path(s3_object_url))

    assert isinstance(raised.value, FileNotFoundError)
    assert raised.value.argument == "clicks" and raised.value.location == s3_object_url
    with pytest.raises(InputNotFoundError):
        fingerprint_s3_object("clicks", S3Path("s3://featurecache-no-such-bucket/k"))
