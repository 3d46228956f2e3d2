"""``S3Path``, the path type for ``s3://`` objects passed to features, and its fingerprint.

An S3 object is fingerprinted by its metadata (bucket, key, ETag, version id, size) from one
HEAD request, never by downloading it: S3 replaces an object's ETag whenever it is rewritten,
and a version id pins the bytes exactly. The ``s3:`` prefix marks such fingerprints as
metadata-derived, so they never collide with content hashes of local files.

boto3 is imported only when an object is fingerprinted; ``AWS_ENDPOINT_URL_S3`` /
``AWS_ENDPOINT_URL`` select an S3-compatible server as boto3 does.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from typing import Any

from featurecache.errors import (
    InputNotFoundError,
    InvalidS3UrlError,
    MissingDependencyError,
    StoreError,
)
from featurecache.fingerprint.listing import LISTED_FILES_MAX
from featurecache.fingerprint.types import InputFingerprint
from featurecache.hashing import hash_struct

_SCHEME = "s3://"
# Modern bucket rules, relaxed to admit legacy names (upper case, underscores) that still exist.
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]")
_S3_MAGIC = re.compile(r"[*?\[]")
_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchBucket", "NoSuchVersion"})


def parse_s3_url(url: str, *, require_key: bool) -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://bucket/key``; the key may be empty unless ``require_key``.

    The key is taken verbatim (S3 keys may hold ``?`` and ``#``), so a version is given with
    ``version_id=`` rather than a query string."""
    if not isinstance(url, str):
        raise InvalidS3UrlError(repr(url), f"expected a str, got {type(url).__name__}")
    if url[: len(_SCHEME)].lower() != _SCHEME:
        raise InvalidS3UrlError(url, "it must start with s3://")
    bucket, _, key = url[len(_SCHEME) :].partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise InvalidS3UrlError(
            url, f"{bucket!r} is not a bucket name (3-255 letters, digits, '.', '-', '_')"
        )
    if require_key and (not key or key.endswith("/")):
        raise InvalidS3UrlError(url, "it names a bucket or a folder, not an object")
    return bucket, key


class S3Path:
    """An object in S3 (or an S3-compatible store), fingerprinted by metadata, not content.

    ``S3Path("s3://bucket/data/clicks.parquet")``; pin a version with ``version_id=``.
    Immutable and hashable; ``str()`` gives the URL."""

    __slots__ = ("bucket", "key", "version_id")

    bucket: str
    key: str
    version_id: str | None

    def __init__(self, url: str, *, version_id: str | None = None) -> None:
        bucket, key = parse_s3_url(url, require_key=True)
        if version_id is not None and (not isinstance(version_id, str) or not version_id):
            raise InvalidS3UrlError(url, "version_id must be a non-empty str or None")
        object.__setattr__(self, "bucket", bucket)
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "version_id", version_id)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"S3Path is immutable (cannot set {name!r})")

    @property
    def url(self) -> str:
        return f"{_SCHEME}{self.bucket}/{self.key}"

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        version = f", version_id={self.version_id!r}" if self.version_id else ""
        return f"S3Path({self.url!r}{version})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, S3Path):
            return NotImplemented
        return (self.bucket, self.key, self.version_id) == (
            other.bucket,
            other.key,
            other.version_id,
        )

    def __hash__(self) -> int:
        return hash((S3Path, self.bucket, self.key, self.version_id))


def fingerprint_s3_object(argument: str, path: S3Path, *, client: Any = None) -> InputFingerprint:
    """The fingerprint of the object ``path`` names: one HEAD request.

    Raises ``InputNotFoundError`` when the object (or its bucket) does not exist, and
    ``StoreError`` when S3 cannot be asked (credentials, network)."""
    head = _head(argument, path, client or _default_client())
    etag = str(head.get("ETag", "")).strip('"')
    version = head.get("VersionId") or path.version_id
    if version == "null":  # unversioned buckets report the literal "null"
        version = None
    size = int(head.get("ContentLength", 0))
    digest = hash_struct(["s3object", path.bucket, path.key, etag, version, size])
    summary = f"{path.url} ({_human_size(size)}, etag {etag[:12]}"
    summary += f", version {version[:12]})" if version else ")"
    return InputFingerprint(
        argument=argument,
        kind="s3",
        fingerprint=f"s3:{digest}",
        summary=summary,
        source_uri=path.url,
    )


def fingerprint_s3_str(argument: str, url: str, *, client: Any = None) -> InputFingerprint | None:
    """An ``s3://`` string argument: the object it names (as ``S3Path``), else the objects
    under the prefix ``key/`` (a "folder"), else, when the key holds a wildcard, the objects
    the pattern matches; None when it names nothing (the string is then a plain value).

    Raises ``StoreError`` / ``MissingDependencyError`` when S3 cannot be asked: a string that
    may name data must not silently become a value (list the argument in
    ``@cached_feature(values=[...])`` to keep it one)."""
    try:
        bucket, key = parse_s3_url(url, require_key=False)
    except InvalidS3UrlError:
        return None
    client = client or _default_client()
    named: InputFingerprint | None = None
    if key and not key.endswith("/"):
        try:
            named = fingerprint_s3_object(argument, S3Path(url), client=client)
        except InputNotFoundError:
            named = None
    if named is None and _S3_MAGIC.search(key):
        named = _s3_listing(argument, url, bucket, key, client, pattern=True)
    if named is None:
        prefix = key if not key or key.endswith("/") else f"{key}/"
        named = _s3_listing(argument, url, bucket, prefix, client, pattern=False)
    if named is None:
        return None
    return InputFingerprint(
        argument=argument,
        kind=named.kind,
        fingerprint=f"s3:{hash_struct(['s3-str', url, named.fingerprint])}",
        summary=f"str {url!r}: {named.summary}",
        value={"text": url, **(named.value or {})},
        source_uri=named.source_uri,
    )


