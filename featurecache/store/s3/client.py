"""boto3 at the edge of the S3 store: lazy import, one configured client, and the translation of
botocore failures into featurecache's error tree (no raw botocore exception leaves the store).

Transient failures (throttling such as SlowDown, 5xx, dropped connections) are retried by
botocore's ``standard`` retry mode with jittered exponential backoff; what it does not retry
(409 ConditionalRequestConflict) is the publisher's job.

Nothing waits on a silent endpoint for long (``FEATURECACHE_REMOTE_TIMEOUT``, the deadline): one
attempt gets a third of the deadline to connect and for each read, and no retry starts once the
deadline of its request has passed (a hook on botocore's ``needs-retry`` event). Multi-step
operations (the probe, read retries) put their requests under one ``remote_deadline``. A deadline
stops new attempts and requests; it never cuts a transfer that is still receiving bytes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any
from urllib.parse import urlparse

from featurecache.errors import MissingDependencyError, StoreError
from featurecache.settings import DEFAULT_REMOTE_TIMEOUT_SECONDS

NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchVersion"})
PRECONDITION_FAILED = "PreconditionFailed"
CONDITIONAL_CONFLICT = "ConditionalRequestConflict"

_HINTS = {
    "NoSuchBucket": "create the bucket, or fix the bucket name in FEATURECACHE_STORE",
    "AccessDenied": "check the AWS credentials and the bucket policy",
    "InvalidAccessKeyId": "check the AWS credentials (AWS_ACCESS_KEY_ID or the profile)",
    "SignatureDoesNotMatch": "check the AWS secret key and the endpoint (AWS_ENDPOINT_URL)",
    "ExpiredToken": "refresh the AWS session credentials",
    "SlowDown": "the bucket is throttling requests; retry later or spread the load",
}


class S3RequestError(StoreError):
    """An S3 request failed; carries the S3 error code and HTTP status."""

    def __init__(self, operation: str, location: str, code: str, status: int | None, detail: str):
        self.operation = operation
        self.location = location
        self.code = code
        self.status = status
        hint = _HINTS.get(code, "")
        status_text = f" (HTTP {status})" if status else ""
        message = f"S3 {operation} on {location} failed: {code}{status_text}"
        if detail and detail != code:
            message += f": {detail}"
        if hint:
            message += f"; {hint}"
        super().__init__(message)

    @property
    def not_found(self) -> bool:
        """The object (not the bucket, not an upload) does not exist."""
        if self.code in NOT_FOUND_CODES:
            return True
        return self.status == 404 and self.code not in {"NoSuchBucket", "NoSuchUpload"}


class RemoteTimeoutError(StoreError):
    """An S3 endpoint did not answer within the deadline for remote operations."""

    def __init__(self, operation: str, location: str, seconds: float, detail: str = "") -> None:
        self.operation = operation
        self.location = location
        self.seconds = seconds
        last = f" (last: {detail})" if detail else ""
        super().__init__(
            f"S3 {operation} on {location}: no answer within the {seconds:g} s deadline{last}; "
            "check the endpoint (AWS_ENDPOINT_URL) and the network, or raise "
            "FEATURECACHE_REMOTE_TIMEOUT"
        )


def attempt_timeouts(deadline_seconds: float) -> tuple[float, float]:
    """``(connect, read)`` timeouts of one request attempt: a third of the deadline, so that
    two or three attempts fit in it, and at most botocore's usual 10 s and 120 s."""
    third = deadline_seconds / 3
    return min(10.0, third), min(120.0, third)


# The deadline of the multi-step operation this thread is in: (monotonic end, seconds).
_scope = threading.local()
_REQUEST_DEADLINE = "featurecache_deadline"  # keys in botocore's per-request context
_ATTEMPT_SECONDS = "featurecache_attempt_seconds"


@contextmanager
def remote_deadline(seconds: float) -> Iterator[None]:
    """One overall deadline for the S3 requests this thread makes inside the block: once it
    has passed, no retry and no new request starts (``check_deadline``). An enclosing block's
    earlier deadline stays in force."""
    outer: tuple[float, float] | None = getattr(_scope, "deadline", None)
    mine = (time.monotonic() + seconds, seconds)
    _scope.deadline = mine if outer is None or mine[0] < outer[0] else outer
    try:
        yield
    finally:
        _scope.deadline = outer


def deadline_passed() -> bool:
    """Whether this thread's ``remote_deadline`` (if any) has passed."""
    current: tuple[float, float] | None = getattr(_scope, "deadline", None)
    return current is not None and time.monotonic() >= current[0]


def check_deadline(operation: str, location: str) -> None:
    """Raise ``RemoteTimeoutError`` when this thread's ``remote_deadline`` has passed."""
    current: tuple[float, float] | None = getattr(_scope, "deadline", None)
    if current is not None and time.monotonic() >= current[0]:
        raise RemoteTimeoutError(operation, location, current[1])


def _start_request_clock(
    seconds: float, attempt_seconds: float, context: dict[str, Any], **_: Any
) -> None:
    """botocore ``before-call`` hook: the request's own deadline, over all its attempts."""
    context[_REQUEST_DEADLINE] = (time.monotonic() + seconds, seconds)
    context[_ATTEMPT_SECONDS] = attempt_seconds


