"""Write statements of the catalog: publish, usage events, forgetting, pins, run usages and
fingerprint aliases. Each function runs inside the caller's write transaction: ``publish`` in
a ``tx.Tx`` (SQLAlchemy's, or on SQLite the driver's of ``prepared``), the rest in a
SQLAlchemy connection.

Publishing is insert-if-absent throughout: when two processes publish the same key, the
first committed entry wins and the second gets the winner back, never its own result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    CursorResult,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    select,
    update,
)
from sqlalchemy.engine import Connection

from featurecache.catalog.clock import utc_now
from featurecache.catalog.maintenance import SWEEP_CLAIM
from featurecache.catalog.models import (
    Artifact,
    ArtifactInput,
    ArtifactPart,
    CacheEntry,
    CodeVersion,
    Feature,
    FingerprintAlias,
    RunUsageRow,
)
from featurecache.catalog.queries import is_artifact_id
from featurecache.catalog.records import (
    ArtifactRecord,
    CodeVersionRecord,
    EntryRecord,
    Hit,
    LineageEdge,
    PublishRow,
)
from featurecache.catalog.tx import Tx
from featurecache.catalog.upsert import insert_if_absent, insert_or_update_where
from featurecache.errors import ArtifactBeingSweptError, ArtifactNotFoundError, CatalogError

# What a republished artifact overwrites in its tombstoned row when it comes back.
_REVIVED = ("uri", "rows", "columns", "schema", "size_bytes", "file_hash", "compute_seconds")


# PostgreSQL's text and JSONB refuse NUL (\u0000). Key components hold argument values for
# display (``featurecache why``), so a str argument with NUL is stored with NUL spelled out;
# the key itself is built from the real value and does not depend on this.
NUL_ESCAPE = "\\x00"


def storable(value: Any) -> Any:
    """``value`` (JSON-able) with every NUL in its strings and keys spelled ``\\x00``."""
    if isinstance(value, dict | list | tuple):
        # A key's components and code identity hold thousands of strings, NUL in none of them
        # mostly: one scan of their JSON (in C; NUL is written ``\u0000``, never raw) spares a
        # walk in Python per publish. A false alarm (the text ``\u0000`` itself) only walks.
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            return _storable(value)
        return value if "\\u0000" not in text else _storable(value)
    return _storable(value)


def json_text(value: Any) -> str:
    """``storable(value)`` as JSON text, the text SQLAlchemy's JSON type writes for it on
    SQLite (``json.dumps``): one dump where ``storable`` and the type's serialiser made two.
    The statements of a publish take their key components so (``_json_param``)."""
    text = json.dumps(value)
    return text if "\\u0000" not in text else json.dumps(_storable(value))


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", NUL_ESCAPE) if "\x00" in value else value
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(item) for item in value]
    return value


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return result.rowcount


@dataclass
class Batch:
    """What the rows of one ``publish_rows`` transaction share, made anew for each attempt
    (a redone transaction inserts everything again): the features and code versions it has
    inserted if absent, the lineage edges of its rows, inserted all at once at the end
    (nothing a publish reads depends on them), and the creation time of its last entry."""

    created: datetime
    inserted: set[tuple[str, str]] = field(default_factory=set)
    edges: list[dict[str, Any]] = field(default_factory=list)

    def next_created(self) -> datetime:
        self.created += _TICK
        return self.created


# Entries are created a microsecond apart, in the order they were published, after the last
# one the catalog created: the database clock gives the rows of one transaction one time (the
# transaction's on PostgreSQL; SQLite's steps in milliseconds, so a publish right after a
# batch may read the same time), and "the newest key" and "the nearest earlier one"
# (``by_feature.newest_entries``, ``featurecache why``) are creation order.
_TICK = timedelta(microseconds=1)


def publish_rows(
    tx: Tx, rows: Sequence[PublishRow], *, after: datetime | None = None
) -> tuple[list[Hit], list[datetime]]:
    """``publish`` of each row in turn, in one transaction; the winning Hit of each, and the
    creation time given to each row's entry. Entries are created in row order by the database
    clock, a microsecond apart, and after ``after`` (the last the catalog created, which may
    have committed in the same millisecond): every publish goes through here, one row or a
    batch of them. A batch is mostly of one feature and code version: their
    insert-if-absent statements run once per distinct name and digest (run again, they would
    change nothing: no statement of a publish, nor of any other transaction, deletes those
    rows)."""
    now = _utc(tx.first(_statement(tx, "now"), {}))
    batch = Batch(created=now - _TICK if after is None or now > after else after)
    hits, created = [], []
    for row in rows:
        hits.append(publish(tx, *row, batch=batch))
        created.append(batch.created)
    if batch.edges:
        tx.execute(_statement(tx, "lineage"), batch.edges)
    return hits, created


def _utc(row: tuple[Any, ...] | None) -> datetime:
    """The database clock's reading (``utc_now``), as the driver path or SQLAlchemy gives it."""
    assert row is not None
    value = row[0]
    if isinstance(value, str):  # SQLite through the driver: UTCDateTime's text
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def publish(
    tx: Tx,
    entry: EntryRecord,
    artifact: ArtifactRecord,
    lineage: Sequence[LineageEdge],
    code: CodeVersionRecord,
    parts: Sequence[ArtifactRecord] = (),
    *,
    batch: Batch,
) -> Hit:
    """Record a computed artifact under ``entry.key_id``, as a row of ``batch``
    (``publish_rows``, which calls it); returns the winning Hit (ours, or the entry another
    process published first). A composite ``artifact`` comes with its ``parts`` (already
    durable in the store), recorded in the same transaction. What the batch has inserted
    already is not inserted again, and the lineage is left to the batch."""
    if entry.artifact_id != artifact.artifact_id:
        raise ValueError(
            f"entry {entry.key_id} points at {entry.artifact_id}, not {artifact.artifact_id}"
        )
    for name in sorted({entry.feature, code.feature}):
        if _first_time(batch, "feature", name):
            tx.execute(_statement(tx, "feature"), {"name": name})
    if _first_time(batch, "code", code.code_digest):
        tx.execute(
            _statement(tx, "code"),
            {
                "code_digest": code.code_digest,
                "feature": code.feature,
                "source": storable(code.source),
                "components_json": json_text(code.components),
            },
        )
    for part in parts:
        _publish_artifact(tx, part)
    _publish_artifact(tx, artifact)
    if parts:
        tx.execute(
            _statement(tx, "parts"),
            [
                {"composite_id": artifact.artifact_id, "position": i, "part_id": part.artifact_id}
                for i, part in enumerate(parts)
            ],
        )
    edges = [
        {
            "artifact_id": artifact.artifact_id,
            "argument": edge.argument,
            "fingerprint": edge.fingerprint,
            "upstream_artifact_id": edge.upstream_artifact_id,
            "source_uri": edge.source_uri,
        }
        for edge in lineage
    ]
    batch.edges += edges
    # The key may have an entry. One whose artifact was tombstoned (GC) is a miss on lookup
    # and must not win: it goes, and ours goes in. (Looked for unless our insert surely went
    # in, not before every insert: a fresh key, the usual case, runs one statement.)
    row = _entry_row(entry, batch.next_created())
    if (
        tx.execute(_statement(tx, "entry"), row) != 1
        and tx.execute(_statement(tx, "stale_entry"), {"key_id": entry.key_id}) == 1
    ):
        tx.execute(_statement(tx, "entry"), row)
    winner = tx.lookup(entry.key_id)
    if winner is None:
        # PostgreSQL (READ COMMITTED): a GC or forget_artifact committed between our insert
        # (a no-op: another entry held the key) and this read, dropping that entry. The key
        # is free again, so ours goes in; a reader must not fail because of a concurrent GC.
        tx.execute(_statement(tx, "entry"), row)
        winner = tx.lookup(entry.key_id)
    if winner is None:
        raise CatalogError(f"the entry for key {entry.key_id} vanished while publishing it")
    return winner


