"""The S3 artifact store: content-addressed objects ``<prefix>/ab/cdef….parquet``, created
write-once with S3 conditional writes (``If-None-Match: *``).

S3 has no rename, so atomicity comes from the upload itself: a PutObject or a
CompleteMultipartUpload makes the whole object visible at once or not at all. The condition makes
the first writer win; a loser gets 412. An object already there is never adopted on its metadata
(anyone who can write the bucket can write ``fc-xxh3`` too): every publish spools its own file,
then downloads the existing object, hashes it and keeps it only when it proves it holds the
artifact, as the local store does (``store.local.proves_artifact``: the same bytes, or the same
content read back; ``created=False``). Otherwise our file overwrites it (an unconditional write:
every writer that overwrites holds the artifact's content). Large files go through low-level multipart calls, because boto3's managed
transfer cannot send the condition; an interrupted multipart upload stays invisible and is
reported by ``iter_temp``. A start-up probe (``check_capabilities``) refuses endpoints that ignore
the condition unless the user allows the racy HEAD-then-PUT fallback.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from featurecache.errors import (
    ArtifactNotFoundError,
    ConfigError,
    StoreCapabilityError,
    StoreError,
)
from featurecache.fingerprint.s3object import parse_s3_url
from featurecache.hashing import hash_file_bytes, new_hasher
from featurecache.settings import DEFAULT_REMOTE_TIMEOUT_SECONDS
from featurecache.store.base import ScanTarget, StoredFile, StoredObject
from featurecache.store.layout import (
    ARTIFACT_SUFFIX,
    PROBE_DIR,
    QUARANTINE_DIR,
    artifact_id_of_name,
    artifact_name,
    quarantine_stem,
)
from featurecache.store.local import proves_artifact
from featurecache.store.s3.client import (
    CONDITIONAL_CONFLICT,
    PRECONDITION_FAILED,
    RemoteTimeoutError,
    S3RequestError,
    check_deadline,
    deadline_passed,
    is_custom_endpoint,
    make_client,
    remote_deadline,
    resolve_endpoint,
    session_credentials,
    translate_errors,
)
from featurecache.store.s3.multipart import upload_multipart
from featurecache.store.s3.probe import cached_probe, probe

log = logging.getLogger(__name__)

MIB = 1 << 20
DEFAULT_MULTIPART_THRESHOLD = 64 * MIB
DEFAULT_PART_SIZE = 16 * MIB
META_HASH = "fc-xxh3"  # our xxh3-128 of the object's bytes (S3's ETag is not a content hash)
META_WRITER = "fc-writer"  # one token per publish: tells our own retried write from a rival's
CONTENT_TYPE = "application/vnd.apache.parquet"
UPLOAD_MARK = "?uploadId="  # temp-object names: "<key relative to prefix>?uploadId=<id>"
_CONFLICT_RETRIES = 6
_READ_RETRIES = 3
_COPY_OBJECT_LIMIT = 5 * 1024 * MIB  # CopyObject's single-request limit
_T = TypeVar("_T")


def _backoff(attempt: int) -> None:
    time.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))


class S3Store:
    """Artifacts as objects under ``s3://bucket/prefix``; safe for many writers on many hosts."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client_factory: Callable[[], Any] | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        allow_unconditional: bool = False,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        part_size: int = DEFAULT_PART_SIZE,
        max_concurrency: int = 4,
        max_attempts: int = 5,
        spool_dir: Path | None = None,
        remote_timeout: float = DEFAULT_REMOTE_TIMEOUT_SECONDS,
    ) -> None:
        parse_s3_url(f"s3://{bucket}/", require_key=False)  # validates the bucket name
        if part_size < 5 * MIB:
            raise ConfigError(
                "part_size", f"{part_size} bytes is below S3's 5 MiB minimum", "Raise it."
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.location = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.allow_unconditional = allow_unconditional
        self.multipart_threshold = max(1, multipart_threshold)
        self.part_size = part_size
        self.max_concurrency = max(1, max_concurrency)
        self.spool_dir = spool_dir
        self._endpoint_url = resolve_endpoint(endpoint_url)
        self._region = region
        self._max_attempts = max(1, max_attempts)
        # Deadline of one request with its retries, and of a multi-step read or probe.
        self.remote_timeout = remote_timeout
        self._client_factory = client_factory
        self._client_obj: Any = None
        self._client_pid = 0
        self._client_lock = threading.Lock()
        # True until a capability probe proves the endpoint ignores If-None-Match.
        self._conditional = True

    def __repr__(self) -> str:
        return f"S3Store({self.location!r})"

    # -- plumbing ---------------------------------------------------------------------------

    def _client(self) -> Any:
        with self._client_lock:
            # A client must not cross a fork (Dask/Ray workers, multiprocessing).
            if self._client_obj is None or self._client_pid != os.getpid():
                self._client_pid = os.getpid()
                if self._client_factory is not None:
                    self._client_obj = self._client_factory()
                else:
                    self._client_obj = make_client(
                        endpoint_url=self._endpoint_url,
                        region=self._region,
                        max_attempts=self._max_attempts,
                        max_pool_connections=max(10, 2 * self.max_concurrency),
                        timeout_seconds=self.remote_timeout,
                    )
            return self._client_obj

    def _call(self, operation: str, key: str, **kwargs: Any) -> Any:
        client = self._client()
        check_deadline(operation, self._location(key))  # a multi-step operation ran out of time
        with translate_errors(operation, self._location(key)):
            return getattr(client, operation)(Bucket=self.bucket, Key=key, **kwargs)

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _relative(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key

    def _location(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self._call("head_object", key)
        except S3RequestError as exc:
            if exc.not_found:
                return None
            raise
        return head

    # -- names ------------------------------------------------------------------------------

    def artifact_uri(self, artifact_id: str) -> str:
        return self._location(self._key(artifact_name(artifact_id)))

    def local_path(self, artifact_id: str) -> Path | None:
        artifact_name(artifact_id)  # validates
        return None

    def scan_target(self, artifact_id: str) -> ScanTarget:
        """The object's URL plus polars/object_store options (endpoint, region, credentials)."""
        client = self._client()
        options: dict[str, str] = {}
        endpoint = str(client.meta.endpoint_url or "")
        if is_custom_endpoint(endpoint):
            options["aws_endpoint_url"] = endpoint
            if endpoint.startswith("http://"):
                options["aws_allow_http"] = "true"
        if client.meta.region_name:
            options["aws_region"] = str(client.meta.region_name)
        options.update(session_credentials())
        return ScanTarget(self.artifact_uri(artifact_id), options)

    # -- publish ----------------------------------------------------------------------------

    def publish(self, artifact_id: str, write: Callable[[Path], None]) -> StoredFile:
        key = self._key(artifact_name(artifact_id))
        # Written and spooled even when the object seems to exist: an existing object is
        # compared with ours before it is kept (module docstring).
        if self.spool_dir is not None:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
        fd, spool_name = tempfile.mkstemp(
            prefix="featurecache-spool-", suffix=ARTIFACT_SUFFIX, dir=self.spool_dir
        )
        os.close(fd)
        spool = Path(spool_name)
        try:
            write(spool)  # the caller's errors propagate unchanged
            size, file_hash = _hash_file(spool)
            return self._upload(artifact_id, key, spool, size, file_hash)
        finally:
            spool.unlink(missing_ok=True)

    def publish_many(
        self, items: Sequence[tuple[str, Callable[[Path], None]]]
    ) -> list[StoredFile | BaseException]:
        """``publish`` of each item in turn (each outcome in its place)."""
        outcomes: list[StoredFile | BaseException] = []
        for artifact_id, write in items:
            try:
                outcomes.append(self.publish(artifact_id, write))
            except Exception as exc:  # noqa: BLE001 - handed back in the item's place
                outcomes.append(exc)
        return outcomes

    def _upload(
        self, artifact_id: str, key: str, spool: Path, size: int, file_hash: str
    ) -> StoredFile:
        writer = uuid.uuid4().hex
        metadata = {META_HASH: file_hash, META_WRITER: writer}
        for attempt in range(_CONFLICT_RETRIES):
            if not self._conditional:
                # Racy fallback for endpoints without conditional writes: harmless here, since
                # every writer of this key holds the same logical content.
                head = self._head(key)
                if head is not None:
                    return self._existing(artifact_id, key, head, writer, spool, file_hash)
            try:
                self._send(key, spool, size, metadata, conditional=self._conditional)
            except S3RequestError as exc:
                if exc.code == CONDITIONAL_CONFLICT or exc.status == 409:
                    _backoff(attempt)  # a concurrent conditional write is in flight: retry
                    continue
                if exc.code != PRECONDITION_FAILED and exc.status != 412:
                    raise
                head = self._head(key)
                if head is None:  # the winner vanished again (a concurrent delete): retry
                    continue
                return self._existing(artifact_id, key, head, writer, spool, file_hash)
            return StoredFile(artifact_id, self._location(key), size, file_hash, created=True)
        raise StoreError(
            f"publishing {artifact_id} to {self._location(key)}: gave up after "
            f"{_CONFLICT_RETRIES} conflicting concurrent writes"
        )

    def _send(
        self, key: str, spool: Path, size: int, metadata: dict[str, str], *, conditional: bool
    ) -> None:
        if size < self.multipart_threshold:
            self._put(key, spool, size, metadata, conditional=conditional)
        else:
            upload_multipart(
                self._call,
                key,
                spool,
                size,
                part_size=self.part_size,
                max_concurrency=self.max_concurrency,
                extra={"ContentType": CONTENT_TYPE, "Metadata": metadata},
                conditional=conditional,
            )

    def _put(
        self, key: str, spool: Path, size: int, metadata: dict[str, str], *, conditional: bool
    ) -> None:
        condition = {"IfNoneMatch": "*"} if conditional else {}
        with spool.open("rb") as body:
            self._call(
                "put_object",
                key,
                Body=body,
                ContentLength=size,
                ContentType=CONTENT_TYPE,
                Metadata=metadata,
                **condition,
            )

    def _existing(
        self,
        artifact_id: str,
        key: str,
        head: dict[str, Any],
        writer: str,
        spool: Path,
        file_hash: str,
    ) -> StoredFile:
        """The object already at ``key``: kept when it is ours (a retried request whose first
        attempt landed) or proves it holds the artifact; else overwritten with ``spool``. Its
        hash is always computed from its bytes, never taken from its metadata."""
        metadata = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
        location = self._location(key)
        if metadata.get(META_WRITER) == writer:
            size = int(head["ContentLength"])
            return StoredFile(artifact_id, location, size, file_hash, created=True)
        fd, name = tempfile.mkstemp(
            prefix="featurecache-existing-", suffix=ARTIFACT_SUFFIX, dir=self.spool_dir
        )
        theirs = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                size, existing_hash = self._download(key, handle)
            if existing_hash == file_hash or proves_artifact(artifact_id, theirs, spool):
                return StoredFile(artifact_id, location, size, existing_hash, created=False)
        finally:
            theirs.unlink(missing_ok=True)
        log.warning(
            "featurecache: %s did not hold artifact %s (%d bytes, not its content): replaced",
            location,
            artifact_id,
            size,
        )
        ours = spool.stat().st_size
        self._send(key, spool, ours, {META_HASH: file_hash, META_WRITER: writer}, conditional=False)
        return StoredFile(artifact_id, location, ours, file_hash, created=True)

    def _download(self, key: str, handle: Any) -> tuple[int, str]:
        """Copy the object into ``handle``: its size and xxh3-128."""
        response = self._call("get_object", key)
        with translate_errors("get_object (body)", self._location(key)):
            return _copy_body(response["Body"], handle)

    # -- read -------------------------------------------------------------------------------

    def read_bytes(self, artifact_id: str) -> memoryview:
        def whole(response: Any) -> memoryview:
            return memoryview(response["Body"].read())

        return self._get(artifact_id, whole)

    def download_to(self, artifact_id: str, path: Path) -> tuple[int, str]:
        """Stream the artifact into the local file ``path`` (created or truncated), hashing it
        on the way: its size and xxh3-128. Retried like ``read_bytes``; the local tier
        (``store.tier``) calls it."""

        def into_file(response: Any) -> tuple[int, str]:
            with path.open("wb") as handle:
                return _copy_body(response["Body"], handle)

        return self._get(artifact_id, into_file)

    def _get(self, artifact_id: str, consume: Callable[[Any], _T]) -> _T:
        """``consume`` the artifact's GetObject response, retried under one deadline."""
        key = self._key(artifact_name(artifact_id))
        # One deadline over the retries: none starts after it (a body still arriving goes on).
        with remote_deadline(self.remote_timeout):
            for attempt in range(_READ_RETRIES):
                try:
                    response = self._call("get_object", key)
                    with translate_errors("get_object (body)", self._location(key)):
                        return consume(response)
                except S3RequestError as exc:
                    if exc.not_found:
                        raise ArtifactNotFoundError(artifact_id, self.location) from None
                    raise
                except StoreError as exc:
                    # A stream cut mid-body is not retried by botocore (the call had returned);
                    # a request that ran out of time already used up the deadline.
                    timed_out = isinstance(exc, RemoteTimeoutError) or deadline_passed()
                    if attempt + 1 == _READ_RETRIES or timed_out:
                        raise
                    _backoff(attempt)
                    if deadline_passed():
                        raise
        raise AssertionError("unreachable")

    def exists(self, artifact_id: str) -> bool:
        return self._head(self._key(artifact_name(artifact_id))) is not None

    def size(self, artifact_id: str) -> int | None:
        head = self._head(self._key(artifact_name(artifact_id)))
        return None if head is None else int(head["ContentLength"])

    # -- remove -----------------------------------------------------------------------------

    def delete(self, artifact_id: str) -> bool:
        key = self._key(artifact_name(artifact_id))
        if self._head(key) is None:
            return False
        self._call("delete_object", key)
        return True

    def quarantine(self, artifact_id: str, reason: str) -> None:
        """Copy to ``<prefix>/quarantine/<id>-<UTC time>.parquet`` with a JSON sidecar, then
        delete the original. Quarantining an absent artifact does nothing."""
        key = self._key(artifact_name(artifact_id))
        head = self._head(key)
        if head is None:
            return
        stem = self._key(f"{QUARANTINE_DIR}/{quarantine_stem(artifact_id)}")
        source = {"Bucket": self.bucket, "Key": key}
        try:
            if int(head["ContentLength"]) <= _COPY_OBJECT_LIMIT:
                self._call("copy_object", stem + ARTIFACT_SUFFIX, CopySource=source)
            else:
                with translate_errors("copy", self._location(key)):
                    self._client().copy(source, self.bucket, stem + ARTIFACT_SUFFIX)
        except S3RequestError as exc:
            if exc.not_found:
                return  # quarantined or deleted by someone else meanwhile
            raise
        sidecar = {
            "artifact_id": artifact_id,
            "reason": reason,
            "quarantined_at": datetime.now(UTC).isoformat(),
            "original_key": key,
            "size_bytes": int(head["ContentLength"]),
        }
        body = json.dumps(sidecar, indent=2, sort_keys=True).encode()
        self._call("put_object", stem + ".json", Body=body, ContentType="application/json")
        self._call("delete_object", key)

    def remove_object(self, obj: StoredObject) -> None:
        name, mark, upload_id = obj.name.partition(UPLOAD_MARK)
        if mark:
            try:
                self._call("abort_multipart_upload", self._key(name), UploadId=upload_id)
            except S3RequestError as exc:
                if exc.code != "NoSuchUpload" and not exc.not_found:
                    raise
            return
        if artifact_id_of_name(name) is None:
            raise StoreError(f"refusing to remove {name!r}: not an artifact or temp object name")
        self._call("delete_object", self._key(name))

    # -- list -------------------------------------------------------------------------------

    def iter_artifacts(self) -> Iterator[StoredObject]:
        client = self._client()
        prefix = self._key("")
        with translate_errors("list_objects_v2", self._location(prefix)):
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    name = self._relative(item["Key"])
                    artifact_id = artifact_id_of_name(name)
                    if artifact_id is not None:
                        yield StoredObject(
                            name=name,
                            artifact_id=artifact_id,
                            size_bytes=int(item["Size"]),
                            modified_at=item["LastModified"].astimezone(UTC),
                        )

    def iter_temp(self) -> Iterator[StoredObject]:
        """Incomplete multipart uploads under the prefix (invisible, but billed)."""
        client = self._client()
        prefix = self._key("")
        with translate_errors("list_multipart_uploads", self._location(prefix)):
            pages = client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            uploads = [upload for page in pages for upload in page.get("Uploads", [])]
        for upload in uploads:
            key, upload_id = upload["Key"], upload["UploadId"]
            yield StoredObject(
                name=f"{self._relative(key)}{UPLOAD_MARK}{upload_id}",
                artifact_id=None,
                size_bytes=self._uploaded_bytes(key, upload_id),
                modified_at=upload["Initiated"].astimezone(UTC),
            )

    def _uploaded_bytes(self, key: str, upload_id: str) -> int:
        client = self._client()
        total = 0
        try:
            with translate_errors("list_parts", self._location(key)):
                pages = client.get_paginator("list_parts").paginate(
                    Bucket=self.bucket, Key=key, UploadId=upload_id
                )
                for page in pages:
                    total += sum(int(part["Size"]) for part in page.get("Parts", []))
        except S3RequestError as exc:
            if exc.code != "NoSuchUpload":
                raise
        return total

    # -- capabilities -----------------------------------------------------------------------

    def check_capabilities(self) -> None:
        """Probe (once per endpoint and bucket in this process) that the endpoint honours
        ``If-None-Match: *`` on PutObject and CompleteMultipartUpload."""
        endpoint = str(self._client().meta.endpoint_url or "")
        probe_key = self._key(f"{PROBE_DIR}/{uuid.uuid4().hex}")
        problem = cached_probe(
            endpoint,
            self.bucket,
            lambda: probe(self._call, probe_key, deadline_seconds=self.remote_timeout),
        )
        if problem is None:
            self._conditional = True
            return
        message = (
            f"the S3 endpoint {endpoint} (bucket {self.bucket}) does not honour conditional "
            f"writes: {problem}. Concurrent writers could overwrite each other's artifacts."
        )
        if not self.allow_unconditional:
            raise StoreCapabilityError(
                f"{message} Use an endpoint that supports If-None-Match, or set "
                "FEATURECACHE_ALLOW_UNCONDITIONAL_STORE=1 to run anyway (HEAD-then-PUT)."
            )
        warnings.warn(
            f"{message} Falling back to HEAD-then-PUT (FEATURECACHE_ALLOW_UNCONDITIONAL_STORE).",
            RuntimeWarning,
            stacklevel=2,
        )
        self._conditional = False


def _copy_body(body: Any, handle: Any) -> tuple[int, str]:
    """Copy a GetObject body into ``handle``: its size and xxh3-128."""
    hasher = new_hasher()
    size = 0
    for chunk in body.iter_chunks(8 * MIB):
        hasher.update(chunk)
        handle.write(chunk)
        size += len(chunk)
    return size, str(hasher.hexdigest())


def _hash_file(path: Path) -> tuple[int, str]:
    """Size and xxh3-128 of the spooled file, read while it is still in page cache."""
    return path.stat().st_size, hash_file_bytes(str(path))
