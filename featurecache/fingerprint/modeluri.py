"""Strings that name an MLflow model: ``models:/name/version``, ``models:/name@alias``,
``models:/name/latest`` (or a stage), ``models:/<logged model id>`` and ``runs:/<run id>/path``.

Feature code passes a model as the URI it loads (``mlflow.pyfunc.load_model(uri)``). Hashed
as text, ``"models:/churn@champion"`` would keep its key after the alias moved to a new version:
a stale hit. Such a string is therefore resolved at every call (the alias or ``latest`` to its
version, once per call) and fingerprinted by the resolved version and the content digest of the
model's artifacts. The resolution lives in ``integrations/mlflow/models.py``, found here by
import path so the core never imports MLflow (as ``hooks`` finds its integrations). Without
MLflow, or when the model cannot be found, a ``ModelUriError`` says so: never a silent hash of
the text. ``@cached_feature(values=["uri"])`` keys an argument on its text on purpose.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from featurecache.fingerprint.types import InputFingerprint

KIND = "mlflow-model"
SCHEMES = ("models:/", "runs:/")
_RESOLVER = "featurecache.integrations.mlflow.models:fingerprint_model_uri"
_loaded: list[Callable[[str, str], InputFingerprint]] = []


def is_model_uri(text: str) -> bool:
    """Text starting with an MLflow model scheme (no system call, no request)."""
    return text[:8].lower().startswith(SCHEMES)


def fingerprint_model_uri(argument: str, text: str) -> InputFingerprint:
    """The fingerprint of the model ``text`` names, resolved through MLflow now."""
    if not _loaded:
        module, _, attribute = _RESOLVER.partition(":")
        _loaded.append(getattr(importlib.import_module(module), attribute))
    return _loaded[0](argument, text)


def model_uri_changes(before: Any, after: Any) -> list[str]:
    """``models:/churn@champion now version 4 (was 3)`` for ``featurecache why``."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    uri = after.get("uri")
    a, b = before.get("version"), after.get("version")
    if a is not None and b is not None and a != b:
        return [f"model {uri} now version {b} (was {a})"]
    if before.get("content") != after.get("content"):
        return [
            f"model {uri}: artifacts changed (content {before.get('content')} → {after.get('content')})"
        ]
    return []
