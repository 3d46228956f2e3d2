"""What ``featurecache.open(ref)`` opens: the catalog record of one single-file artifact.

``ref`` is what the CLI accepts (a full artifact id, a unique prefix of one, or a feature's
name meaning its most recent call's artifact: ``ops.artifact_refs``), or a frame a feature call
returned. A frame the cache handed out on a hit (or a part of a composite hit) carries its
artifact id (``fingerprint.carry``); any other frame is fingerprinted the way a miss
fingerprints its result, which names the artifact it was stored as. Pending background
publishes are waited for before a frame is reported as not stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from featurecache.errors import ArtifactNotFoundError, NotStreamableError

if TYPE_CHECKING:
    from featurecache.catalog.records import ArtifactRecord
    from featurecache.engine import CacheEngine


def artifact_for(engine: CacheEngine, ref: object) -> ArtifactRecord:
    """The live single-file artifact ``ref`` names (``ArtifactNotFoundError``,
    ``AmbiguousReferenceError``, ``NotStreamableError``)."""
    if isinstance(ref, str):
        from featurecache.ops.artifact_refs import resolve_artifact_ref

        artifact_id = resolve_artifact_ref(engine.catalog, ref)
        shown = repr(ref)
    else:
        artifact_id = _id_of_value(ref)
        shown = f"the {type(ref).__name__} given (artifact {artifact_id[:12]})"
    record = engine.catalog.get_artifact(artifact_id)
    if record is None and not isinstance(ref, str):
        engine.publisher.flush()  # a miss's result may still be publishing in the background
        record = engine.catalog.get_artifact(artifact_id)
    if record is None:
        # A frame no cached feature returned (or one changed since) has a content id that
        # names no artifact.
        raise ArtifactNotFoundError(artifact_id if isinstance(ref, str) else shown, "the catalog")
    if record.is_composite:
        parts = [part.part_id[:12] for part in engine.catalog.parts_listing(artifact_id)]
        raise NotStreamableError(
            shown,
            f"artifact {artifact_id[:12]} is a composite result (a tuple, list or dict of "
            f"results) made of the artifacts {', '.join(parts)}",
            "Open one part: featurecache.open(result[0]) or featurecache.open('<part id>').",
        )
    return record


def _id_of_value(value: object) -> str:
    from featurecache.fingerprint.carry import recall
    from featurecache.frames import frame_kind

    if (carried := recall(value)) is not None:
        return carried
    if frame_kind(value) is None:
        raise NotStreamableError(
            f"a {type(value).__name__}",
            "it is neither a reference (an artifact id, a unique prefix of one, a feature "
            "name) nor a frame a cached feature returned",
            "Pass the frame a cached feature returned, or the id `featurecache ls` shows.",
        )
    from featurecache.fingerprint.arrow.content import fingerprint_table
    from featurecache.frames import to_arrow

    table, _ = to_arrow(value, "featurecache.open")
    return fingerprint_table(table)
