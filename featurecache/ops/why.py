"""``featurecache.why``: every component of a feature's latest key, and what changed since
the previous key of the same feature (the library half of ``featurecache why``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from featurecache.errors import UnknownFeatureError

if TYPE_CHECKING:
    from featurecache.catalog import Catalog
    from featurecache.catalog.records import EntryRecord
    from featurecache.feature import Feature, FeatureCache
    from featurecache.ops.key_diff import ComponentRow, Explanation


@dataclass(frozen=True)
class WhyReport:
    feature: str
    latest: EntryRecord
    components: list[ComponentRow]
    explanation: Explanation

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "key_id": self.latest.key_id,
            "artifact_id": self.latest.artifact_id,
            "code_digest": self.latest.code_digest,
            "components": [row.to_json() for row in self.components],
            "explanation": self.explanation.to_json(),
        }


def why_in_catalog(catalog: Catalog, feature: str) -> WhyReport:
    from featurecache.ops.key_diff import explain_change, explain_components

    entries = catalog.recent_entries(feature, limit=2)
    if not entries:
        raise UnknownFeatureError(feature)
    latest = entries[0]
    previous = entries[1] if len(entries) > 1 else None
    return WhyReport(
        feature=feature,
        latest=latest,
        components=explain_components(latest),
        explanation=explain_change(previous, latest),
    )


def why(feature: str | Feature[..., Any], *, cache: FeatureCache | None = None) -> WhyReport:
    """Explain the latest key of ``feature`` (a name or a decorated function)."""
    from featurecache.feature import Feature, default_cache

    if isinstance(feature, Feature):
        name = feature.name
        cache = cache or feature.cache
    else:
        name = feature
    engine = (cache or default_cache()).engine
    engine.flush()
    return why_in_catalog(engine.catalog, name)
