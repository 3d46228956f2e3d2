"""Records for catalog tests: a publication (entry, artifact, lineage, code) per index."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from featurecache.catalog.records import (
    ArtifactRecord,
    CodeVersionRecord,
    EntryRecord,
    LineageEdge,
)
from featurecache.hashing import hash_struct


def key_id(i: int | str) -> str:
    return hash_struct(["test-key", i])


def artifact_id(i: int | str) -> str:
    return hash_struct(["test-artifact", i])


@dataclass(frozen=True)
class Publication:
    entry: EntryRecord
    artifact: ArtifactRecord
    lineage: list[LineageEdge]
    code: CodeVersionRecord

    def args(self) -> tuple[Any, ...]:
        return (self.entry, self.artifact, self.lineage, self.code)

    def with_artifact(self, new_artifact_id: str, **changes: Any) -> Publication:
        """The same key, computed to another artifact (a non-deterministic function)."""
        return replace(
            self,
            entry=replace(self.entry, artifact_id=new_artifact_id),
            artifact=replace(self.artifact, artifact_id=new_artifact_id, **changes),
        )


def publication(
    key: int | str,
    artifact: int | str | None = None,
    *,
    feature: str = "sessions",
    size_bytes: int = 1000,
    upstream: str | None = None,
) -> Publication:
    artifact_hex = artifact_id(key if artifact is None else artifact)
    code_digest = hash_struct(["test-code", feature])
    lineage = [LineageEdge("gap_minutes", "xxh3_128:" + hash_struct(["gap", 30]))]
    if upstream is not None:
        lineage.append(LineageEdge("clicks", "xxh3_128:" + upstream, upstream_artifact_id=upstream))
    else:
        lineage.append(
            LineageEdge("clicks", "xxh3_128:" + hash_struct(["f", 1]), source_uri="file:///d.csv")
        )
    return Publication(
        entry=EntryRecord(
            key_id=key_id(key),
            feature=feature,
            code_digest=code_digest,
            artifact_id=artifact_hex,
            return_kind="polars",
            components={"key_scheme": "1", "feature": feature, "inputs": {"gap": {"value": 30}}},
        ),
        artifact=ArtifactRecord(
            artifact_id=artifact_hex,
            uri=f"file:///store/{artifact_hex}.parquet",
            rows=10,
            columns=2,
            schema=[{"name": "user", "type": "int64", "nullable": False}],
            size_bytes=size_bytes,
            file_hash=hash_struct(["file", artifact_hex]),
            compute_seconds=2.5,
        ),
        lineage=lineage,
        code=CodeVersionRecord(
            code_digest=code_digest,
            feature=feature,
            source=f"def {feature}(clicks, gap_minutes=30): ...",
            components={"function": {"name": feature}},
        ),
    )
