"""``PartitionedResult``: what ``Feature.map`` returns. It names the partitions' artifacts and
reads them where they lie, without loading everything: a polars ``LazyFrame`` scanning every
part (filters and column selections pushed down to the files' row groups), a Dask DataFrame
or a Ray Dataset over the same Parquet files (local or S3).

``lazy()`` reads only bytes this process verified, as a lazy hit does
(``stream.source.artifact_source``): each part's size, whole-file xxh3 and footer are checked
against the catalog (once per process while the file is unchanged), then its file is scanned
through a hold (``store.local.hold_file``: a hard link in this process's holds folder, so a
``featurecache gc`` or a tier eviction before the scan is collected does not take the file from
under it); a remote part is read from the local tier's copy, or downloaded and scanned from
memory. ``to_dask()`` and ``to_ray()`` read the artifacts' own files (their workers are other
processes, possibly on other hosts), which this process does not verify.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from featurecache.errors import MissingDependencyError
from featurecache.store.base import ScanTarget

if TYPE_CHECKING:
    from featurecache.catalog.records import ArtifactRecord
    from featurecache.engine import CacheEngine


@dataclass(frozen=True)
class PartitionedResult:
    """A feature mapped over partitions: one cached artifact per partition, recorded in the
    catalog as one composite (``ref``, the artifact id ``featurecache show`` takes)."""

    feature: str
    labels: tuple[str, ...]
    key_ids: tuple[str, ...]
    artifact_ids: tuple[str, ...]
    targets: tuple[ScanTarget, ...]
    ref: str
    hits: int
    misses: int
    # The parts' catalog records and the engine that reads them (``lazy()`` verifies).
    records: tuple[ArtifactRecord, ...] = field(default=(), compare=False, repr=False)
    engine: CacheEngine | None = field(default=None, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def parts(self) -> Mapping[str, str]:
        """Partition label -> artifact id."""
        return dict(zip(self.labels, self.artifact_ids, strict=True))

    def _paths(self) -> list[str]:
        """The parts' own files, for Dask and Ray: their workers are other processes, and
        Ray's listing skips hidden folders such as the holds'."""
        return [target.path for target in self.targets]

    def _storage_options(self) -> dict[str, str] | None:
        return next((t.storage_options for t in self.targets if t.storage_options), None)

    def lazy(self) -> Any:
        """A polars ``LazyFrame`` over every partition (in partition order), each part
        verified against the catalog before it is scanned: ``ArtifactCorruptError`` or
        ``ArtifactNotFoundError`` when a part's bytes are not what was recorded."""
        import polars as pl

        from featurecache.parquet import scan_artifact_bytes
        from featurecache.stream.source import LocalSource, artifact_source

        if self.engine is None or len(self.records) != len(self.artifact_ids):
            raise TypeError("a PartitionedResult not made by Feature.map cannot be read")
        scans = []
        for record in self.records:
            source = artifact_source(self.engine, record)
            if isinstance(source, LocalSource):
                scans.append(pl.scan_parquet(source.path, hive_partitioning=False))
            else:
                scans.append(scan_artifact_bytes(memoryview(source.data)))
        return pl.concat(scans, how="vertical")

    def to_dask(self) -> Any:
        """A Dask DataFrame reading the parts directly (one Dask partition per file or row
        group); needs ``featurecache[dask]``."""
        try:
            import dask.dataframe as dd
        except ImportError:
            raise MissingDependencyError("dask", "dask", "PartitionedResult.to_dask()") from None
        filesystem, paths = self._arrow_paths()
        if filesystem is None:
            return dd.read_parquet(paths)
        return dd.read_parquet(paths, filesystem=filesystem)

    def to_ray(self) -> Any:
        """A Ray Dataset reading the parts directly; needs ``featurecache[ray]``."""
        try:
            import ray.data
        except ImportError:
            raise MissingDependencyError("ray", "ray", "PartitionedResult.to_ray()") from None
        filesystem, paths = self._arrow_paths()
        return ray.data.read_parquet(paths, filesystem=filesystem)

    def _arrow_paths(self) -> tuple[Any, list[str]]:
        """The parts as pyarrow sees them: local paths (no filesystem), or an S3 filesystem
        built from the store's options and ``bucket/key`` paths."""
        options = self._storage_options()
        paths = self._paths()
        if options is None and not any(p.startswith("s3://") for p in paths):
            return None, paths
        return s3_filesystem(options or {}), [p.removeprefix("s3://") for p in paths]


def s3_filesystem(options: Mapping[str, str]) -> Any:
    """A ``pyarrow.fs.S3FileSystem`` from polars/object_store storage options."""
    from pyarrow import fs

    endpoint = options.get("aws_endpoint_url")
    kwargs: dict[str, Any] = {
        "access_key": options.get("aws_access_key_id"),
        "secret_key": options.get("aws_secret_access_key"),
        "session_token": options.get("aws_session_token"),
        "region": options.get("aws_region"),
    }
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        kwargs["endpoint_override"] = host or scheme
        if host:
            kwargs["scheme"] = scheme
    return fs.S3FileSystem(**{k: v for k, v in kwargs.items() if v is not None})