def _s3_listing(
    argument: str, url: str, bucket: str, key: str, client: Any, *, pattern: bool
) -> InputFingerprint | None:
    """The objects under a prefix, or matching a glob pattern (``*`` and ``?`` stay within one
    ``/`` segment, ``**`` spans segments), by key, ETag and size; None when there are none."""
    magic = _S3_MAGIC.search(key) if pattern else None
    prefix = key[: magic.start()] if magic is not None else key
    wanted = _s3_pattern(key) if magic is not None else None
    objects: list[list[Any]] = []
    listing: dict[str, str] | None = {}
    size = 0
    for item in _list_objects(argument, bucket, prefix, client):
        name = str(item["Key"])
        if wanted is not None and not wanted.fullmatch(name):
            continue
        etag, length = str(item.get("ETag", "")).strip('"'), int(item.get("Size", 0))
        objects.append([name, etag, length])
        size += length
        if listing is not None and len(listing) == LISTED_FILES_MAX:
            listing = None  # too many to store with the key: the count and digest remain
        elif listing is not None:
            listing[f"{_SCHEME}{bucket}/{name}"] = etag[:16]
    if not objects:
        return None
    digest = hash_struct(["s3objects", bucket, objects])
    what = "objects matching" if pattern else "objects under"
    return InputFingerprint(
        argument=argument,
        kind="s3",
        fingerprint=f"s3:{digest}",
        summary=f"{len(objects):,} {what} {_SCHEME}{bucket}/{key} ({_human_size(size)})",
        value={"content": f"s3:{digest}", "files": len(objects), "size": size, "listing": listing},
        source_uri=url,
    )


def _list_objects(argument: str, bucket: str, prefix: str, client: Any) -> Iterator[dict[str, Any]]:
    try:
        from botocore import exceptions as bx
    except ImportError:
        raise MissingDependencyError("boto3", "s3", "fingerprinting an s3:// string") from None
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            yield from page.get("Contents", ())
    except bx.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _NOT_FOUND:
            return  # no such bucket: the string names nothing
        raise StoreError(
            f"cannot list s3://{bucket}/{prefix} (argument {argument!r}): {code}; check the AWS "
            "credentials and AWS_ENDPOINT_URL, or list the argument in "
            "@cached_feature(values=[...]) to hash it as text"
        ) from exc
    except bx.BotoCoreError as exc:
        raise StoreError(
            f"cannot list s3://{bucket}/{prefix} (argument {argument!r}): {exc}"
        ) from exc


def _s3_pattern(key: str) -> re.Pattern[str]:
    """A glob over S3 keys as a regex: ``**/`` any number of folders (none included), ``**``
    any characters, ``*`` and ``?`` within one segment, ``[...]`` a character class."""
    out: list[str] = []
    i = 0
    while i < len(key):
        char = key[i]
        if key.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if key.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and key.find("]", i + 2) > 0:
            # A "]" right after "[" (or "[!") is a member of the class, as in fnmatch.
            end = key.find("]", i + 2)
            body = key[i + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
            continue
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out))


def _head(argument: str, path: S3Path, client: Any) -> dict[str, Any]:
    try:
        from botocore import exceptions as bx
    except ImportError:
        raise MissingDependencyError("boto3", "s3", "fingerprinting an S3Path input") from None
    request: dict[str, Any] = {"Bucket": path.bucket, "Key": path.key}
    if path.version_id:
        request["VersionId"] = path.version_id
    try:
        head: dict[str, Any] = client.head_object(**request)
    except bx.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _NOT_FOUND or status == 404:
            raise InputNotFoundError(argument, str(path)) from None
        raise StoreError(
            f"cannot read the metadata of {path} (argument {argument!r}): {code or status}; "
            "check the AWS credentials and AWS_ENDPOINT_URL"
        ) from exc
    except bx.BotoCoreError as exc:
        raise StoreError(
            f"cannot read the metadata of {path} (argument {argument!r}): {exc}"
        ) from exc
    return head


_clients: dict[str | None, Any] = {}
_clients_lock = threading.Lock()


def _default_client() -> Any:
    """One boto3 client per endpoint for the process (clients are thread-safe)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    with _clients_lock:
        client = _clients.get(endpoint)
        if client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise MissingDependencyError(
                    "boto3", "s3", "fingerprinting an S3Path input"
                ) from None
            config = Config(retries={"mode": "standard", "max_attempts": 5})
            client = boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)
            _clients[endpoint] = client
        return client


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
