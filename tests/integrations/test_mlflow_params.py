"""A feature run's params from the key's input components (pure): plain arguments and config
fields become params, frames and files do not, and MLflow's limits always hold."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.inputs import fingerprint_input
from featurecache.fingerprint.types import CodeIdentity
from featurecache.integrations.mlflow.params import (
    MAX_KEY,
    MAX_PARAMS,
    MAX_VALUE,
    feature_params,
)
from featurecache.keys import build_key

MLFLOW_KEY = re.compile(r"^[/\w.\- ]+$")


def value(shown: Any, summary: str | None = None) -> dict[str, Any]:
    return {"kind": "value", "value": shown, "summary": summary or str(shown)}


def test_plain_arguments_are_params_and_data_is_not() -> None:
    inputs = {
        "clicks": {"kind": "polars", "value": None, "summary": "polars DataFrame 3 × 2"},
        "raw": {"kind": "file", "value": None, "summary": "file data/x.csv"},
        "gap_minutes": value(30),
        "ratio": value(0.25),
        "label": value("churn"),
        "dropna": value(True),
        "since": value(None, "None"),
        "columns": value(["a", "b"]),
        "weights": value({"a": 1, "b": 2}),
    }
    params, left_out = feature_params(inputs)
    assert params == {
        "gap_minutes": "30",
        "ratio": "0.25",
        "label": "churn",
        "dropna": "True",
        "since": "None",
        "columns": '["a","b"]',
        "weights": '{"a":1,"b":2}',
    }
    assert left_out == 0


def test_config_objects_are_one_param_per_field() -> None:
    cfg = {
        "kind": "object",
        "value": {"type": "m.Config", "fields": {"window": 7, "tags": ["x"], "later": "<unset>"}},
        "summary": "Config(window=7, …)",
    }
    assert feature_params({"cfg": cfg}) == ({"cfg.window": "7", "cfg.tags": '["x"]'}, 0)


def test_a_value_too_large_for_the_key_record_is_its_summary() -> None:
    params, _ = feature_params({"text": value(None, "str of 12,345 characters")})
    assert params == {"text": "str of 12,345 characters"}


def test_limits_hold_for_many_long_arguments() -> None:
    inputs = {f"a{i:03d}": value("x" * (MAX_VALUE + 10)) for i in range(MAX_PARAMS + 7)}
    params, left_out = feature_params(inputs)
    assert len(params) == MAX_PARAMS and left_out == 7
    assert all(len(v) == MAX_VALUE and v.endswith("…") for v in params.values())
    assert min(params) == "a000"  # the first ones, by name: stable across runs


@given(
    names=st.lists(st.text(min_size=1, max_size=300), min_size=1, max_size=5, unique=True),
    shown=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=10,
    ),
)
def test_every_param_fits_mlflow(names: list[str], shown: Any) -> None:
    params, _ = feature_params({name: value(shown) for name in names})
    for key, text in params.items():
        assert MLFLOW_KEY.match(key) and len(key) <= MAX_KEY
        assert isinstance(text, str) and len(text) <= MAX_VALUE


@dataclass(frozen=True)
class Window:
    days: int = 7


def test_params_of_a_real_key(tmp_path: Path) -> None:
    """What the engine stores as the key's components is what the params are read from."""
    arguments = {"clicks": pl.DataFrame({"user": [1, 2]}), "gap_minutes": 30, "window": Window()}
    with FileFingerprinter(tmp_path / "state", project_root=tmp_path) as files:
        inputs = {name: fingerprint_input(name, v, files=files) for name, v in arguments.items()}
    code = CodeIdentity(digest="0" * 32, qualname="m.sessions", source="")
    key = build_key("sessions", code, inputs)
    params, _ = feature_params(key.components["inputs"])
    assert params == {"gap_minutes": "30", "window.days": "7"}
