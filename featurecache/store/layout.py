"""The store's naming scheme, shared by every backend: where an artifact id lives, which names
are artifacts, temp files or quarantined files.

An artifact id is 32 lowercase hex characters (xxh3-128). It is sharded git-style into
``ab/cdef….parquet`` (first two characters, then the remaining 30) so no directory or listing
prefix grows past 1/256 of the store. Temp files start with a dot, so globbing ``*.parquet`` and
every ``hidden_file_prefix`` convention skip them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from featurecache.errors import InvalidArtifactIdError

ARTIFACT_SUFFIX = ".parquet"
TEMP_PREFIX = ".tmp-"
QUARANTINE_DIR = "quarantine"
PROBE_DIR = ".probe"
# Upload spool files (S3 publishes) live in ``<state_dir>/spool``, not in $TMPDIR, so that
# ``verify`` finds (and ``--repair`` removes) the ones a killed writer left behind.
SPOOL_DIR = "spool"
SPOOL_PREFIX = "featurecache-spool-"

_ARTIFACT_ID = re.compile(r"[0-9a-f]{32}")
_SHARD = re.compile(r"[0-9a-f]{2}")
_REST = re.compile(r"([0-9a-f]{30})\.parquet")
_NAME = re.compile(r"([0-9a-f]{2})/([0-9a-f]{30})\.parquet")


def check_artifact_id(artifact_id: str) -> str:
    """``artifact_id`` itself when it is well formed; ``InvalidArtifactIdError`` otherwise.

    Ids become file names and object keys, so anything else (``../``, upper case, a short
    prefix) is refused before it reaches the file system."""
    if not isinstance(artifact_id, str) or not _ARTIFACT_ID.fullmatch(artifact_id):
        raise InvalidArtifactIdError(str(artifact_id))
    return artifact_id


def artifact_name(artifact_id: str) -> str:
    """The store-relative name ``ab/cdef….parquet``."""
    check_artifact_id(artifact_id)
    return f"{artifact_id[:2]}/{artifact_id[2:]}{ARTIFACT_SUFFIX}"


def is_shard(name: str) -> bool:
    return _SHARD.fullmatch(name) is not None


def artifact_id_of_file(shard: str, file_name: str) -> str | None:
    """The artifact id a file ``<shard>/<file_name>`` holds, None for anything else."""
    match = _REST.fullmatch(file_name)
    if match is None or not is_shard(shard):
        return None
    return shard + match.group(1)


def artifact_id_of_name(name: str) -> str | None:
    """The artifact id of a store-relative name ``ab/cdef….parquet``, None for anything else."""
    match = _NAME.fullmatch(name)
    return match.group(1) + match.group(2) if match else None


def quarantine_stem(artifact_id: str, now: datetime | None = None) -> str:
    """``<artifact_id>-<UTC timestamp>``: unique per quarantine event, sortable by time."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{artifact_id}-{moment.strftime('%Y%m%dT%H%M%S.%fZ')}"
