"""What the cache holds: the rows of ``featurecache ls``, the detail of ``featurecache show``,
and pinning (``pin`` / ``unpin``).

References to artifacts are git-style: a full artifact id or any unique prefix of one
(``Catalog.resolve_ref``); short ids in listings are the first ``SHORT_ID`` characters.

A composite result (a tuple, dict, Series... stored as parts) is one row of ``ls``, of kind
``composite`` with a one-line summary of its structure; its parts are not results of their
own and are left out of the listing (a part that some feature also returned on its own stays
listed). ``show`` of a composite lists its parts; ``show`` of a part names its composites.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from featurecache.catalog.records import (
    ArtifactRecord,
    CodeVersionRecord,
    EntryRecord,
    LineageEdge,
)

if TYPE_CHECKING:
    from featurecache.catalog.composites import PartRef
    from featurecache.catalog.facade import ArtifactListing, ArtifactSort, Catalog, RunUsage
    from featurecache.ops.key_diff import ComponentRow

SHORT_ID = 12


def short_id(artifact_id: str) -> str:
    return artifact_id[:SHORT_ID]


def iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


COMPOSITE = "composite"
SINGLE_FILE = "file"


def composite_summary(structure: dict[str, Any] | None, parts: int) -> str | None:
    """A composite's one-line summary (``tuple(pandas.DataFrame 800×12, …)``), or "N parts"
    when its structure is one this version cannot describe; None for a single file."""
    if structure is None:
        return None
    from featurecache.results.codec import describe

    try:
        return describe(structure["codec"])
    except (KeyError, TypeError, ValueError, AttributeError):
        # Written by another version of featurecache: still listed, less precisely.
        return f"{parts} parts"


@dataclass(frozen=True)
class ArtifactRow:
    """One line of ``featurecache ls``."""

    artifact_id: str
    features: tuple[str, ...]
    rows: int
    columns: int
    size_bytes: int
    created_at: datetime | None
    last_used_at: datetime | None
    hits: int
    pinned: bool
    compute_seconds: float
    uri: str
    structure: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        """``composite`` (a result made of parts, no file of its own) or ``file``."""
        return SINGLE_FILE if self.structure is None else COMPOSITE

    @property
    def summary(self) -> str | None:
        """A composite's structure in one line (its parts' count is ``columns``)."""
        return composite_summary(self.structure, self.columns)

    @classmethod
    def of(cls, artifact: ArtifactRecord, features: list[str] | tuple[str, ...]) -> ArtifactRow:
        return cls(
            artifact_id=artifact.artifact_id,
            features=tuple(sorted(features)),
            rows=artifact.rows,
            columns=artifact.columns,
            size_bytes=artifact.size_bytes,
            created_at=artifact.created_at,
            last_used_at=artifact.last_used_at,
            hits=artifact.hits,
            pinned=artifact.pinned,
            compute_seconds=artifact.compute_seconds,
            uri=artifact.uri,
            structure=artifact.structure,
        )

    @classmethod
    def of_listing(cls, listing: ArtifactListing) -> ArtifactRow:
        return cls(
            artifact_id=listing.artifact_id,
            features=listing.features,
            rows=listing.rows,
            columns=listing.columns,
            size_bytes=listing.size_bytes,
            created_at=listing.created_at,
            last_used_at=listing.last_used_at,
            hits=listing.hits,
            pinned=listing.pinned,
            compute_seconds=listing.compute_seconds,
            uri=listing.uri,
            structure=listing.structure,
        )

    @property
    def feature(self) -> str:
        """The feature's name; several, comma-separated, when identical outputs share it."""
        return ", ".join(self.features)

    def to_json(self) -> dict[str, Any]:
        return {
            "artifact_id": self.artifact_id,
            "feature": self.feature,
            "features": list(self.features),
            "rows": self.rows,
            "columns": self.columns,
            "size_bytes": self.size_bytes,
            "created_at": iso(self.created_at),
            "last_used_at": iso(self.last_used_at),
            "hits": self.hits,
            "pinned": self.pinned,
            "compute_seconds": self.compute_seconds,
            "uri": self.uri,
            "kind": self.kind,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class Inventory:
    """A page of ``featurecache ls``: the first rows in the asked order, and how many match."""

    rows: tuple[ArtifactRow, ...]
    total: int

    def to_json(self) -> list[dict[str, Any]]:
        return [row.to_json() for row in self.rows]


def list_artifacts(
    catalog: Catalog,
    feature: str | None = None,
    sort: ArtifactSort = "created",
    limit: int | None = None,
) -> Inventory:
    """Live artifacts (of ``feature``, if given): newest, most recently used or largest first;
    the first ``limit`` of them (all when None)."""
    total, listing = catalog.artifact_listing(feature=feature, sort=sort, limit=limit)
    return Inventory(tuple(ArtifactRow.of_listing(item) for item in listing), total)


@dataclass(frozen=True)
class KeyDetail:
    """A cache key that resolves to the artifact, with every component of the key."""

    entry: EntryRecord
    components: tuple[ComponentRow, ...]

    def to_json(self) -> dict[str, Any]:
        entry = self.entry
        return {
            "key_id": entry.key_id,
            "feature": entry.feature,
            "code_digest": entry.code_digest,
            "return_kind": entry.return_kind,
            "created_at": iso(entry.created_at),
            "components": entry.components,
            "component_rows": [row.to_json() for row in self.components],
        }


@dataclass(frozen=True)
class ArtifactDetail:
    """Everything the catalog knows about one artifact (``featurecache show``)."""

    artifact: ArtifactRecord
    features: tuple[str, ...]
    keys: tuple[KeyDetail, ...]
    code_versions: tuple[CodeVersionRecord, ...]
    inputs: tuple[LineageEdge, ...]  # upstream artifacts and source files
    downstream: tuple[str, ...]  # artifacts computed from this one
    runs: tuple[RunUsage, ...]  # MLflow runs that used it
    parts: tuple[PartRef, ...] = ()  # a composite's parts, in order
    part_of: tuple[str, ...] = ()  # the live composites this artifact is a part of

    def to_json(self) -> dict[str, Any]:
        return {
            **ArtifactRow.of(self.artifact, self.features).to_json(),
            "parts": [
                {
                    "position": ref.position,
                    "artifact_id": ref.part_id,
                    "rows": None if ref.record is None else ref.record.rows,
                    "columns": None if ref.record is None else ref.record.columns,
                    "size_bytes": None if ref.record is None else ref.record.size_bytes,
                    "live": ref.live,
                }
                for ref in self.parts
            ],
            "part_of": list(self.part_of),
            "file_hash": self.artifact.file_hash,
            "schema": self.artifact.schema,
            "keys": [key.to_json() for key in self.keys],
            "code_versions": [
                {
                    "code_digest": code.code_digest,
                    "feature": code.feature,
                    "source": code.source,
                    "components": code.components,
                }
                for code in self.code_versions
            ],
            "inputs": [
                {
                    "argument": edge.argument,
                    "fingerprint": edge.fingerprint,
                    "upstream_artifact_id": edge.upstream_artifact_id,
                    "source_uri": edge.source_uri,
                }
                for edge in self.inputs
            ],
            "downstream": list(self.downstream),
            "runs": [
                {
                    "run_id": run.run_id,
                    "context": run.context,
                    "tracking_uri": run.tracking_uri,
                    "at": iso(run.at),
                }
                for run in self.runs
            ],
        }


def show_artifact(catalog: Catalog, ref: str) -> ArtifactDetail:
    """The artifact ``ref`` names (an id or a unique prefix); ``ArtifactNotFoundError`` /
    ``AmbiguousReferenceError`` otherwise."""
    from featurecache.errors import ArtifactNotFoundError
    from featurecache.ops.key_diff import explain_components

    artifact_id = catalog.resolve_ref(ref)
    artifact = catalog.get_artifact(artifact_id)
    if artifact is None:  # collected between resolving and reading
        raise ArtifactNotFoundError(ref)
    entries = catalog.entries_for_artifact(artifact_id)
    digests = sorted({entry.code_digest for entry in entries})
    parts: tuple[PartRef, ...] = ()
    part_of: list[str] = []
    if artifact.is_composite:
        parts = tuple(catalog.parts_listing(artifact_id))
    else:
        part_of = catalog.composites_of([artifact_id]).get(artifact_id, [])
    return ArtifactDetail(
        artifact=artifact,
        features=tuple(sorted({entry.feature for entry in entries})),
        keys=tuple(KeyDetail(entry, tuple(explain_components(entry))) for entry in entries),
        code_versions=tuple(catalog.code_versions(digests)) if digests else (),
        inputs=tuple(catalog.lineage_of(artifact_id)),
        downstream=tuple(catalog.downstream_of(artifact_id)),
        runs=tuple(catalog.runs_for_artifact(artifact_id)),
        parts=parts,
        part_of=tuple(part_of),
    )


def set_pinned(catalog: Catalog, ref: str, pinned: bool) -> ArtifactRow:
    """Pin (every GC policy spares it) or unpin the artifact ``ref`` names."""
    from featurecache.errors import ArtifactNotFoundError

    artifact_id = catalog.resolve_ref(ref)
    catalog.set_pinned(artifact_id, pinned)
    artifact = catalog.get_artifact(artifact_id)
    if artifact is None:
        raise ArtifactNotFoundError(ref)
    features = sorted({entry.feature for entry in catalog.entries_for_artifact(artifact_id)})
    return ArtifactRow.of(artifact, features)