def _stop_retrying_after_deadline(
    request_dict: dict[str, Any],
    operation: Any,
    response: Any = None,
    caught_exception: BaseException | None = None,
    **_: Any,
) -> None:
    """botocore ``needs-retry`` hook (run before the retry handler): after a failed attempt,
    refuse a retry that could not end (hang included) before the request's or the thread's
    deadline, so that a silent endpoint is given up on within the deadline, not after it."""
    status = getattr(response[0], "status_code", 0) if response else 0
    if caught_exception is None and status < 500 and status != 429:
        return  # not a failure botocore would retry
    context = request_dict.get("context") or {}
    deadlines = [
        d for d in (context.get(_REQUEST_DEADLINE), getattr(_scope, "deadline", None)) if d
    ]
    margin = float(context.get(_ATTEMPT_SECONDS) or 0.0)  # what one more hung attempt takes
    now = time.monotonic()
    passed = [seconds for end, seconds in deadlines if now + margin >= end]
    if passed:
        detail = str(caught_exception) if caught_exception is not None else f"HTTP {status}"
        url = str(request_dict.get("url") or "")
        raise RemoteTimeoutError(getattr(operation, "name", "request"), url, min(passed), detail)


def import_boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise MissingDependencyError("boto3", "s3", "an s3:// artifact store or input") from None
    return boto3


def resolve_endpoint(explicit: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The S3 endpoint: an explicit one, else boto3's ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``."""
    env = os.environ if environ is None else environ
    return explicit or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None


def is_custom_endpoint(endpoint_url: str | None) -> bool:
    """True for S3-compatible servers (MinIO, moto, …), False for AWS's own endpoints."""
    if not endpoint_url:
        return False
    host = urlparse(endpoint_url).hostname or ""
    return not (host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn"))


_sessions: dict[int, Any] = {}
_clients: dict[tuple[Any, ...], Any] = {}
_cache_lock = threading.Lock()


def _session() -> Any:
    """One boto3 session per process (sessions and their clients must not cross a fork)."""
    boto3 = import_boto3()
    pid = os.getpid()
    with _cache_lock:
        session = _sessions.get(pid)
        if session is None:
            session = _sessions[pid] = boto3.session.Session()
        return session


def make_client(
    *,
    endpoint_url: str | None,
    region: str | None,
    max_attempts: int,
    max_pool_connections: int,
    timeout_seconds: float = DEFAULT_REMOTE_TIMEOUT_SECONDS,
) -> Any:
    """A shared, thread-safe S3 client for these settings (creating one costs ~0.1 s), whose
    requests give up on a silent endpoint after about ``timeout_seconds``."""
    key = (os.getpid(), endpoint_url, region, max_attempts, max_pool_connections, timeout_seconds)
    session = _session()
    from botocore.config import Config

    with _cache_lock:
        client = _clients.get(key)
        if client is None:
            connect_timeout, read_timeout = attempt_timeouts(timeout_seconds)
            config = Config(
                retries={"mode": "standard", "total_max_attempts": max_attempts},
                max_pool_connections=max_pool_connections,
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
            )
            with translate_errors("connect", endpoint_url or "AWS S3"):
                client = session.client(
                    "s3", endpoint_url=endpoint_url, region_name=region or None, config=config
                )
            events = client.meta.events
            events.register(
                "before-call.s3", partial(_start_request_clock, timeout_seconds, read_timeout)
            )
            events.register_first("needs-retry.s3", _stop_retrying_after_deadline)
            _clients[key] = client
        return client


def session_credentials() -> dict[str, str]:
    """The credentials boto3's default chain finds, as polars/object_store storage options."""
    with translate_errors("resolve credentials", "AWS"):
        credentials = _session().get_credentials()
        if credentials is None:
            return {}
        frozen = credentials.get_frozen_credentials()  # refreshes expiring credentials
    options = {"aws_access_key_id": frozen.access_key, "aws_secret_access_key": frozen.secret_key}
    if frozen.token:
        options["aws_session_token"] = frozen.token
    return options


@contextmanager
def translate_errors(operation: str, location: str) -> Iterator[None]:
    """Turn botocore exceptions raised inside the block into ``S3RequestError``/``StoreError``."""
    try:
        from botocore import exceptions as bx
    except ImportError:
        raise MissingDependencyError("boto3", "s3", "an s3:// artifact store or input") from None

    try:
        yield
    except bx.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        raise S3RequestError(
            operation, location, code, status, str(error.get("Message") or "")
        ) from exc
    except bx.NoCredentialsError as exc:
        raise StoreError(
            f"S3 {operation} on {location}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance role"
        ) from exc
    except (bx.EndpointConnectionError, bx.ConnectionClosedError, bx.ConnectTimeoutError) as exc:
        raise StoreError(
            f"S3 {operation} on {location}: cannot reach the endpoint after retries ({exc}); "
            "check the network and AWS_ENDPOINT_URL"
        ) from exc
    except bx.BotoCoreError as exc:
        raise StoreError(f"S3 {operation} on {location} failed: {exc}") from exc
