"""MLflow dataset entities: digests that fit MLflow's 36-char column, sources the UI reads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("mlflow")

from featurecache.integrations.mlflow.entities import dataset_digest, schema_json, source_of


@given(
    algo=st.sampled_from(["xxh3_128", "md5", "sha256", "md5-dos2unix"]),
    hexdigest=st.text("0123456789abcdef", min_size=1, max_size=128),
)
def test_dataset_digests_fit_mlflow(algo: str, hexdigest: str) -> None:
    digest = dataset_digest(f"{algo}:{hexdigest}")
    assert len(digest) <= 36 and hexdigest.startswith(digest) and digest


@pytest.mark.parametrize(
    ("uri", "source_type", "source"),
    [
        ("s3://b/k.parquet", "s3", {"uri": "s3://b/k.parquet"}),
        ("file:///x/k.parquet", "local", {"uri": "file:///x/k.parquet"}),
        ("/x/k.parquet", "local", {"uri": "file:///x/k.parquet"}),
        ("https://h/k.csv", "http", {"url": "https://h/k.csv"}),
        ("gs://b/k", "gs", {"uri": "gs://b/k"}),
    ],
)
def test_dataset_sources_match_mlflow(uri: str, source_type: str, source: dict[str, str]) -> None:
    kind, text = source_of(uri)
    assert (kind, json.loads(text)) == (source_type, source)


def test_schema_is_mlflow_colspec() -> None:
    schema: list[dict[str, Any]] = [
        {"name": "a", "type": "int64", "nullable": False},
        {"name": "b", "type": "string"},
    ]
    assert json.loads(schema_json(schema)) == {
        "mlflow_colspec": [
            {"name": "a", "type": "int64", "required": True},
            {"name": "b", "type": "string", "required": False},
        ]
    }
