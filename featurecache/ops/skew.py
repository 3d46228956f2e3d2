"""The train/serve skew guard: compare the code identity of every feature a training run used
with the code this process would run now (the library half of ``featurecache check-serving``).

What the run used comes from a ``TrainedFeature`` list: read from the catalog here
(``trained_from_catalog``), or from the run's MLflow dataset inputs
(``integrations/mlflow/run_features.py``). Each feature is found among the features defined in
this process by the name the run recorded, its digest taken as a call would take it, and a
difference is explained component by component, with ``featurecache why``'s wording ("helper
`clean_ts` changed"). A feature the run used that this process does not define is ``missing``:
a check that skipped it would pass silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from featurecache.catalog.records import EntryRecord
from featurecache.errors import (
    RunRecordIncompleteError,
    ServingFeatureMissingError,
    TrainServeSkewError,
)
from featurecache.ops.key_diff import Change, explain_change

if TYPE_CHECKING:
    from featurecache.catalog import Catalog
    from featurecache.catalog.runs import RunArtifactUse
    from featurecache.feature import Feature

Status = Literal["same", "differs", "missing", "unknown"]
Source = Literal["catalog", "mlflow"]
EXIT_SAME, EXIT_DIFFERS, EXIT_CANNOT_CHECK = 0, 1, 2


@dataclass(frozen=True)
class TrainedFeature:
    """A feature as a run used it: the code digest its keys were built with, and the code
    identity's components where they were recorded (for a component-level explanation)."""

    feature: str
    code_digest: str
    code: Mapping[str, Any] | None
    source: Source
    artifact_ids: tuple[str, ...] = ()
    contexts: tuple[str, ...] = ()
    key_ids: tuple[str, ...] = ()
    # Catalog only: other code digests whose keys resolve to the same artifact (identical
    # output from two code versions); the run's record in MLflow names the one it used.
    alternatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class SkewRow:
    """One feature of the run: its trained and serving digests and what differs."""

    feature: str
    status: Status
    trained_digest: str | None
    serving_digest: str | None = None
    changes: tuple[Change, ...] = ()
    explanation: str = ""
    contexts: tuple[str, ...] = ()
    artifact_ids: tuple[str, ...] = ()
    source: str = ""
    defined_in: str | None = None  # module.qualname of the serving function

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "status": self.status,
            "trained_digest": self.trained_digest,
            "serving_digest": self.serving_digest,
            "explanation": self.explanation,
            "changes": [change.to_json() for change in self.changes],
            "contexts": list(self.contexts),
            "artifact_ids": list(self.artifact_ids),
            "source": self.source,
            "defined_in": self.defined_in,
        }


@dataclass(frozen=True)
class SkewReport:
    """Every feature a run used against the code served now. ``exit_code``: 0 when all are
    the same, 1 when any differs, 2 when one could not be checked (not defined here, or its
    artifact is no longer known)."""

    run_id: str
    source: str  # "catalog", "mlflow" or "catalog+mlflow"
    rows: tuple[SkewRow, ...] = field(default_factory=tuple)

    @property
    def differing(self) -> list[SkewRow]:
        return [row for row in self.rows if row.status == "differs"]

    @property
    def unchecked(self) -> list[SkewRow]:
        return [row for row in self.rows if row.status in ("missing", "unknown")]

    @property
    def ok(self) -> bool:
        return all(row.status == "same" for row in self.rows)

    @property
    def exit_code(self) -> int:
        if self.unchecked:
            return EXIT_CANNOT_CHECK
        return EXIT_DIFFERS if self.differing else EXIT_SAME

    def raise_for_skew(self) -> None:
        """Raise unless every feature is the same: ``ServingFeatureMissingError`` when one is
        not defined here, ``RunRecordIncompleteError`` when the catalog no longer knows an
        artifact's feature, ``TrainServeSkewError`` (naming each change) when one differs."""
        missing = [row.feature for row in self.rows if row.status == "missing"]
        if missing:
            raise ServingFeatureMissingError(self.run_id, missing)
        unknown = [row.artifact_ids[0] for row in self.rows if row.status == "unknown"]
        if unknown:
            raise RunRecordIncompleteError(self.run_id, unknown)
        if self.differing:
            raise TrainServeSkewError(
                self.run_id, [f"{row.feature}: {row.explanation}" for row in self.differing]
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "source": self.source,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "features": [row.to_json() for row in self.rows],
        }


