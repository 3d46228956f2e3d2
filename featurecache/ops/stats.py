"""``featurecache stats``: what the cache did and holds, per feature and in total.

The headline is ``seconds_avoided``: for every hit, the compute time its artifact cost when it
was produced, i.e. the preprocessing a team did not pay again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from featurecache.catalog import Catalog


@dataclass(frozen=True)
class FeatureStats:
    """Calls and storage of one feature (``feature`` None: the whole cache)."""

    feature: str | None
    hits: int
    misses: int
    artifacts: int
    bytes_stored: int
    compute_seconds_stored: float  # what producing the stored artifacts cost
    seconds_avoided: float  # stored compute time of every hit
    compute_seconds_spent: float  # time spent computing on misses

    @property
    def calls(self) -> int:
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float | None:
        return self.hits / self.calls if self.calls else None

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hit_rate,
            "artifacts": self.artifacts,
            "bytes_stored": self.bytes_stored,
            "compute_seconds_stored": self.compute_seconds_stored,
            "seconds_avoided": self.seconds_avoided,
            "compute_seconds_spent": self.compute_seconds_spent,
        }


@dataclass(frozen=True)
class CacheStats:
    features: tuple[FeatureStats, ...]  # by name
    total: FeatureStats

    def to_json(self) -> dict[str, Any]:
        return {
            "features": [stats.to_json() for stats in self.features],
            "total": self.total.to_json(),
        }


def cache_stats(catalog: Catalog) -> CacheStats:
    names, usage, stored, stored_total = catalog.usage_stats()
    usage_of = {totals.feature: totals for totals in usage}
    stored_of = {totals.feature: totals for totals in stored}
    features = []
    for name in names:
        calls = usage_of.get(name)
        held = stored_of.get(name)
        features.append(
            FeatureStats(
                feature=name,
                hits=calls.hits if calls else 0,
                misses=calls.misses if calls else 0,
                artifacts=held.artifacts if held else 0,
                bytes_stored=held.size_bytes if held else 0,
                compute_seconds_stored=held.compute_seconds if held else 0.0,
                seconds_avoided=calls.seconds_avoided if calls else 0.0,
                compute_seconds_spent=calls.compute_seconds if calls else 0.0,
            )
        )
    total = FeatureStats(
        feature=None,
        hits=sum(totals.hits for totals in usage),
        misses=sum(totals.misses for totals in usage),
        # Counted once each: identical outputs of two features share one artifact.
        artifacts=stored_total.artifacts,
        bytes_stored=stored_total.size_bytes,
        compute_seconds_stored=stored_total.compute_seconds,
        seconds_avoided=sum(totals.seconds_avoided for totals in usage),
        compute_seconds_spent=sum(totals.compute_seconds for totals in usage),
    )
    return CacheStats(tuple(features), total)
