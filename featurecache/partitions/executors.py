"""Running partition tasks: in this process, on a ``concurrent.futures`` executor, on a Dask
cluster (``distributed.Client``) or on Ray.

Every engine gets the same task (``task.resolve_partition``) and hands back ``PartDone``
records. A task whose worker dies is retried by the engine (Dask reschedules it on another
worker and honours ``retries=``; Ray's ``max_retries=``); the retry is an ordinary cached
call, which takes over the dead worker's lease (same host) or waits it out (another host).
Dask and Ray are imported only when their executor is used.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from featurecache.errors import ConfigError, MissingDependencyError
from featurecache.partitions.sources import Partition
from featurecache.partitions.task import PartDone, resolve_partition

if TYPE_CHECKING:
    from featurecache.partitions.task import MappedFeature

EXECUTORS = (
    'None (in this process, one after the other), "threads", "processes", a '
    'concurrent.futures.Executor, a distributed.Client, or "ray"'
)


def run(
    feature: MappedFeature,
    partitions: Sequence[Partition],
    executor: object,
    *,
    retries: int,
) -> list[PartDone]:
    """Each partition resolved on ``executor``; results in the order of ``partitions``."""
    if executor is None:
        return [resolve_partition(feature, p.label, p.kwargs) for p in partitions]
    if executor == "threads" or executor == "processes":
        workers = max(1, min(len(partitions), os.cpu_count() or 1))
        pool: cf.Executor = (
            cf.ThreadPoolExecutor(workers)
            if executor == "threads"
            else cf.ProcessPoolExecutor(workers)
        )
        with pool:
            return _on_futures(pool, feature, partitions)
    if isinstance(executor, cf.Executor):
        return _on_futures(executor, feature, partitions)
    if _is_dask_client(executor):
        return _on_dask(executor, feature, partitions, retries)
    if executor == "ray" or getattr(executor, "__name__", None) == "ray":
        return _on_ray(feature, partitions, retries)
    raise ConfigError("executor", f"{executor!r} is not an executor", f"Give {EXECUTORS}")


def _on_futures(
    pool: cf.Executor, feature: MappedFeature, partitions: Sequence[Partition]
) -> list[PartDone]:
    futures = [pool.submit(resolve_partition, feature, p.label, dict(p.kwargs)) for p in partitions]
    return [future.result() for future in futures]


def _is_dask_client(executor: object) -> bool:
    cls = type(executor)
    return cls.__module__.split(".")[0] == "distributed" and cls.__name__ == "Client"


def _on_dask(
    client: Any, feature: MappedFeature, partitions: Sequence[Partition], retries: int
) -> list[PartDone]:
    futures = [
        client.submit(
            resolve_partition,
            feature,
            p.label,
            dict(p.kwargs),
            key=f"featurecache-{feature.name}-{p.label}-{os.urandom(4).hex()}",
            retries=retries,
            pure=False,
        )
        for p in partitions
    ]
    done: list[PartDone] = client.gather(futures)
    return done


def _on_ray(
    feature: MappedFeature, partitions: Sequence[Partition], retries: int
) -> list[PartDone]:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "ray", "the Ray executor") from None
    # Worker deaths are retried (max_retries); an exception the feature raises is not.
    task = ray.remote(max_retries=retries)(resolve_partition)
    refs = [task.remote(feature, p.label, dict(p.kwargs)) for p in partitions]
    done: list[PartDone] = ray.get(refs)
    return done