# -- what the run used, from the catalog ----------------------------------------------


def trained_from_catalog(
    catalog: Catalog, run_id: str, serving_names: Iterable[str] = ()
) -> tuple[list[TrainedFeature], list[str]]:
    """The features ``run_id`` used, as the catalog recorded them, and the artifacts it used
    that the catalog can no longer attribute (collected by GC, entries gone). Both are empty
    when the catalog records no use by the run."""
    return trained_from_uses(catalog.artifacts_of_run(run_id), serving_names)


def trained_from_uses(
    uses: Sequence[RunArtifactUse], serving_names: Iterable[str] = ()
) -> tuple[list[TrainedFeature], list[str]]:
    """``trained_from_catalog`` on rows already read (pure).

    The catalog records which artifacts a run used, not which key: when several keys resolve
    to one artifact, the run used one that existed when it used the artifact; a feature this
    process defines is preferred (two features may produce identical content), then the newest
    code version. The others are kept as ``alternatives``.
    """
    defined = set(serving_names)
    picked: dict[tuple[str, str], TrainedFeature] = {}
    unknown: list[str] = []
    for use in uses:
        if not use.entries:
            if use.usage.artifact_id not in unknown:
                unknown.append(use.usage.artifact_id)
            continue
        at = use.usage.at
        existing = [e for e in use.entries if e.created_at is None or e.created_at <= at]
        candidates = existing or list(use.entries)  # newest first
        candidates.sort(key=lambda e: e.feature not in defined)  # stable: newest stays first
        chosen = candidates[0]
        others = sorted(
            {e.code_digest for e in candidates if e.feature == chosen.feature}
            - {chosen.code_digest}
        )
        _merge(picked, chosen, use.usage.context, others)
    return list(picked.values()), unknown


def _merge(
    picked: dict[tuple[str, str], TrainedFeature],
    entry: EntryRecord,
    context: str,
    alternatives: Sequence[str],
) -> None:
    key = (entry.feature, entry.code_digest)
    before = picked.get(key)
    if before is None:
        picked[key] = TrainedFeature(
            feature=entry.feature,
            code_digest=entry.code_digest,
            code=(entry.components or {}).get("code"),
            source="catalog",
            artifact_ids=(entry.artifact_id,),
            contexts=(context,),
            key_ids=(entry.key_id,),
            alternatives=tuple(alternatives),
        )
        return
    picked[key] = TrainedFeature(
        feature=before.feature,
        code_digest=before.code_digest,
        code=before.code,
        source=before.source,
        artifact_ids=_add(before.artifact_ids, entry.artifact_id),
        contexts=_add(before.contexts, context),
        key_ids=_add(before.key_ids, entry.key_id),
        alternatives=tuple(sorted({*before.alternatives, *alternatives})),
    )


def _add(items: tuple[str, ...], item: str) -> tuple[str, ...]:
    return items if item in items else (*items, item)


# -- against the code served now --------------------------------------------------------


def serving_features(
    names: Iterable[str], given: Sequence[Feature[..., Any]] = ()
) -> dict[str, Feature[..., Any] | None]:
    """Each name's feature in this process: among ``given`` first, else the newest defined
    (decorated) feature of that name; None when this process defines none."""
    from featurecache.feature import defined_features

    found: dict[str, Feature[..., Any] | None] = {}
    for name in names:
        explicit = [feature for feature in given if feature.name == name]
        candidates = explicit or defined_features(name)
        found[name] = candidates[-1] if candidates else None
    return found


