"""``Feature.map``: a cached feature called once per partition on an executor, the parts
recorded as one partitioned result.

Each partition is an ordinary cached call (its own key, lease and artifact), so a rerun hits
per partition, a new partition computes alone and a code change recomputes every partition,
in parallel on the executor. The arguments are checked against the function's signature
before any task starts, so a typo fails here, not on thirty workers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from featurecache.errors import ConfigError
from featurecache.partitions import executors
from featurecache.partitions.record import record_partitioned
from featurecache.partitions.result import PartitionedResult
from featurecache.partitions.sources import Partition, as_partitions

if TYPE_CHECKING:
    from featurecache.partitions.task import MappedFeature


def map_feature(
    feature: MappedFeature,
    partitions: object,
    *,
    executor: object = None,
    retries: int = 3,
    common: Mapping[str, Any],
) -> PartitionedResult:
    """``feature`` resolved for every partition (``sources.as_partitions``), with the
    ``common`` keyword arguments added to each; see ``Feature.map``."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError("retries", f"{retries!r} is not a count", "Give an int >= 0.")
    parts = [_with_common(feature, p, common) for p in as_partitions(partitions)]
    engine = feature.cache.engine
    done = executors.run(feature, parts, executor, retries=retries)
    hit, records = record_partitioned(engine, feature, done)
    return PartitionedResult(
        feature=feature.name,
        labels=tuple(item.label for item in done),
        key_ids=tuple(item.key_id for item in done),
        artifact_ids=tuple(item.artifact_id for item in done),
        targets=tuple(engine.store.scan_target(r.artifact_id) for r in records),
        ref=hit.artifact.artifact_id,
        hits=sum(item.hit for item in done),
        misses=sum(not item.hit for item in done),
        records=tuple(records),
        engine=engine,
    )


def _with_common(
    feature: MappedFeature, partition: Partition, common: Mapping[str, Any]
) -> Partition:
    both = sorted(set(partition.kwargs) & set(common))
    if both:
        raise ConfigError(
            both[0],
            f"given both by partition {partition.label} and as a common argument",
            "Give each argument once",
        )
    kwargs = {**common, **partition.kwargs}
    try:
        feature.signature.bind(**kwargs)
    except TypeError as exc:
        raise ConfigError(
            "partitions",
            f"partition {partition.label} cannot call {feature.name}: {exc}",
            f"Match the function's parameters {list(feature.signature.parameters)}",
        ) from None
    return Partition(partition.label, kwargs)
