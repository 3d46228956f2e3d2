"""What a REF given to ``featurecache lineage`` / ``export`` names: a live artifact's id, a
unique prefix of one (git-style), or a feature's name, meaning the artifact of that feature's
most recent call. An id or prefix wins over a feature of the same spelling."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from featurecache.errors import ArtifactNotFoundError

if TYPE_CHECKING:
    from featurecache.catalog.records import EntryRecord


class RefCatalog(Protocol):
    def resolve_ref(self, prefix: str) -> str: ...

    def recent_entries(self, feature: str, limit: int = 2) -> list[EntryRecord]: ...


def resolve_artifact_ref(catalog: RefCatalog, ref: str) -> str:
    """The full artifact id ``ref`` names (``ArtifactNotFoundError`` when nothing does,
    ``AmbiguousReferenceError`` for a prefix shared by several artifacts)."""
    try:
        return catalog.resolve_ref(ref)
    except ArtifactNotFoundError:
        entries = catalog.recent_entries(ref.strip(), 1)
        if entries:
            return entries[0].artifact_id
        raise ArtifactNotFoundError(ref) from None
