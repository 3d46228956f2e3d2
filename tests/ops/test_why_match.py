"""Which key ``why`` explains and which earlier key it compares it with (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from featurecache.catalog.records import EntryRecord
from featurecache.ops.why_match import (
    NoMatchingCallError,
    matches_args,
    nearest,
    recorded_arguments,
    same_value,
    select_call,
)


def value(v: Any, fingerprint: str) -> dict[str, Any]:
    return {"kind": "value", "fingerprint": fingerprint, "summary": repr(v), "value": v}


def frame(fingerprint: str) -> dict[str, Any]:
    return {"kind": "polars", "fingerprint": fingerprint, "summary": "3 rows", "value": None}


def entry(key: str, code: str = "c1", **inputs: dict[str, Any]) -> EntryRecord:
    return EntryRecord(
        key_id=key,
        feature="f",
        code_digest=code,
        artifact_id="a" + key,
        return_kind="polars",
        components={"inputs": inputs},
    )


def test_nearest_shares_the_most_inputs_and_the_most_recent_wins_a_tie() -> None:
    latest = entry("k4", "c2", df=frame("F1"), depth=value(2, "D2"))
    earlier = [
        entry("k3", "c2", df=frame("F1"), depth=value(1, "D1")),  # shares df
        entry("k2", "c1", df=frame("F1"), depth=value(2, "D2")),  # shares df and depth
        entry("k1", "c1", df=frame("F1"), depth=value(1, "D1")),
    ]
    assert nearest(latest.components, earlier) == earlier[1]
    tie = [entry("k3", df=frame("F0")), entry("k2", df=frame("F9"))]
    assert nearest(latest.components, tie) == tie[0]
    assert nearest(latest.components, []) is None
    assert nearest(latest.components, earlier, exclude_key="k2") == earlier[0]


def model(kind: str, identity: str, fingerprint: str) -> dict[str, Any]:
    named = {"type": identity} if kind == "model" else {"uri": identity, "version": "1"}
    return {"kind": kind, "fingerprint": fingerprint, "summary": identity, "value": named}


def test_a_refit_of_the_same_model_is_nearer_than_another_model() -> None:
    """Two models predicted on the same data, then one refit: its miss compares with the
    earlier key of the same model class (or MLflow URI), even when the other is more recent."""
    for kind, mine, theirs in (
        ("model", "sklearn.pipeline.Pipeline", "lightgbm.sklearn.LGBMClassifier"),
        ("mlflow-model", "models:/churn@champion", "models:/fraud@champion"),
    ):
        latest = entry("k3", x=frame("X"), model=model(kind, mine, "M3"))
        earlier = [
            entry("k2", x=frame("X"), model=model(kind, theirs, "M2")),
            entry("k1", x=frame("X"), model=model(kind, mine, "M1")),
        ]
        assert nearest(latest.components, earlier) == earlier[1]


def test_values_match_as_json_where_true_is_not_one() -> None:
    assert same_value(2, 2) and same_value(2, 2.0) and same_value("a", "a")
    assert not same_value(True, 1) and not same_value(1, True) and same_value(False, False)
    assert not same_value("2", 2) and not same_value(None, 0)
    assert same_value([1, [2, 3]], [1, (2, 3)]) and not same_value([1], [1, 2])
    assert same_value({"k": [1]}, {"k": [1]}) and not same_value({"k": 1}, {"j": 1})


def test_matches_args_reads_plain_values_only() -> None:
    e = entry(
        "k1",
        depth=value(2, "D2"),
        flag=value(None, "N"),
        big={"kind": "value", "fingerprint": "B", "summary": "list of 10,000 items", "value": None},
        df=frame("F1"),
    )
    e.components["inputs"]["flag"]["summary"] = "None"
    assert matches_args(e, {"depth": 2}) and matches_args(e, {"depth": 2, "flag": None})
    assert matches_args(e, {})
    assert not matches_args(e, {"depth": 3})
    assert not matches_args(e, {"big": None})  # too big to record: not a None
    assert not matches_args(e, {"df": None}) and not matches_args(e, {"missing": 1})


def test_select_call_returns_the_latest_match_or_a_typed_error() -> None:
    entries = [
        entry("k3", depth=value(2, "D2"), df=frame("F2")),
        entry("k2", depth=value(1, "D1"), df=frame("F1")),
        entry("k1", depth=value(2, "D2"), df=frame("F1")),
    ]
    assert select_call("f", entries, {"depth": 2}) == 0
    assert select_call("f", entries, {"depth": 1}) == 1
    assert recorded_arguments(entries) == {"depth": [2, 1], "df": []}

    with pytest.raises(NoMatchingCallError) as unknown:
        select_call("f", entries, {"dpth": 1})
    message = str(unknown.value)
    assert message.startswith("--args: 'f' has no argument 'dpth'")
    assert "depth (2, 1)" in message and "df (not a plain value)" in message
    assert isinstance(unknown.value, LookupError) and unknown.value.given == {"dpth": 1}

    with pytest.raises(NoMatchingCallError, match=r"no recorded call of 'f' has depth=5"):
        select_call("f", entries, {"depth": 5})