def compare(
    run_id: str,
    trained: Sequence[TrainedFeature],
    serving: Mapping[str, Feature[..., Any] | None],
    *,
    source: str,
    unknown_artifacts: Sequence[str] = (),
) -> SkewReport:
    """The report: one row per trained (feature, code digest), then one per artifact whose
    feature is unknown."""
    rows = [_row(item, serving.get(item.feature)) for item in trained]
    rows.sort(key=lambda row: (row.feature, row.trained_digest or ""))
    rows.extend(
        SkewRow(
            feature="?",
            status="unknown",
            trained_digest=None,
            explanation=(
                f"artifact {artifact_id[:12]} was collected from the catalog, which no longer "
                "knows its feature; read the run's record from MLflow (--source mlflow)"
            ),
            artifact_ids=(artifact_id,),
            source="catalog",
        )
        for artifact_id in unknown_artifacts
    )
    return SkewReport(run_id, source, tuple(rows))


def _row(item: TrainedFeature, feature: Feature[..., Any] | None) -> SkewRow:
    from dataclasses import replace

    base = SkewRow(
        feature=item.feature,
        status="missing",
        trained_digest=item.code_digest,
        explanation="not defined in this process: import the module that defines it",
        contexts=item.contexts,
        artifact_ids=item.artifact_ids,
        source=item.source,
    )
    if feature is None:
        return base
    identity = feature.code_identity(feature.cache.settings.track_library_versions)
    serving = replace(
        base,
        serving_digest=identity.digest,
        defined_in=f"{feature.func.__module__}.{feature.func.__qualname__}",
    )
    note = ""
    if item.alternatives:
        note = (
            f" (assumed: the catalog also maps this artifact to {len(item.alternatives)} other "
            "code version(s); MLflow's record of the run names the one it used)"
        )
    if identity.digest == item.code_digest:
        return replace(serving, status="same", explanation=note.strip())
    changes = _code_changes(item, identity.digest, identity.components)
    if changes:
        explanation = "; ".join(change.message for change in changes)
    else:
        explanation = (
            f"code identity differs ({item.code_digest[:8]} → {identity.digest[:8]}); the run's "
            "record holds no code components to name the change (log "
            "featurecache.serving_manifest(...) with the model)"
        )
    return replace(
        serving, status="differs", changes=tuple(changes), explanation=explanation + note
    )


def _code_changes(
    item: TrainedFeature, serving_digest: str, serving_code: Mapping[str, Any]
) -> list[Change]:
    """``why``'s code changes between the trained and the serving code identity (the inputs
    are not compared: serving calls have their own)."""
    if item.code is None:
        return []
    trained = EntryRecord(
        key_id="trained",
        feature=item.feature,
        code_digest=item.code_digest,
        artifact_id="",
        return_kind="polars",
        components={"code": dict(item.code)},
    )
    serving = EntryRecord(
        key_id="serving",
        feature=item.feature,
        code_digest=serving_digest,
        artifact_id="",
        return_kind="polars",
        components={"code": dict(serving_code)},
    )
    return list(explain_change(trained, serving).changes)


# -- the serving manifest: code identities logged with a model -------------------------

MANIFEST_PATH = "featurecache/serving_manifest.json"
MANIFEST_FORMAT = 1


def serving_manifest(features: Iterable[Feature[..., Any]]) -> dict[str, Any]:
    """Each feature's code digest and code identity components, as a call in this process
    would key it: log it with the model (``mlflow.log_dict(manifest, MANIFEST_PATH)``) so that
    a serving host with MLflow but no shared catalog can name what changed."""
    out: dict[str, Any] = {}
    for feature in features:
        identity = feature.code_identity(feature.cache.settings.track_library_versions)
        out[feature.name] = {"code_digest": identity.digest, "code": identity.components}
    return {"format": MANIFEST_FORMAT, "features": out}


def manifest_code(
    manifest: Mapping[str, Any] | None, feature: str, digest: str
) -> Mapping[str, Any] | None:
    """The code components the manifest records for ``feature`` if it recorded ``digest``
    (a manifest logged with other code explains nothing about this digest)."""
    if not manifest or manifest.get("format") != MANIFEST_FORMAT:
        return None
    record = (manifest.get("features") or {}).get(feature)
    if not isinstance(record, Mapping) or record.get("code_digest") != digest:
        return None
    code = record.get("code")
    return code if isinstance(code, Mapping) else None
