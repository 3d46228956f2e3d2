"""The catalog record of a partitioned result: one composite artifact whose parts are the
partitions' artifacts, under the feature name ``<feature>.partitioned``.

It is an ordinary composite (``results.codec``): a dict from partition label to frame part,
with a ``partitioned`` marker in its structure. So ``ls``, ``show``, ``verify``, ``gc`` (a
live composite protects its parts) and ``lineage`` (one edge per partition to its artifact)
see one partitioned feature with N parts (so do listeners such as MLflow: one event, its
parts as inputs), and its key names every partition's key and
artifact, so a partition recomputed to new content gives a new record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from featurecache.catalog.records import (
    ArtifactRecord,
    CodeVersionRecord,
    EntryRecord,
    Hit,
    LineageEdge,
)
from featurecache.errors import ArtifactNotFoundError, UnsupportedOutputError
from featurecache.fingerprint.types import InputFingerprint
from featurecache.hashing import hash_struct
from featurecache.hooks import resolved_event, upstream_of
from featurecache.keys import build_key
from featurecache.partitions.task import PartDone
from featurecache.publish import COMPOSITE_URI
from featurecache.results.codec import CODEC, composite_id
from featurecache.results.leaf import text_out

if TYPE_CHECKING:
    from featurecache.engine import CacheEngine
    from featurecache.partitions.task import MappedFeature

SUFFIX = ".partitioned"
_TYPE_NAMES = {
    "polars": "polars.DataFrame",
    "lazy": "polars.LazyFrame",
    "pandas": "pandas.DataFrame",
    "arrow": "pyarrow.Table",
}


def record_partitioned(
    engine: CacheEngine, feature: MappedFeature, done: Sequence[PartDone]
) -> tuple[Hit, list[ArtifactRecord]]:
    """Commit the composite record of ``done`` (idempotent: the same parts give the same
    key and artifact); returns it with its parts' records, in partition order."""
    parts = [_part_record(engine, feature.name, item) for item in done]
    structure: dict[str, Any] = {
        "codec": {
            "codec": CODEC,
            "root": {
                "t": "dict",
                "keys": [text_out(item.label) for item in done],
                "values": [
                    {
                        "t": "frame",
                        "kind": item.kind,
                        "type": _TYPE_NAMES[item.kind],
                        "rows": part.rows,
                        "columns": part.columns,
                        "part": i,
                    }
                    for i, (item, part) in enumerate(zip(done, parts, strict=True))
                ],
            },
            "partitioned": {"feature": feature.name, "parts": len(done)},
        },
        "kinds": [item.kind for item in done],
    }
    ids = [part.artifact_id for part in parts]
    artifact_id = composite_id(structure, ids)
    name = feature.name + SUFFIX
    code = feature.code_identity(engine.settings.track_library_versions)
    listing = [[item.label, item.key_id, item.artifact_id] for item in done]
    inputs = {
        "partitions": InputFingerprint(
            argument="partitions",
            kind="value",
            fingerprint="xxh3_128:" + hash_struct(["partitions", listing]),
            summary=f"{len(done)} partitions of {feature.name}",
        )
    }
    key = build_key(name, code, inputs)
    artifact = ArtifactRecord(
        artifact_id=artifact_id,
        uri=COMPOSITE_URI + artifact_id,
        rows=0,
        columns=len(parts),
        schema=[],
        size_bytes=sum(part.size_bytes for part in parts),
        file_hash="",
        compute_seconds=sum(part.compute_seconds for part in parts),
        structure=structure,
    )
    entry = EntryRecord(
        key_id=key.key_id,
        feature=name,
        code_digest=code.digest,
        artifact_id=artifact_id,
        return_kind="composite",
        components=key.components,
    )
    edges = [
        LineageEdge(
            argument=item.label,
            fingerprint="xxh3_128:" + item.artifact_id,
            upstream_artifact_id=item.artifact_id,
        )
        for item in done
    ]
    record = CodeVersionRecord(code.digest, name, code.source, code.components)
    known = engine.catalog.lookup(key.key_id)
    if known is not None and known.artifact.artifact_id == artifact_id:
        _report(engine, known, "hit", code.source, ())  # a rerun: nothing to write
        return known, parts
    hit = engine.catalog.publish(entry, artifact, edges, record, parts)
    _report(engine, hit, "miss", code.source, edges)
    return hit, parts


def _report(
    engine: CacheEngine,
    hit: Hit,
    kind: Literal["hit", "miss"],
    source: str,
    edges: Sequence[LineageEdge],
) -> None:
    """Listeners (MLflow) see the set as one feature whose inputs are its parts."""
    if not engine.listeners:
        return
    event = resolved_event(
        hit, kind, code_source=source, upstream=upstream_of(edges, engine.store.artifact_uri)
    )
    for listener in engine.listeners:
        listener.on_resolved(event)


def _part_record(engine: CacheEngine, feature: str, item: PartDone) -> ArtifactRecord:
    record = engine.catalog.get_artifact(item.artifact_id)
    if record is None:
        # Collected between the worker's answer and now (a GC racing the run).
        raise ArtifactNotFoundError(item.artifact_id, f"the catalog (partition {item.label})")
    if record.is_composite or item.kind not in _TYPE_NAMES:
        raise UnsupportedOutputError(
            feature,
            f"a {item.kind} result in partition {item.label} (a partitioned feature must "
            "return one frame per partition)",
            tuple(_TYPE_NAMES.values()),
        )
    return record
