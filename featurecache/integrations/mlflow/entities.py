"""MLflow dataset entities for featurecache artifacts and their sources.

Built from ``mlflow.entities`` (and a tiny ``mlflow.data`` Dataset for users) so that
mlflow-skinny is enough: ``MetaDataset`` needs ``mlflow.types``, which needs numpy. The digest
is always our content hash, never MLflow's (its pandas digest reads only the first 10,000 rows,
its polars digest ignores row order). Imported lazily: importing this module imports mlflow.

A composite result (a train/test split tuple, a dict of frames...) is ONE dataset, as it is one
result of one call: digest = the composite's id, source = its ``composite:<id>`` URI (type
``featurecache``), no schema (each part has its own), and a profile with its structure in one
line and its parts (digest, rows, columns) in order. One dataset per part would make a
training run list four datasets for one call, named after nothing the user wrote.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from mlflow.data.dataset import Dataset
from mlflow.data.dataset_source import DatasetSource
from mlflow.entities import Dataset as DatasetEntity
from mlflow.entities import DatasetInput, InputTag
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from featurecache.hashing import HASH_ALGO

if TYPE_CHECKING:
    from featurecache.hooks import ResolvedFeature, Upstream

MAX_DIGEST = 36  # MLflow's MAX_DATASET_DIGEST_SIZE and its SQL column size
MAX_NAME = 500
COMPOSITE_SOURCE = "featurecache"
# Parts named in a composite's profile; the rest are counted (a list of 10 000 arrays is one
# composite too, and a profile is meant for the UI).
MAX_PROFILE_PARTS = 64


class Producer(NamedTuple):
    """The feature run that materialised an artifact, and its page in the MLflow UI."""

    run_id: str
    url: str | None = None  # None where the tracking URI is not an HTTP server


def run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str | None:
    """The UI's page of a run (``<tracking_uri>/#/experiments/<exp>/runs/<run>``), for HTTP
    tracking servers; None for a database or folder URI, which has no UI of its own."""
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def _link(profile: dict[str, Any], producer: Producer | None) -> None:
    if producer is not None:
        profile["producer_run"] = producer.run_id
        if producer.url:
            profile["producer_run_url"] = producer.url


def dataset_digest(fingerprint: str) -> str:
    """An MLflow digest for a fingerprint: the hex without its algorithm prefix, ≤ 36 chars."""
    return fingerprint.rsplit(":", 1)[-1][:MAX_DIGEST]


def feature_dataset_name(feature: str) -> str:
    return f"feature.{feature}"[:MAX_NAME]


def source_of(uri: str | None) -> tuple[str, str]:
    """(source type, source JSON) written the way mlflow's own dataset sources write them, so
    the UI shows "Source type: S3/Local" and the path."""
    if not uri:
        return "local", json.dumps({"uri": ""})
    if uri.startswith("composite:"):  # a composite result: no file of its own
        return COMPOSITE_SOURCE, json.dumps({"uri": uri})
    scheme, sep, _ = uri.partition("://")
    scheme = scheme.lower() if sep else ""
    if scheme in ("http", "https"):
        return "http", json.dumps({"url": uri})
    if scheme in ("", "file"):
        local = uri if scheme else Path(uri).absolute().as_uri()
        return "local", json.dumps({"uri": local})
    return scheme, json.dumps({"uri": uri})


def schema_json(schema: Sequence[Mapping[str, Any]]) -> str:
    """Our column list as MLflow's colspec JSON, which the UI renders as a table."""
    colspec = [
        {
            "name": str(col.get("name")),
            "type": str(col.get("type")),
            "required": not bool(col.get("nullable", True)),
        }
        for col in schema
    ]
    return json.dumps({"mlflow_colspec": colspec})


def artifact_profile(
    *,
    feature: str,
    rows: int,
    columns: int,
    code_digest: str | None,
    key_id: str | None,
    producer: Producer | None = None,
) -> str:
    profile: dict[str, Any] = {
        "num_rows": rows,
        "num_columns": columns,
        "feature": feature,
        "hash_algo": HASH_ALGO,
    }
    if code_digest:
        profile["code_hash"] = code_digest
    if key_id:
        profile["cache_key"] = key_id
    _link(profile, producer)
    return json.dumps(profile)


def composite_profile(
    *,
    feature: str,
    structure: Mapping[str, Any],
    part_ids: Sequence[str],
    code_digest: str | None,
    key_id: str | None,
    producer: Producer | None = None,
) -> str:
    """A composite's profile: its structure in one line, its parts' digests in order."""
    from featurecache.results.codec import describe

    profile: dict[str, Any] = {
        "composite": True,
        "num_parts": len(part_ids),
        "feature": feature,
        "hash_algo": HASH_ALGO,
    }
    # A structure written by another featurecache version: the parts still say what it holds.
    with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
        profile["structure"] = describe(dict(structure["codec"]))
    profile["parts"] = [dataset_digest(part_id) for part_id in part_ids[:MAX_PROFILE_PARTS]]
    if code_digest:
        profile["code_hash"] = code_digest
    if key_id:
        profile["cache_key"] = key_id
    _link(profile, producer)
    return json.dumps(profile)


