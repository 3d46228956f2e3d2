"""Conditional multipart upload of one local file, with low-level S3 calls.

boto3's managed transfer (``upload_file``) cannot send ``If-None-Match``, so large artifacts
are uploaded part by part here and made visible by one
``CompleteMultipartUpload(IfNoneMatch="*")``. Parts go up in parallel (bounded memory: one part
per worker). Any failure, including a lost race (412), aborts the upload so no parts linger.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from featurecache.errors import StoreError

log = logging.getLogger(__name__)

MAX_PARTS = 10_000
# Mirror s3transfer: a CRC32 per part, echoed in the completion (what AWS verifies).
CHECKSUM_ALGORITHM = "CRC32"
_CHECKSUM_FIELDS = (
    "ChecksumCRC32",
    "ChecksumCRC32C",
    "ChecksumCRC64NVME",
    "ChecksumSHA1",
    "ChecksumSHA256",
)

Call = Callable[..., Any]  # call(operation, key, **kwargs) -> response


def plan_parts(size: int, part_size: int) -> list[tuple[int, int, int]]:
    """``(part number, offset, length)`` covering ``size`` bytes in at most 10,000 parts."""
    part_size = max(part_size, math.ceil(size / MAX_PARTS))
    count = max(1, math.ceil(size / part_size))
    return [
        (number + 1, number * part_size, min(part_size, size - number * part_size))
        for number in range(count)
    ]


def upload_multipart(
    call: Call,
    key: str,
    path: Path,
    size: int,
    *,
    part_size: int,
    max_concurrency: int,
    extra: dict[str, Any],
    conditional: bool,
) -> None:
    """Upload ``path`` to ``key``; raises the S3 error (412 included) after aborting."""
    created = call("create_multipart_upload", key, ChecksumAlgorithm=CHECKSUM_ALGORITHM, **extra)
    upload_id = created["UploadId"]
    try:
        parts = _upload_parts(
            call, key, upload_id, path, plan_parts(size, part_size), max_concurrency
        )
        condition = {"IfNoneMatch": "*"} if conditional else {}
        call(
            "complete_multipart_upload",
            key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            **condition,
        )
    except BaseException:
        _abort(call, key, upload_id)
        raise


def _upload_parts(
    call: Call,
    key: str,
    upload_id: str,
    path: Path,
    plan: list[tuple[int, int, int]],
    max_concurrency: int,
) -> list[dict[str, Any]]:
    fd = os.open(path, os.O_RDONLY)
    try:

        def upload(number: int, offset: int, length: int) -> dict[str, Any]:
            body = os.pread(fd, length, offset)
            if len(body) != length:
                raise StoreError(f"{path} shrank while being uploaded to {key}")
            response = call(
                "upload_part",
                key,
                UploadId=upload_id,
                PartNumber=number,
                Body=body,
                ChecksumAlgorithm=CHECKSUM_ALGORITHM,
            )
            part = {"PartNumber": number, "ETag": response["ETag"]}
            part.update({f: response[f] for f in _CHECKSUM_FIELDS if response.get(f)})
            return part

        workers = max(1, min(max_concurrency, len(plan)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fc-s3-part") as pool:
            futures = [pool.submit(upload, *part) for part in plan]
            _, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
            for future in futures:  # the real failure, not a CancelledError of a later part
                error = future.exception() if future.done() and not future.cancelled() else None
                if error is not None:
                    raise error
            return [future.result() for future in futures]
    finally:
        os.close(fd)


def _abort(call: Call, key: str, upload_id: str) -> None:
    try:
        call("abort_multipart_upload", key, UploadId=upload_id)
    except StoreError as exc:
        # The incomplete upload stays invisible; iter_temp reports it and gc removes it.
        log.warning("could not abort the multipart upload of %s (%s): %s", key, upload_id, exc)
