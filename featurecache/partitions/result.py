"""``PartitionedResult``: what ``Feature.map`` returns. It names the partitions' artifacts and
reads them where they lie, without loading everything: a polars ``LazyFrame`` scanning every
part (filters and column selections pushed down to the files' row groups), a Dask DataFrame
or a Ray Dataset over the same Parquet files (local or S3).

``lazy()`` reads local parts through holds (``store.local.hold_file``): hard links in this
process's holds folder, so a ``featurecache gc`` that deletes an artifact before the scan is
collected does not take the file from under it. ``to_dask()`` and ``to_ray()`` read the
artifacts' own files (their workers are other processes, possibly on other hosts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featurecache.errors import MissingDependencyError
from featurecache.store.base import ScanTarget


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

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def parts(self) -> Mapping[str, str]:
        """Partition label -> artifact id."""
        return dict(zip(self.labels, self.artifact_ids, strict=True))

    def _paths(self, *, hold: bool) -> list[str]:
        """The parts' files; local ones through holds when ``hold`` (this process reads
        them). Dask and Ray read the artifacts' own paths: their workers are other processes,
        and Ray's listing skips hidden folders such as the holds'."""
        from featurecache.store.local import hold_file

        out = []
        for target, artifact_id in zip(self.targets, self.artifact_ids, strict=True):
            local = target.storage_options is None and not target.path.startswith("s3://")
            out.append(
                str(hold_file(Path(target.path), artifact_id)) if local and hold else target.path
            )
        return out

    def _storage_options(self) -> dict[str, str] | None:
        return next((t.storage_options for t in self.targets if t.storage_options), None)

    def lazy(self) -> Any:
        """A polars ``LazyFrame`` over every partition (in partition order)."""
        import polars as pl

        return pl.scan_parquet(self._paths(hold=True), storage_options=self._storage_options())

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
        paths = self._paths(hold=False)
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
