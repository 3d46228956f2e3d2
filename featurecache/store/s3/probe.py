"""The start-up probe of an S3 endpoint: does it honour ``If-None-Match: *``?

Emulators and S3-compatible servers have ignored the condition (or honoured it on PutObject but
not on CompleteMultipartUpload), which would silently let concurrent writers overwrite each
other. The probe creates one object under ``<prefix>/.probe/``, tries to create it again both
ways, expects 412 each time, and cleans up. Results are cached per (endpoint, bucket) for the
life of the process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from featurecache.errors import StoreError
from featurecache.store.s3.client import PRECONDITION_FAILED, S3RequestError

log = logging.getLogger(__name__)

Call = Callable[..., Any]  # call(operation, key, **kwargs) -> response

# (endpoint, bucket) -> None when conditional writes are honoured, else what went wrong.
_results: dict[tuple[str, str], str | None] = {}
_lock = threading.Lock()


def cached_probe(endpoint: str, bucket: str, run: Callable[[], str | None]) -> str | None:
    """``run()``'s answer for this endpoint and bucket, computed once per process."""
    with _lock:  # held while probing: concurrent openers wait for one probe, not run many
        if (endpoint, bucket) not in _results:
            _results[endpoint, bucket] = run()
        return _results[endpoint, bucket]


def probe(call: Call, key: str) -> str | None:
    """What is wrong with conditional writes at ``key``'s endpoint, None when they work.

    Raises ``StoreError`` when the probe cannot even write (missing bucket, no permission)."""
    try:
        try:
            call("put_object", key, Body=b"probe", IfNoneMatch="*")
        except S3RequestError as exc:
            if exc.code in {"NotImplemented", "InvalidArgument"} or exc.status == 501:
                return f"PutObject with If-None-Match: * was rejected ({exc.code})"
            raise
        problem = _expect_412(lambda: call("put_object", key, Body=b"again", IfNoneMatch="*"))
        if problem:
            return f"PutObject with If-None-Match: * {problem}"
        upload_id = call("create_multipart_upload", key)["UploadId"]
        try:
            part = call("upload_part", key, UploadId=upload_id, PartNumber=1, Body=b"again")
            parts = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
            problem = _expect_412(
                lambda: call(
                    "complete_multipart_upload",
                    key,
                    UploadId=upload_id,
                    MultipartUpload=parts,
                    IfNoneMatch="*",
                )
            )
        finally:
            _quietly(lambda: call("abort_multipart_upload", key, UploadId=upload_id))
        return f"CompleteMultipartUpload with If-None-Match: * {problem}" if problem else None
    finally:
        _quietly(lambda: call("delete_object", key))


def _expect_412(request: Callable[[], object]) -> str | None:
    try:
        request()
    except S3RequestError as exc:
        if exc.code == PRECONDITION_FAILED or exc.status == 412:
            return None
        return f"failed with {exc.code} instead of 412 PreconditionFailed"
    return "overwrote an existing object"


def _quietly(request: Callable[[], object]) -> None:
    try:
        request()
    except StoreError as exc:
        log.warning("S3 probe clean-up failed (harmless, left for featurecache gc): %s", exc)
