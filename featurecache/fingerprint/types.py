"""Value types produced by fingerprinting: what an input or a function's code hashed to,
with enough description for ``featurecache why`` to explain a change."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


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


class FrameFingerprint(InputFingerprint):
    """A frame input's fingerprint whose ``summary`` and ``schema`` are made when first read,
    from the frame's label, shape and Arrow schema (immutable; the frame is not kept): a miss
    records them, a hit never reads them. Equal to another only of its own class (it is made
    by ``inputs`` only); not for ``dataclasses.replace``."""

    _described: tuple[str, int, pa.Schema]  # label, columns, Arrow schema

    def __init__(
        self,
        *,
        argument: str,
        kind: str,
        fingerprint: str,
        label: str,
        rows: int,
        columns: int,
        arrow_schema: pa.Schema,
    ) -> None:
        super().__init__(
            argument=argument, kind=kind, fingerprint=fingerprint, summary="", rows=rows
        )
        # Made on first read (the cached properties below), not now.
        object.__delattr__(self, "summary")
        object.__delattr__(self, "schema")
        object.__setattr__(self, "_described", (label, columns, arrow_schema))

    @functools.cached_property
    def summary(self) -> str:
        label, columns, _ = self._described
        return f"{label} {self.rows:,} × {columns:,}"

    @functools.cached_property
    def schema(self) -> list[dict[str, Any]] | None:
        from featurecache.frames import describe_schema

        return describe_schema(self._described[2])


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
