"""One partition's task, as it runs on a worker (a thread, a process, a Dask or Ray worker).

The task is an ordinary cached call of the feature, resolved by the worker's own cache (the
one the feature's module binds it to: the environment's, or an explicit ``FeatureCache``), so
it has its own key, lease and artifact. It hands back a small record naming the artifact,
never the frame: frames stay in the store, and nothing cached is pickled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from featurecache.catalog.records import ReturnKind
from featurecache.engine import FeatureSpec
from featurecache.errors import ConfigError

if TYPE_CHECKING:
    from featurecache.engine import CacheEngine
    from featurecache.settings import Settings


class CacheSpec(Protocol):
    """What a task needs of a ``FeatureCache``."""

    @property
    def settings(self) -> Settings: ...
    @property
    def engine(self) -> CacheEngine: ...


class MappedFeature(FeatureSpec, Protocol):
    """What mapping needs of a decorated function (``feature.Feature`` provides it; a
    protocol, so that this package does not import ``feature``, which imports it)."""

    @property
    def cache(self) -> CacheSpec: ...


@dataclass(frozen=True)
class PartDone:
    """What a worker reports for one partition."""

    label: str
    key_id: str
    artifact_id: str
    kind: ReturnKind
    hit: bool


def resolve_partition(feature: MappedFeature, label: str, kwargs: Mapping[str, Any]) -> PartDone:
    """Resolve ``feature(**kwargs)`` to its stored artifact (a hit, or computed and stored)."""
    cache = feature.cache
    if cache.settings.disable:
        raise ConfigError(
            "FEATURECACHE_DISABLE",
            f"caching is disabled, so {feature.name!r} cannot be mapped over partitions "
            "(a partitioned result is made of stored artifacts)",
            "Unset FEATURECACHE_DISABLE, or call the undecorated function (feature.func)",
        )
    key_id, artifact_id, kind, hit = cache.engine.stored_artifact(feature, (), dict(kwargs))
    return PartDone(label, key_id, artifact_id, kind, hit)
