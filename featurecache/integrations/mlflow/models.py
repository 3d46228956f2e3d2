"""MLflow model URIs as feature inputs: resolve ``models:/…`` and ``runs:/…`` strings and
fingerprint the model they name (``fingerprint.modeluri`` finds this module by import path).

At every call, the URI is resolved through the MLflow client of the process (the tracking and
registry URIs ``mlflow`` itself uses: ``MLFLOW_TRACKING_URI``, ``mlflow.set_tracking_uri``), so
the body, loading the same URI, loads from the same registry:

* ``models:/name/3``: ``get_model_version`` (one request; a deleted version is an error);
* ``models:/name@alias``: ``get_model_version_by_alias``, once per call: the alias moving to
  another version changes the key;
* ``models:/name/latest`` and ``models:/name/<stage>``: ``get_latest_versions``, the highest;
* ``models:/m-…`` (an MLflow 3 logged model) and ``runs:/<run id>/path``: as named.

The fingerprint is ``H(["mlflow-model", name, version, content])``, where ``content`` hashes
every file of the model's artifacts (relative path, size, xxh3 of the bytes), downloaded with
``mlflow.artifacts.download_artifacts`` from the *pinned* URI (``models:/name/4``, never the
alias again, which may have moved meanwhile). A registered version's artifacts do not change,
so its content digest is computed once per process; a run's artifacts can be added to, so a
``runs:/`` digest is reused only while the run's artifact listing (paths and sizes) is
unchanged, and not at all when the run lists nothing at that path (MLflow resolved the URI
elsewhere, such as to a logged model): then the model is downloaded at every call. The
text of the URI is not in the fingerprint: ``models:/churn@champion`` and ``models:/churn/4``
give the same key while the alias points at version 4.
"""

from __future__ import annotations

import os
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featurecache.errors import MissingDependencyError, ModelUriError
from featurecache.fingerprint.modeluri import KIND
from featurecache.fingerprint.types import InputFingerprint
from featurecache.hashing import HASH_ALGO, hash_file_bytes, hash_struct


@dataclass(frozen=True)
class ResolvedModel:
    """What a model URI named at this call."""

    uri: str  # as given
    pinned: str  # the URI downloaded: "models:/name/4", "models:/m-…", "runs:/…"
    name: str | None  # registered model name
    version: str | None  # registered version
    run_id: str | None
    model_id: str | None
    registry: str  # registry URI (for the digest memo: another registry is another model)


_DIGESTS: dict[tuple[Any, ...], str] = {}
_LOCK = threading.Lock()


def fingerprint_model_uri(argument: str, text: str) -> InputFingerprint:
    """The fingerprint of the model ``text`` names (raises ``ModelUriError``)."""
    client = _client(argument, text)
    resolved = resolve(client, argument, text)
    content = _content(client, argument, resolved)
    digest = hash_struct(["mlflow-model", resolved.name, resolved.version, content])
    label = (
        f"{resolved.name} version {resolved.version}"
        if resolved.version is not None
        else resolved.pinned
    )
    return InputFingerprint(
        argument=argument,
        kind=KIND,
        fingerprint=f"{HASH_ALGO}:{digest}",
        summary=f"MLflow model {text} → {label} (content {content[:12]})",
        value={
            "uri": text,
            "name": resolved.name,
            "version": resolved.version,
            "run_id": resolved.run_id,
            "model_id": resolved.model_id,
            "content": content[:16],
        },
        source_uri=resolved.pinned,
    )


def _client(argument: str, text: str) -> Any:
    try:
        from mlflow import MlflowClient
    except ImportError as exc:
        raise MissingDependencyError(
            "mlflow-skinny", "mlflow", f"resolving the MLflow model URI {text!r} ({argument!r})"
        ) from exc
    return MlflowClient()


