"""Value types produced by fingerprinting: what an input or a function's code hashed to,
with enough description for ``featurecache why`` to explain a change."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InputFingerprint:
    """The fingerprint of one argument of a feature call."""

    argument: str
    # "polars" | "lazy" | "pandas" | "arrow" | "numpy" | "value" | "file" | "directory" | "s3"
    # | "glob" (a str pattern matching files) | "container" (a list/tuple/dict holding paths
    # or frames)
    kind: str
    # Algorithm-prefixed digest: "xxh3_128:<32 hex>", or "md5:<hex>" for DVC-confirmed files.
    fingerprint: str
    summary: (
        str  # short, human: "polars DataFrame 5,000,000 × 5", "file data/x.csv (12.0 MB)", "30"
    )
    schema: list[dict[str, Any]] | None = None  # frames: [{"name", "type", "nullable"}]
    rows: int | None = None
    value: Any = None  # JSON-able value for plain parameters (shown as "30 → 45")
    upstream_artifact_id: str | None = None  # the frame came out of the cache as this artifact
    source_uri: str | None = None  # files and S3 objects

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "fingerprint": self.fingerprint,
            "summary": self.summary,
            "schema": self.schema,
            "rows": self.rows,
            "value": self.value,
            "upstream_artifact_id": self.upstream_artifact_id,
            "source_uri": self.source_uri,
        }


@dataclass(frozen=True)
class CodeIdentity:
    """The transitive identity of a feature function's code."""

    digest: str  # 32 hex
    qualname: str  # "module.function"
    source: str  # the function's own source text (for display and MLflow)
    # JSON-able breakdown: {"function": {...}, "dependencies": {name: {...}},
    #  "libraries": {dist: version}, "options": {...}, "warnings": [...]}
    components: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    # Path-like string literals of the code (``code.literals``): not in the digest; those
    # naming an existing file or folder at call time become inputs of the key.
    path_literals: tuple[str, ...] = ()