def _first_time(batch: Batch, table: str, key: str) -> bool:
    """Whether this transaction is yet to insert ``key`` into ``table`` (noting that it now
    will)."""
    if (table, key) in batch.inserted:
        return False
    batch.inserted.add((table, key))
    return True


def _entry_row(entry: EntryRecord, created: datetime) -> dict[str, Any]:
    """The parameters of the ``entry`` statement."""
    return {
        "created_at": created,
        "last_used_at": created,
        "key_id": entry.key_id,
        "feature": entry.feature,
        "code_digest": entry.code_digest,
        "artifact_id": entry.artifact_id,
        "return_kind": entry.return_kind,
        "components_json": json_text(entry.components),
    }


def _publish_artifact(tx: Tx, artifact: ArtifactRecord) -> None:
    """Insert the artifact row if absent; revive a tombstoned row with the new file's data,
    unless a sweep has claimed it (its file is being deleted): then ``ArtifactBeingSweptError``
    rolls the whole publish back."""
    values: dict[str, Any] = {
        "artifact_id": artifact.artifact_id,
        "uri": artifact.uri,
        "rows": artifact.rows,
        "columns": artifact.columns,
        "schema": artifact.schema,
        "size_bytes": artifact.size_bytes,
        "file_hash": artifact.file_hash,
        "compute_seconds": artifact.compute_seconds,
        "pinned": artifact.pinned,
    }
    if artifact.structure is not None:  # absent, not None: JSON would store 'null'
        values["structure"] = storable(artifact.structure)
    if tx.execute(_statement(tx, "artifact"), values) == 1:
        # Inserted, or a tombstoned row revived: not claimed (the revive spares a claimed
        # row), and ours until commit, so no sweep can claim it now. Only a row left as it
        # was may be claimed.
        return
    claimed = tx.first(_statement(tx, "claimed"), {"artifact_id": artifact.artifact_id})
    if claimed is not None:
        raise ArtifactBeingSweptError(artifact.artifact_id)