def artifact_entity(event: ResolvedFeature, producer: Producer | None = None) -> DatasetEntity:
    """The dataset of a cached artifact: ``feature.<name>``, digest = artifact id."""
    source_type, source = source_of(event.artifact_uri)
    if event.structure is not None:
        return DatasetEntity(
            name=feature_dataset_name(event.feature),
            digest=dataset_digest(event.artifact_id),
            source_type=source_type,
            source=source,
            profile=composite_profile(
                feature=event.feature,
                structure=event.structure,
                part_ids=event.part_ids,
                code_digest=event.code_digest,
                key_id=event.key_id,
                producer=producer,
            ),
        )
    return DatasetEntity(
        name=feature_dataset_name(event.feature),
        digest=dataset_digest(event.artifact_id),
        source_type=source_type,
        source=source,
        schema=schema_json(event.schema),
        profile=artifact_profile(
            feature=event.feature,
            rows=event.rows,
            columns=event.columns,
            code_digest=event.code_digest,
            key_id=event.key_id,
            producer=producer,
        ),
    )


def upstream_entity(up: Upstream, feature: str | None, producer: Producer | None) -> DatasetEntity:
    """An input of a materialisation. An upstream artifact keeps the name its consumers see
    (``feature.<name>``) when this process knows it, so the UI's Datasets filter joins them."""
    source_type, source = source_of(up.source_uri)
    if up.is_artifact:
        name = feature_dataset_name(feature) if feature else f"input.{up.argument}"
    else:
        base = up.source_uri.rstrip("/").rsplit("/", 1)[-1] if up.source_uri else ""
        name = base or up.argument
    profile: dict[str, Any] = {
        "argument": up.argument,
        "kind": "artifact" if up.is_artifact else "source",
        "fingerprint": up.digest,  # in full: the digest may have been trimmed to 36 chars
    }
    _link(profile, producer)
    return DatasetEntity(
        name=name[:MAX_NAME],
        digest=dataset_digest(up.digest),
        source_type=source_type,
        source=source,
        profile=json.dumps(profile),
    )


def dataset_input(entity: DatasetEntity, context: str) -> DatasetInput:
    return DatasetInput(dataset=entity, tags=[InputTag(key=MLFLOW_DATASET_CONTEXT, value=context)])


# -- a user-facing mlflow.data Dataset ------------------------------------------------------


class _UriSource(DatasetSource):
    """A source that only points at a URI (our artifacts are read by featurecache, not MLflow)."""

    def __init__(self, source_type: str, source_json: str) -> None:
        self._type = source_type
        self._json = source_json

    def _get_source_type(self) -> str:  # type: ignore[override]
        return self._type

    def load(self) -> Any:
        raise NotImplementedError("load featurecache artifacts with featurecache, not MLflow")

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> _UriSource:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self._json)
        return result

    def to_json(self) -> str:
        return self._json

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> _UriSource:
        return cls("local", json.dumps(source_dict))


class FeatureDataset(Dataset):
    """A cached artifact as an ``mlflow.data`` Dataset: for ``mlflow.log_input(ds)`` and
    ``mlflow.log_metric(name, value, dataset=ds, model_id=…)``."""

    def __init__(self, entity: DatasetEntity) -> None:
        self._entity = entity
        super().__init__(
            source=_UriSource(entity.source_type, entity.source),
            name=entity.name,
            digest=entity.digest,
        )

    def _compute_digest(self) -> str:
        return str(self._entity.digest)

    @property
    def profile(self) -> Any | None:
        return None if self._entity.profile is None else json.loads(self._entity.profile)

    @property
    def schema(self) -> Any | None:
        return None if self._entity.schema is None else json.loads(self._entity.schema)

    def to_dict(self) -> dict[str, str]:
        result = super().to_dict()
        if self._entity.schema is not None:
            result["schema"] = self._entity.schema
        if self._entity.profile is not None:
            result["profile"] = self._entity.profile
        return result


def feature_dataset(artifact: Any, feature: str | None = None) -> FeatureDataset:
    """See ``mlflow_lineage.mlflow_dataset``: accepts a ``Hit``, a ``ResolvedFeature`` or an
    ``ArtifactRecord`` (then ``feature=`` names it)."""
    entry = getattr(artifact, "entry", None)
    record = getattr(artifact, "artifact", artifact)  # a Hit holds .entry and .artifact
    name = feature or getattr(entry, "feature", None) or getattr(artifact, "feature", None)
    if not name:
        raise ValueError("mlflow_dataset() needs the feature name: pass feature='…'")
    uri = getattr(record, "uri", None) or getattr(record, "artifact_uri", None)
    source_type, source = source_of(uri)
    structure = getattr(record, "structure", None)
    if structure is not None:  # a composite result: one dataset, its parts in the profile
        parts: Sequence[Any] = (
            getattr(artifact, "parts", None) or getattr(artifact, "part_ids", None) or ()
        )
        entity = DatasetEntity(
            name=feature_dataset_name(name),
            digest=dataset_digest(record.artifact_id),
            source_type=source_type,
            source=source,
            profile=composite_profile(
                feature=name,
                structure=structure,
                part_ids=[getattr(part, "artifact_id", part) for part in parts],
                code_digest=getattr(entry, "code_digest", None)
                or getattr(artifact, "code_digest", None),
                key_id=getattr(entry, "key_id", None) or getattr(artifact, "key_id", None),
            ),
        )
        return FeatureDataset(entity)
    entity = DatasetEntity(
        name=feature_dataset_name(name),
        digest=dataset_digest(record.artifact_id),
        source_type=source_type,
        source=source,
        schema=schema_json(record.schema),
        profile=artifact_profile(
            feature=name,
            rows=record.rows,
            columns=record.columns,
            code_digest=getattr(entry, "code_digest", None)
            or getattr(artifact, "code_digest", None),
            key_id=getattr(entry, "key_id", None) or getattr(artifact, "key_id", None),
        ),
    )
    return FeatureDataset(entity)
