"""Partitioned features: a cached feature mapped over partitions (``Feature.map``) on a
pluggable executor, read back as one result (``PartitionedResult``)."""

from featurecache.partitions.result import PartitionedResult
from featurecache.partitions.sources import Partition, files, hive

__all__ = ["Partition", "PartitionedResult", "files", "hive"]
