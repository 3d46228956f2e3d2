"""The start-up probe of an S3 endpoint: does it honour ``If-None-Match: *``?

Emulators and S3-compatible servers have ignored the condition (or honoured it on PutObject but
not on CompleteMultipartUpload), which would silently let concurrent writers overwrite each
other. The probe creates one object under ``<prefix>/.probe/``, tries to create it again both
ways, expects 412 each time, and cleans up. Results are cached per (endpoint, bucket) for the
life of the process. The whole probe, clean-up included, runs under one deadline
(``FEATURECACHE_REMOTE_TIMEOUT``): against a silent endpoint it gives up once, not per step.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

from featurecache.errors import StoreError
from featurecache.store.s3.client import (
    PRECONDITION_FAILED,
    RemoteTimeoutError,
    S3RequestError,
    remote_deadline,
)

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


def probe(call: Call, key: str, *, deadline_seconds: float | None = None) -> str | None:
    """What is wrong with conditional writes at ``key``'s endpoint, None when they work.

    Raises ``StoreError`` when the probe cannot even write (missing bucket, no permission), or
    ``RemoteTimeoutError`` when the endpoint does not answer within ``deadline_seconds`` (the
    clean-up is then skipped: the probe object, if any, is left for featurecache gc)."""
    if deadline_seconds is None:
        return _probe(call, key)
    with remote_deadline(deadline_seconds):
        return _probe(call, key)


def _probe(call: Call, key: str) -> str | None:
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
    """A clean-up request, run from a ``finally``: failures are logged. Skipped when the probe
    is unwinding from a ``RemoteTimeoutError`` (``sys.exc_info`` sees the exception a
    ``finally`` runs for): the endpoint does not answer, so it would only wait again."""
    if isinstance(sys.exc_info()[1], RemoteTimeoutError):
        log.warning("S3 probe clean-up skipped (endpoint not answering; left for featurecache gc)")
        return
    try:
        request()
    except StoreError as exc:
        log.warning("S3 probe clean-up failed (harmless, left for featurecache gc): %s", exc)
