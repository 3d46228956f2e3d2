"""Where the artifact reader reads an artifact's bytes from, verified like a hit's.

``artifact_source`` is the one place that decides: a local store's artifact is read from a
hold of its file (a hard link GC cannot delete under the reader, ``store.local.hold_file``),
checked once per process while unchanged (size and whole-file xxh3 against the catalog, then
the Parquet footer's rows and columns); a remote store's artifact is downloaded whole into
memory (its compressed bytes; decoding still streams) and checked the same way before a
single row is decoded, unless the local tier holds it (or can: it is downloaded there first),
in which case the tier's copy is read from a hold like a local store's file (a held copy is
never evicted under the reader).

While a local file is streamed, ``LocalSource.check_unchanged`` compares a fresh ``stat`` with
the one taken when the file was verified (any write changes ``ctime``, a replacement changes
the inode) and verifies the whole file again when it differs: the reader calls it after
decoding each batch and before handing it out, so bytes written into the file after it was
verified are never served.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurecache.errors import ArtifactCorruptError, ArtifactNotFoundError

if TYPE_CHECKING:
    from featurecache.catalog.records import ArtifactRecord
    from featurecache.engine import CacheEngine


@dataclass
class LocalSource:
    """A verified local file, and the ``stat`` identity it had when it was verified."""

    artifact: ArtifactRecord
    path: str
    identity: tuple[int, int, int, int, int]  # device, inode, size, mtime_ns, ctime_ns

    @property
    def artifact_id(self) -> str:
        return self.artifact.artifact_id

    def check_unchanged(self) -> None:
        """Raise unless the file still holds the verified bytes: a cheap ``stat`` while its
        identity is the one verified; after any change (a write, but also another process
        linking a hold of it, which changes ``ctime`` only) the whole file is verified again."""
        from featurecache.engine import _verified_local

        try:
            now = _identity(self.path)
            if now == self.identity:
                return
            _verified_local(self.artifact, Path(self.path))
        except FileNotFoundError:
            raise ArtifactNotFoundError(self.artifact_id, self.path) from None
        except ArtifactCorruptError as exc:
            raise ArtifactCorruptError(
                self.artifact_id, f"{self.path} changed while it was being read: {exc.reason}"
            ) from None
        self.identity = now

    def open_fragment(self) -> Any:
        import pyarrow.dataset as ds
        import pyarrow.fs as pafs

        return ds.ParquetFileFormat().make_fragment(self.path, filesystem=pafs.LocalFileSystem())

    def parquet_input(self) -> Any:
        """What ``pyarrow.parquet.ParquetFile`` opens."""
        return self.path


@dataclass(frozen=True)
class MemorySource:
    """A verified download held in memory (immutable: nothing can change it)."""

    artifact_id: str
    data: Any  # pyarrow.Buffer

    def check_unchanged(self) -> None:
        return None

    def open_fragment(self) -> Any:
        import pyarrow.dataset as ds

        return ds.ParquetFileFormat().make_fragment(self.data)

    def parquet_input(self) -> Any:
        import pyarrow as pa

        return pa.BufferReader(self.data)


Source = LocalSource | MemorySource


def _identity(path: str) -> tuple[int, int, int, int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def artifact_source(engine: CacheEngine, artifact: ArtifactRecord) -> Source:
    """The verified bytes of ``artifact``: ``ArtifactNotFoundError`` when the store lost the
    file, ``ArtifactCorruptError`` when it does not match the catalog, ``StoreError`` when the
    store cannot be read. A local store's file, or the local tier's copy of a remote one, is
    read from a hold; a remote artifact the tier cannot hold is downloaded into memory."""
    from featurecache.engine import _NOT_IN_TIER, verify_file, verify_footer

    store = engine.store
    if (path := store.local_path(artifact.artifact_id)) is not None:
        return _held_source(artifact, Path(path))
    if engine.tier is not None:
        found = engine.with_tier_copy(artifact, lambda copy: _held_source(artifact, copy))
        if found is not _NOT_IN_TIER:
            assert isinstance(found, LocalSource)
            return found
    import pyarrow as pa

    from featurecache.hashing import digest_bytes

    try:
        data = store.read_bytes(artifact.artifact_id)
    except ArtifactNotFoundError as exc:
        raise ArtifactNotFoundError(artifact.artifact_id, exc.where) from None
    verify_file(artifact, len(data), lambda: digest_bytes(data))
    verify_footer(artifact, data)
    return MemorySource(artifact.artifact_id, pa.py_buffer(data))


def _held_source(artifact: ArtifactRecord, path: Path) -> LocalSource:
    """A hold of ``path`` (a hard link GC and tier eviction leave alone), verified."""
    from featurecache.engine import _held_and_verified, _verified_local

    try:
        held = _held_and_verified(artifact, path)
        # Verified, then stat'ed: verify again after the stat so that the identity the reader
        # checks against is one whose content was verified (the per-process memo answers at
        # once while the file is unchanged).
        identity = _identity(str(held))
        _verified_local(artifact, held)
    except FileNotFoundError:
        raise ArtifactNotFoundError(artifact.artifact_id, str(path)) from None
    return LocalSource(artifact, str(held), identity)
