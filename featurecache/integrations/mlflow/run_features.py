"""What an MLflow run used, from MLflow alone: the ``feature.<name>`` dataset inputs the lineage
logged into it (their profile holds the feature, its ``code_hash`` and ``cache_key``), and the
code identities of the serving manifest when the training code logged one
(``featurecache/serving_manifest.json``, see ``ops.skew.serving_manifest``). This is how a
serving host with MLflow access but no shared catalog checks for skew. Imports mlflow.
"""

from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from featurecache.errors import MlflowUnavailableError, UnknownRunError
from featurecache.ops.skew import MANIFEST_PATH, TrainedFeature, manifest_code

PROBE_TIMEOUT = 5.0


def trained_from_mlflow(tracking_uri: str, run_id: str) -> list[TrainedFeature]:
    """One ``TrainedFeature`` per (feature, code digest) among the run's dataset inputs, with
    the code components of the run's serving manifest where its digest matches.
    ``UnknownRunError`` when MLflow has no such run."""
    _probe(tracking_uri)
    client = MlflowClient(tracking_uri)
    try:
        run = client.get_run(run_id)
        manifest = _manifest(client, run_id)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise UnknownRunError(run_id, f"MLflow at {tracking_uri}") from None
        raise MlflowUnavailableError(tracking_uri, str(exc).splitlines()[0][:300]) from None
    found: dict[tuple[str, str], TrainedFeature] = {}
    for dataset_input in run.inputs.dataset_inputs if run.inputs else []:
        profile = _profile(dataset_input.dataset.profile)
        feature, digest = profile.get("feature"), profile.get("code_hash")
        if not isinstance(feature, str) or not isinstance(digest, str):
            continue  # a source file or another tool's dataset
        context = next((t.value for t in dataset_input.tags if t.key == MLFLOW_DATASET_CONTEXT), "")
        key = profile.get("cache_key")
        before = found.get((feature, digest))
        found[(feature, digest)] = TrainedFeature(
            feature=feature,
            code_digest=digest,
            code=manifest_code(manifest, feature, digest),
            source="mlflow",
            artifact_ids=_add(before.artifact_ids if before else (), dataset_input.dataset.digest),
            contexts=_add(before.contexts if before else (), context),
            key_ids=_add(before.key_ids if before else (), key if isinstance(key, str) else ""),
        )
    return list(found.values())


def _probe(tracking_uri: str) -> None:
    """Fail in seconds when an HTTP tracking server does not answer (MLflow's own client
    retries for minutes); any HTTP answer counts, auth is MLflow's business."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(tracking_uri.rstrip("/") + "/health", timeout=PROBE_TIMEOUT):
            pass
    except urllib.error.HTTPError:
        pass
    except (OSError, ValueError) as exc:
        raise MlflowUnavailableError(tracking_uri, str(exc)) from None


def _add(items: tuple[str, ...], item: str) -> tuple[str, ...]:
    return items if not item or item in items else (*items, item)


def _profile(text: str | None) -> Mapping[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _manifest(client: MlflowClient, run_id: str) -> Mapping[str, Any] | None:
    """The run's serving manifest, or None when it logged none."""
    folder = MANIFEST_PATH.rpartition("/")[0]
    if not any(item.path == MANIFEST_PATH for item in client.list_artifacts(run_id, folder)):
        return None
    with tempfile.TemporaryDirectory(prefix="featurecache-manifest-") as tmp:
        path = Path(client.download_artifacts(run_id, MANIFEST_PATH, tmp))
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            return None
    return value if isinstance(value, dict) else None
