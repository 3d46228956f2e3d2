"""``featurecache.why``: every component of one key of a feature, and what changed since the
nearest earlier key of the same feature (the library half of ``featurecache why``).

Three ways to pick the key explained:

* the feature's latest key (``why("name")``, ``why(feature)``, ``featurecache why NAME``);
* the latest key of one argument set (``featurecache why NAME --args '{"depth": 2}'``);
* the key of one exact call, cached or not (``why(feature, df, depth=2)``).

Each is compared with the nearest earlier key (``why_match.nearest``): the one sharing the
most input fingerprints, so a miss is explained by what changed for *that* call (the code,
a file) rather than by another call's arguments. The search covers the feature's latest
``SCAN_LIMIT`` keys (by last use).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, overload

from featurecache.errors import UnknownFeatureError
from featurecache.ops.why_match import SCAN_LIMIT, nearest, select_call, shared_inputs

if TYPE_CHECKING:
    from featurecache.catalog import Catalog
    from featurecache.catalog.records import EntryRecord
    from featurecache.engine import CacheEngine
    from featurecache.feature import Feature, FeatureCache
    from featurecache.ops.key_diff import ComponentRow, Explanation

P = ParamSpec("P")
Selection = Literal["latest", "args", "call"]


@dataclass(frozen=True)
class WhyReport:
    """One key of ``feature`` (``latest``), its components, and its comparison with the
    nearest earlier key (``compared``, None when there is none)."""

    feature: str
    # The key explained. For a call that is not cached this record is built from the key the
    # call would have, and its ``artifact_id`` is "" (``artifact_id`` below is then None).
    latest: EntryRecord
    components: list[ComponentRow]
    explanation: Explanation
    cached: bool = True
    compared: EntryRecord | None = None
    selected_by: Selection = "latest"
    args: Mapping[str, Any] | None = None  # the --args values when selected by them
    scanned: int = 0  # how many of the feature's recent keys were searched

    @property
    def artifact_id(self) -> str | None:
        return self.latest.artifact_id if self.cached else None

    @property
    def shared_inputs(self) -> int:
        """How many input fingerprints the explained key shares with the compared one."""
        if self.compared is None:
            return 0
        return shared_inputs(self.latest.components or {}, self.compared.components or {})

    @property
    def scan_truncated(self) -> bool:
        """True when older keys exist beyond the searched window (``SCAN_LIMIT``)."""
        return self.scanned >= SCAN_LIMIT

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "key_id": self.latest.key_id,
            "artifact_id": self.artifact_id,
            "code_digest": self.latest.code_digest,
            "components": [row.to_json() for row in self.components],
            "explanation": self.explanation.to_json(),
            "cached": self.cached,
            "selected_by": self.selected_by,
            "args": dict(self.args) if self.args is not None else None,
            "compared_key": self.compared.key_id if self.compared is not None else None,
            "shared_inputs": self.shared_inputs,
            "scanned_keys": self.scanned,
            "scan_limit": SCAN_LIMIT,
        }


def why_in_catalog(
    catalog: Catalog, feature: str, args: Mapping[str, Any] | None = None
) -> WhyReport:
    """Explain ``feature``'s latest key, or with ``args`` (argument name -> plain value) the
    latest key of the call with those values, against the nearest earlier key."""
    entries = catalog.recent_entries(feature, limit=SCAN_LIMIT)
    if not entries:
        raise UnknownFeatureError(feature)
    index = 0 if args is None else select_call(feature, entries, args)
    target = entries[index]
    return _report(
        feature,
        target,
        nearest(target.components or {}, entries[index + 1 :]),
        cached=True,
        selected_by="latest" if args is None else "args",
        args=args,
        scanned=len(entries),
    )


def why_call(
    engine: CacheEngine, feature: Feature[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> WhyReport:
    """Explain one exact call of ``feature``: its key, whether the catalog holds it, and what
    differs from the nearest earlier key of the feature. Nothing is computed: the inputs are
    fingerprinted and the code identity taken, as the call itself would."""
    from featurecache.catalog.records import EntryRecord

    key, _ = engine.key_for(feature, args, kwargs)
    hit = engine.catalog.lookup(key.key_id)
    entries = engine.catalog.recent_entries(feature.name, limit=SCAN_LIMIT)
    if hit is not None:
        target = hit.entry
        position = next((i for i, e in enumerate(entries) if e.key_id == target.key_id), None)
        # A key older than the searched window has no earlier key in it to compare with.
        earlier = entries[position + 1 :] if position is not None else []
    else:
        # Not in the catalog: described by the components the call's key was built from.
        target = EntryRecord(
            key_id=key.key_id,
            feature=feature.name,
            code_digest=key.code.digest,
            artifact_id="",
            return_kind="lazy" if feature.lazy else "polars",
            components=key.components,
        )
        earlier = entries
    return _report(
        feature.name,
        target,
        nearest(target.components or {}, earlier, exclude_key=target.key_id),
        cached=hit is not None,
        selected_by="call",
        args=None,
        scanned=len(entries),
    )


def _report(
    feature: str,
    target: EntryRecord,
    compared: EntryRecord | None,
    *,
    cached: bool,
    selected_by: Selection,
    args: Mapping[str, Any] | None,
    scanned: int,
) -> WhyReport:
    from featurecache.ops.key_diff import explain_change, explain_components

    return WhyReport(
        feature=feature,
        latest=target,
        components=explain_components(target),
        explanation=explain_change(compared, target),
        cached=cached,
        compared=compared,
        selected_by=selected_by,
        args=args,
        scanned=scanned,
    )


@overload
def why(feature: str | Feature[..., Any], /, *, cache: FeatureCache | None = None) -> WhyReport: ...


@overload
def why(feature: Feature[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> WhyReport: ...


def why(
    feature: str | Feature[..., Any],
    /,
    *args: Any,
    cache: Any = None,  # a FeatureCache, or a value of the function's own `cache` argument
    **kwargs: Any,
) -> WhyReport:
    """Explain a key of ``feature`` (a name or a decorated function).

    ``why("name")`` and ``why(feature)`` explain the feature's latest key;
    ``why(feature, *args, **kwargs)`` explains that exact call (``report.cached`` says whether
    the catalog holds it) against the nearest earlier key of the feature.
    """
    from featurecache.feature import Feature, default_cache

    if isinstance(feature, Feature):
        if cache is not None and "cache" in feature.signature.parameters:
            # The function has an argument called `cache`; a Feature knows its own cache.
            kwargs["cache"], cache = cache, None
        engine = (cache or feature.cache).engine
        engine.flush()
        if args or kwargs:
            return why_call(engine, feature, args, kwargs)
        return why_in_catalog(engine.catalog, feature.name)
    if args or kwargs:
        raise TypeError(
            f"why({feature!r}, …): arguments need the decorated function, not its name; "
            "pass the function itself: why(my_feature, df, depth=2)"
        )
    engine = (cache or default_cache()).engine
    engine.flush()
    return why_in_catalog(engine.catalog, feature)
