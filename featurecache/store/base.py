"""The artifact store's interface: artifact id -> immutable Parquet bytes.

A store knows nothing of keys, features or the catalog. It publishes a file under the
artifact's id atomically and write-once, hands its bytes back, and lists what it holds so
``verify`` can reconcile it with the catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class StoredFile:
    """What a successful publish leaves in the store."""

    artifact_id: str
    uri: str
    size_bytes: int
    file_hash: str  # xxh3-128 of the file's bytes
    created: bool  # False when the artifact was already there (a race lost, or a dedupe)


class Encoded:
    """A ``write`` for ``publish`` whose bytes are encoded in memory (a small artifact:
    ``parquet.encode_small``). Called on a path, it writes them there, as any ``write`` does; a
    store may instead ask for ``data()`` (the local store encodes a batch's files first, then
    writes each on its temp file's descriptor and hashes it in memory, sparing a reopen and a
    read back). ``encode`` runs once; its errors propagate as a ``write``'s do."""

    def __init__(self, encode: Callable[[], memoryview]) -> None:
        self._encode = encode
        self._outcome: memoryview | Exception | None = None

    def data(self) -> memoryview:
        """The bytes, encoded on the first call; an error is raised again by later ones."""
        if self._outcome is None:
            try:
                self._outcome = self._encode()
            except Exception as exc:  # noqa: BLE001 - raised below, and again by later calls
                self._outcome = exc
        if isinstance(self._outcome, Exception):
            raise self._outcome
        return self._outcome

    def __call__(self, path: Path) -> None:
        data = self.data()
        with open(path, "wb") as handle:
            handle.write(data)


@dataclass(frozen=True)
class StoredObject:
    """A file found while listing the store (an artifact, or a leftover temp file)."""

    name: str  # store-relative name: "ab/cdef….parquet" or a temp file's name
    artifact_id: str | None  # None for temp and foreign files
    size_bytes: int
    modified_at: datetime  # UTC


@dataclass(frozen=True)
class ScanTarget:
    """What polars/pyarrow need to scan an artifact lazily where it lies."""

    path: str
    storage_options: dict[str, str] | None = None


@runtime_checkable
class ArtifactStore(Protocol):
    location: str  # where the store is: its root folder, or s3://bucket/prefix

    def artifact_uri(self, artifact_id: str) -> str:
        """The artifact's URI (file:///… or s3://…), whether or not it exists."""
        ...

    def publish(self, artifact_id: str, write: Callable[[Path], None]) -> StoredFile:
        """Write-once publish. ``write(path)`` writes the Parquet file at a local temp path
        (``Encoded``: the file's bytes, in memory); the store makes it durable and visible
        under the artifact id atomically. When the id already exists, the temp file is
        discarded and the existing file is returned (``created=False``). Raises
        ``StoreError`` when nothing could be published."""
        ...

    def publish_many(
        self, items: Sequence[tuple[str, Callable[[Path], None]]]
    ) -> list[StoredFile | BaseException]:
        """``publish`` of each ``(artifact_id, write)``, each outcome in its place: the
        ``StoredFile``, or the exception ``publish`` would have raised. A store may make
        them durable together (the local store's fsyncs run concurrently)."""
        ...

    def read_bytes(self, artifact_id: str) -> memoryview:
        """The artifact's bytes. Raises ``ArtifactNotFoundError`` when it is gone."""
        ...

    def local_path(self, artifact_id: str) -> Path | None:
        """A local file path for the artifact when the store is a directory, else None."""
        ...

    def scan_target(self, artifact_id: str) -> ScanTarget: ...

    def exists(self, artifact_id: str) -> bool: ...

    def size(self, artifact_id: str) -> int | None:
        """The stored file's size in bytes, None when absent."""
        ...

    def delete(self, artifact_id: str) -> bool:
        """Remove the artifact; True when something was removed."""
        ...

    def quarantine(self, artifact_id: str, reason: str) -> None:
        """Move a bad artifact aside (never served again, kept for inspection)."""
        ...

    def iter_artifacts(self) -> Iterator[StoredObject]: ...

    def iter_temp(self) -> Iterator[StoredObject]:
        """Leftover temp files from interrupted publishes."""
        ...

    def remove_object(self, obj: StoredObject) -> None: ...

    def check_capabilities(self) -> None:
        """Probe that write-once publishing is honoured; raise StoreCapabilityError if not."""
        ...
