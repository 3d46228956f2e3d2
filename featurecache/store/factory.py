"""Turn a store URL (``FEATURECACHE_STORE``) into an ``ArtifactStore``.

A directory path or ``file://`` URL opens a ``LocalStore``; ``s3://bucket/prefix`` opens an
``S3Store`` (boto3's credentials, ``AWS_ENDPOINT_URL`` for S3-compatible servers). Relative
directories are taken from the project root, like the default ``.featurecache/artifacts``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from featurecache.errors import ConfigError, InvalidS3UrlError, StoreCapabilityError, StoreError
from featurecache.settings import Settings
from featurecache.store.base import ArtifactStore
from featurecache.store.layout import SPOOL_DIR

SETTING = "FEATURECACHE_STORE"
_FIX = "Give a directory, a file:// URL, or s3://bucket/prefix."


def open_store(url: str, settings: Settings, *, check: bool = True) -> ArtifactStore:
    """Open the store ``url`` names. With ``check`` (the default) its capabilities are probed
    once: a local directory must be writable, an S3 endpoint must honour conditional writes
    (or ``FEATURECACHE_ALLOW_UNCONDITIONAL_STORE`` must allow it)."""
    text = str(url).strip()
    if not text:
        raise ConfigError(SETTING, "is empty", _FIX)
    scheme = urlparse(text).scheme.lower()
    store: ArtifactStore
    if scheme == "s3":
        store = _open_s3(text, settings)
    elif scheme == "file":
        store = _open_local(_file_url_path(text), settings)
    elif scheme == "" or (len(scheme) == 1 and text[1:3] in (":\\", ":/")):  # C:\ on Windows
        store = _open_local(Path(text), settings)
    else:
        raise ConfigError(SETTING, f"{text!r} uses the unsupported scheme {scheme}://", _FIX)
    if check:
        store.check_capabilities()
    return store


def check_for_cache(store: ArtifactStore, settings: Settings) -> StoreError | None:
    """``open_store``'s capability check as a cache needs it: a store that cannot be written
    (a read-only mount, read-only S3 credentials) is not refused but returned as the problem,
    and the cache then serves hits and computes misses without storing them. An S3 endpoint
    without conditional writes is still refused (``StoreCapabilityError``). A ``read_only``
    cache writes nothing, so it probes nothing."""
    if settings.read_only:
        return None
    try:
        store.check_capabilities()
    except StoreCapabilityError:
        raise
    except StoreError as exc:
        return exc
    return None


def _open_local(path: Path, settings: Settings) -> ArtifactStore:
    from featurecache.store.local import LocalStore

    path = path.expanduser()
    if not path.is_absolute():
        path = settings.project_root / path
    if path.exists() and not path.is_dir():
        raise ConfigError(SETTING, f"{path} exists and is not a directory", _FIX)
    return LocalStore(path)


def _file_url_path(text: str) -> Path:
    parsed = urlparse(text)
    if parsed.netloc not in ("", "localhost"):
        raise ConfigError(SETTING, f"{text!r} names a remote host", "Use file:///absolute/path.")
    return Path(unquote(parsed.path))


def _open_s3(text: str, settings: Settings) -> ArtifactStore:
    from featurecache.fingerprint.s3object import parse_s3_url
    from featurecache.store.s3.store import S3Store

    try:
        bucket, prefix = parse_s3_url(text, require_key=False)
    except InvalidS3UrlError as exc:
        raise ConfigError(SETTING, exc.problem, _FIX) from None
    return S3Store(
        bucket,
        prefix,
        allow_unconditional=settings.allow_unconditional_store,
        remote_timeout=settings.remote_timeout_seconds,
        spool_dir=settings.state_dir / SPOOL_DIR,  # verify finds a killed writer's spool there
    )
