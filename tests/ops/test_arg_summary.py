"""``ls``'s argument summary, from key components (pure)."""

from __future__ import annotations

from typing import Any

from featurecache.ops.arg_summary import ALL_DEFAULTS, argument_summary


def _components(inputs: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    return {
        "inputs": inputs,
        "code": {
            "dependencies": {
                f"pipeline.features:sessionize.<default>.{name}": {"kind": "default", "value": v}
                for name, v in defaults.items()
            }
        },
    }


def _value(value: Any) -> dict[str, Any]:
    return {"kind": "value", "value": value, "summary": repr(value)}


def _file(path: str) -> dict[str, Any]:
    return {"kind": "file", "value": {"path": path, "content": "xxh3_128:00", "size": 8}}


def test_plain_values_and_file_names_not_at_their_defaults() -> None:
    components = _components(
        {
            "clicks": {"kind": "polars", "value": None, "summary": "polars DataFrame 3 × 2"},
            "file:data/labels.csv": _file("data/labels.csv"),  # read by the body
            "gap_minutes": _value(15),
            "label": _value("all"),
            "source": _file("data/raw/clicks_2026.parquet"),
            "strict": _value(True),
            "when": _value(None),
        },
        {"gap_minutes": 30, "label": "all", "strict": False, "when": None},
    )
    assert argument_summary(components) == ("gap_minutes=15 source=clicks_2026.parquet strict=true")


def test_long_values_are_cut_and_all_defaults_say_so() -> None:
    long = _components({"label": _value("x" * 100)}, {})
    assert argument_summary(long) == 'label="' + "x" * 30 + "…"
    assert argument_summary(_components({"n": _value(1)}, {"n": 1})) == ALL_DEFAULTS
    assert argument_summary(_components({}, {})) == ""
    assert argument_summary(None) == ""


def test_folders_globs_and_s3_objects_by_name() -> None:
    components = _components(
        {
            "folder": {"kind": "directory", "value": {"path": "data/daily/"}},
            "pattern": {"kind": "glob", "value": {"path": "data/*.csv"}},
            "remote": {"kind": "s3", "value": None, "summary": "s3://bucket/key.parquet"},
        },
        {},
    )
    assert argument_summary(components) == (
        "folder=daily pattern=*.csv remote=s3://bucket/key.parquet"
    )