# The statements of a publish, built once per dialect: a statement object executed again
# keeps its compiled-cache key, which SQLAlchemy otherwise derives anew for every statement
# built per call (a third of a tiny publish's catalog time). Values come as parameters;
# timestamps are the database clock's (``utc_now``).
def _build(dialect: str, name: str) -> Any:
    if name == "feature":
        return insert_if_absent(dialect, Feature, ["name"]).values(created_at=utc_now())
    if name == "code":
        return insert_if_absent(dialect, CodeVersion, ["code_digest"]).values(
            components=_json_param(dialect), created_at=utc_now()
        )
    if name == "parts":
        return insert_if_absent(dialect, ArtifactPart, ["composite_id", "position"])
    if name == "lineage":
        return insert_if_absent(dialect, ArtifactInput, ["artifact_id", "argument"])
    if name == "entry":  # created when ``publish_rows`` says
        return insert_if_absent(dialect, CacheEntry, ["key_id"]).values(
            components=_json_param(dialect), hits=0
        )
    if name == "now":
        return select(utc_now())
    if name == "stale_entry":
        # An entry whose artifact was tombstoned (GC) is a miss on lookup; it must not win.
        return delete(CacheEntry).where(
            CacheEntry.key_id == bindparam("key_id"),
            exists().where(
                Artifact.artifact_id == CacheEntry.artifact_id, Artifact.deleted_at.is_not(None)
            ),
        )
    if name == "artifact":
        return insert_or_update_where(
            dialect,
            Artifact,
            ["artifact_id"],
            update=_REVIVED,
            where=and_(Artifact.deleted_at.is_not(None), Artifact.deleted_at != SWEEP_CLAIM),
            extra={"deleted_at": None, "created_at": utc_now(), "last_used_at": utc_now()},
        ).values(created_at=utc_now(), last_used_at=utc_now(), hits=0, deleted_at=None)
    if name == "claimed":
        return select(Artifact.artifact_id).where(
            Artifact.artifact_id == bindparam("artifact_id"), Artifact.deleted_at == SWEEP_CLAIM
        )
    raise KeyError(name)


def _json_param(dialect: str) -> Any:
    """The ``components`` column's value, bound as the JSON text of ``json_text``: stored as
    is on SQLite (as the JSON type stores its own dump), cast on PostgreSQL to the JSONB that
    psycopg's adapter would have sent as the same text."""
    text = bindparam("components_json", type_=Text())
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        return cast(text, JSONB)
    return text


_STATEMENTS: dict[tuple[str, str], Any] = {}


def _statement(tx: Tx, name: str) -> Any:
    key = (tx.dialect_name, name)
    found = _STATEMENTS.get(key)
    if found is None:
        found = _STATEMENTS[key] = _build(tx.dialect_name, name)
    return found


def forget_artifact(conn: Connection, artifact_id: str) -> None:
    """The store lost or corrupted ``artifact_id``: drop the entries that point at it and
    tombstone it, so that the next call of those keys recomputes. A malformed id has no file
    to sweep later: its row goes at once. Every live composite that has it as a part is
    forgotten with it: a composite is served whole or not at all."""
    composites = list(
        conn.scalars(
            select(ArtifactPart.composite_id)
            .join(Artifact, Artifact.artifact_id == ArtifactPart.composite_id)
            .where(ArtifactPart.part_id == artifact_id, Artifact.deleted_at.is_(None))
        )
    )
    for composite_id in composites:
        forget_artifact(conn, composite_id)
    conn.execute(delete(CacheEntry).where(CacheEntry.artifact_id == artifact_id))
    if not is_artifact_id(artifact_id):
        conn.execute(delete(Artifact).where(Artifact.artifact_id == artifact_id))
        return
    conn.execute(
        update(Artifact)
        .where(Artifact.artifact_id == artifact_id, Artifact.deleted_at.is_(None))
        .values(deleted_at=utc_now())
    )


def set_pinned(conn: Connection, artifact_id: str, pinned: bool) -> None:
    result = conn.execute(
        update(Artifact)
        .where(Artifact.artifact_id == artifact_id, Artifact.deleted_at.is_(None))
        .values(pinned=pinned)
    )
    if _rowcount(result) == 0:
        raise ArtifactNotFoundError(artifact_id)


def record_run_usage(
    conn: Connection, run_id: str, artifact_id: str, context: str, tracking_uri: str
) -> None:
    conn.execute(
        insert_if_absent(conn, RunUsageRow, ["run_id", "artifact_id", "context"]).values(
            run_id=run_id,
            artifact_id=artifact_id,
            context=context,
            tracking_uri=tracking_uri,
            at=utc_now(),
        )
    )


def add_alias(conn: Connection, algo: str, value: str, canonical: str) -> None:
    """Remember that ``algo:value`` names the content we fingerprint as ``canonical``.
    The first alias recorded for a value stays (the same content cannot have two)."""
    conn.execute(
        insert_if_absent(conn, FingerprintAlias, ["algo", "value"]).values(
            algo=algo, value=value, canonical=canonical, created_at=utc_now()
        )
    )
