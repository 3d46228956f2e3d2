"""A feature run's MLflow params: the call's plain arguments, read from the key's input
components (pure; no mlflow import).

An argument of kind ``value`` (``gap_minutes=30``, a list of column names) is one param named
after it; a config object (kind ``object``: a dataclass, NamedTuple, pydantic model…) is one
param per field, ``cfg.window``. Frames, arrays, files and containers of them are datasets, not
params. Everything is bounded by MLflow's limits: at most ``MAX_PARAMS`` (one ``log_batch``),
keys of MLflow's allowed characters and length, values cut to ``MAX_VALUE`` characters with
``…``. A value too large to be kept in the key (``None`` with a summary) is logged as its
summary ("str of 12,345 characters").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

MAX_PARAMS = 100  # MLflow's MAX_PARAMS_TAGS_PER_BATCH: one request per feature run
MAX_KEY = 250  # MLflow's MAX_ENTITY_KEY_LENGTH
MAX_VALUE = 6000  # MLflow's MAX_PARAM_VAL_LENGTH
_BAD_KEY_CHARS = re.compile(r"[^/\w.\- ]")  # MLflow accepts / alphanumerics _ . - and space
_UNSET = "<unset>"


def feature_params(inputs: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, str], int]:
    """(params, how many were left out) for a call whose key had these input components."""
    params: dict[str, str] = {}
    left_out = 0
    for key, value in _candidates(inputs):
        key = _key(key)
        if key in params:
            continue
        if len(params) >= MAX_PARAMS:
            left_out += 1
            continue
        params[key] = _text(value)
    return params, left_out


def _candidates(inputs: Mapping[str, Mapping[str, Any]]) -> Iterator[tuple[str, Any]]:
    for argument in sorted(inputs):
        component = inputs[argument]
        kind = component.get("kind")
        if kind == "value":
            yield argument, _shown(component)
        elif kind == "object":
            shown = component.get("value")
            fields = shown.get("fields") if isinstance(shown, Mapping) else None
            if isinstance(fields, Mapping):
                for name, value in fields.items():
                    if value != _UNSET:
                        yield f"{argument}.{name}", value


def _shown(component: Mapping[str, Any]) -> Any:
    value = component.get("value")
    if value is None and component.get("summary") not in (None, "None"):
        return str(component["summary"])  # too large to be kept in the key record
    return value


def _key(name: str) -> str:
    return _BAD_KEY_CHARS.sub("_", name)[:MAX_KEY] or "_"


def _text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, bool | int | float):
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"