def resolve(client: Any, argument: str, text: str) -> ResolvedModel:
    """``text`` resolved to a pinned model through ``client`` (one request, or two)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    registry = str(mlflow.get_registry_uri())
    try:
        if text.lower().startswith("runs:/"):
            run_id, _, path = text[len("runs:/") :].partition("/")
            if not run_id or not path:
                raise _malformed(argument, text)
            return ResolvedModel(text, text, None, None, run_id, None, registry)
        name, version, alias = _parse_models(argument, text)
        if name is None:  # a logged model id
            logged = client.get_logged_model(version)
            return ResolvedModel(text, text, None, None, logged.source_run_id, version, registry)
        if alias is not None:
            found = client.get_model_version_by_alias(name, alias)
        elif version is not None and version.isdigit():
            found = client.get_model_version(name, version)
        else:
            stages = None if version is None or version.lower() == "latest" else [version]
            with warnings.catch_warnings():  # get_latest_versions is deprecated with stages
                warnings.simplefilter("ignore", FutureWarning)
                latest = client.get_latest_versions(name, stages)
            if not latest:
                raise ModelUriError(
                    argument, text, "no version found", f"Register a version of {name!r} first."
                )
            found = max(latest, key=lambda mv: int(mv.version))
    except MlflowException as exc:
        raise ModelUriError(
            argument,
            text,
            str(exc.message).splitlines()[0],
            f"Check the model name, version or alias, and that the MLflow registry "
            f"{registry!r} (MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI) is the one that holds "
            "it; or list the argument in @cached_feature(values=[...]) to key on its text",
        ) from exc
    version = str(found.version)
    return ResolvedModel(
        text,
        f"models:/{found.name}/{version}",
        str(found.name),
        version,
        found.run_id,
        getattr(found, "model_id", None),
        registry,
    )


def _parse_models(argument: str, text: str) -> tuple[str | None, str | None, str | None]:
    """``(name, version or stage or 'latest', alias)``; ``(None, model_id, None)`` for a
    logged model."""
    path = text[len("models:/") :]
    parts = path.split("/")
    if not path or len(parts) > 2 or not parts[0].strip() or (len(parts) == 2 and not parts[1]):
        raise _malformed(argument, text)
    if len(parts) == 2:
        return parts[0], parts[1], None
    if "@" in parts[0]:
        name, _, alias = parts[0].rpartition("@")
        if not name or not alias:
            raise _malformed(argument, text)
        return name, None, alias
    return None, parts[0], None


def _malformed(argument: str, text: str) -> ModelUriError:
    return ModelUriError(
        argument,
        text,
        "not a model URI MLflow accepts",
        "Pass models:/<name>/<version>, models:/<name>@<alias>, models:/<name>/latest, "
        "models:/<model id> or runs:/<run id>/<path>",
    )


def _content(client: Any, argument: str, resolved: ResolvedModel) -> str:
    """The content digest of the model's artifacts, memoised per process (see the module
    docstring for when a memo is reused)."""
    if resolved.version is not None or resolved.model_id is not None:
        memo: tuple[Any, ...] = (resolved.registry, resolved.pinned)
    else:
        listing = _listing(client, resolved)
        if not listing:  # served from elsewhere (a logged model): nothing to compare with
            return _download_digest(argument, resolved)
        memo = (resolved.registry, resolved.pinned, listing)
    with _LOCK:
        found = _DIGESTS.get(memo)
    if found is not None:
        return found
    digest = _download_digest(argument, resolved)
    with _LOCK:
        _DIGESTS[memo] = digest
    return digest


def _listing(client: Any, resolved: ResolvedModel) -> tuple[tuple[str, int | None], ...]:
    run_id, _, path = resolved.pinned[len("runs:/") :].partition("/")
    found: list[tuple[str, int | None]] = []
    pending = [path]
    while pending:
        for info in client.list_artifacts(run_id, pending.pop()):
            if info.is_dir:
                pending.append(info.path)
            else:
                found.append((info.path, info.file_size))
    return tuple(sorted(found))


def _download_digest(argument: str, resolved: ResolvedModel) -> str:
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="featurecache-model-") as folder:
        try:
            local = download_artifacts(artifact_uri=resolved.pinned, dst_path=folder)
        except MlflowException as exc:
            raise ModelUriError(
                argument,
                resolved.uri,
                f"its artifacts ({resolved.pinned}) cannot be downloaded: {exc.message}",
                "Check that the model's artifacts are reachable from this process",
            ) from exc
        return tree_digest(Path(local))


def tree_digest(root: Path) -> str:
    """A file or folder by the sorted relative paths, sizes and content hashes of its files."""
    if root.is_file():
        return hash_struct(["file", root.stat().st_size, hash_file_bytes(str(root))])
    files = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            relative = path.relative_to(root).as_posix()
            files.append([relative, path.stat().st_size, hash_file_bytes(str(path))])
    return hash_struct(["tree", sorted(files)])
