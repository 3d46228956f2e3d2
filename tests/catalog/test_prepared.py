"""The writes of a miss on a SQLite catalog through the driver (``catalog.prepared``): the
rows, the winners and the errors of the ordinary path (SQLAlchemy's), without its engine."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, select

from featurecache.catalog import direct
from featurecache.catalog.facade import Catalog
from featurecache.catalog.models import Base, JSONType, Lease
from featurecache.catalog.prepared import _DIALECT, prepare
from featurecache.catalog.records import ArtifactRecord, Hit
from featurecache.errors import ArtifactBeingSweptError
from tests.catalog.factories import artifact_id, key_id, publication

_STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")


def _open(path: Path, *, driver: bool) -> Catalog:
    """A catalog on an existing file: through the driver (no engine until a write that is
    not a miss's opens it), or with the driver path switched off."""
    Catalog.open(f"sqlite:///{path}").close()
    catalog = Catalog.open(f"sqlite:///{path}")
    if not driver:
        catalog._direct = None
    return catalog


def _on_both_paths(
    tmp_path: Path, story: Callable[[Catalog], list[Any]]
) -> tuple[list[list[Any]], list[dict[str, list[tuple[Any, ...]]]]]:
    """``story`` told to a fresh catalog on the driver path, then on the ordinary path: what
    each told, and the rows each left."""
    told, rows = [], []
    for driver in (True, False):
        path = tmp_path / f"driver-{driver}.db"
        with _open(path, driver=driver) as catalog:
            told.append(story(catalog))
            rows.append(_rows(path))
    return told, rows


def _rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table as stored (JSON as text, booleans as integers), each
    timestamp checked for the stored format and then masked (the clocks differ)."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    with sqlite3.connect(path) as conn:
        for table in sorted(Base.metadata.tables):
            rows = conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            masked = []
            for row in rows:
                cells = []
                for cell in row:
                    if isinstance(cell, str) and _STAMP.fullmatch(cell):
                        cell = "<time>"
                    elif isinstance(cell, str) and re.match(r"\d{4}-\d\d-\d\d ", cell):
                        raise AssertionError(f"{table}: a timestamp not as stored: {cell!r}")
                    cells.append(cell)
                masked.append(tuple(cells))
            found[table] = masked
    return found


def _timeless(hit: Hit) -> Hit:
    def artifact(record: ArtifactRecord) -> ArtifactRecord:
        return replace(record, created_at=None, last_used_at=None)

    return Hit(
        replace(hit.entry, created_at=None),
        artifact(hit.artifact),
        tuple(artifact(part) for part in hit.parts),
        hit.complete,
    )


def _story(catalog: Catalog) -> list[object]:
    """Every write of a miss, with its races: leases taken, refused, renewed, taken over
    (expired, and from a dead owner) and released; publishes that win, lose to the first
    writer, repeat, revive a tombstoned artifact, share an artifact, carry NUL; a replace."""
    said: list[object] = []
    k1, k2 = key_id("lease-1"), key_id("lease-2")
    said += [
        catalog.try_acquire_lease(k1, "alice", 30),
        catalog.try_acquire_lease(k1, "bob", 30),
        catalog.try_acquire_lease(k1, "alice", 60),  # the holder: renewed
        catalog.renew_lease(k1, "alice", 45.5),
        catalog.renew_lease(k1, "bob", 45.5),
        catalog.take_over_lease(k1, "alice", "carol", 30),
        catalog.take_over_lease(k1, "alice", "dave", 30),  # changed hands meanwhile
        catalog.try_acquire_lease(k2, "dead", -1.0),  # expired at once (database clock)
        catalog.try_acquire_lease(k2, "eve", 30),  # takes the expired lease over
    ]
    catalog.release_lease(k1, "bob")  # not the holder: a no-op
    catalog.release_lease(k2, "eve")
    first = publication(1)
    same_key = first.with_artifact(artifact_id("other"))
    shared = publication(2, artifact=1, feature="other_feature", upstream=artifact_id(1))
    nul = publication(3)
    nul = replace(nul, entry=replace(nul.entry, components={"inputs": {"s": "a\x00b"}}))
    pinned = publication(4)
    pinned = replace(pinned, artifact=replace(pinned.artifact, pinned=True))
    for pub in (first, first, same_key, shared, nul, pinned):
        said.append(_timeless(catalog.publish(*pub.args())))
    catalog.forget_artifact(first.artifact.artifact_id)  # tombstoned, its entries gone
    revived = replace(first, artifact=replace(first.artifact, rows=11, size_bytes=7))
    said.append(_timeless(catalog.publish(*revived.args())))
    newer = first.with_artifact(artifact_id("recomputed"))
    said.append(_timeless(catalog.replace(*newer.args())))
    said.append(_timeless(catalog.replace(*publication(5).args())))  # no entry to replace
    return said


def test_a_miss_writes_what_the_ordinary_path_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver_writes: list[int] = []
    write = direct.DirectSqlite.write

    def counted(self: direct.DirectSqlite, work: Callable[[sqlite3.Connection], Any]) -> Any:
        result = write(self, work)
        driver_writes.append(1)  # committed
        return result

    monkeypatch.setattr(direct.DirectSqlite, "write", counted)
    told, rows = _on_both_paths(tmp_path, _story)
    assert told[0] == told[1]
    assert rows[0] == rows[1]
    assert told[0][:9] == [True, False, True, True, False, True, False, True, True]
    assert rows[0]["leases"] == [(key_id("lease-1"), "carol", "<time>", "<time>", "<time>", 2)]
    assert len(rows[0]["cache_entries"]) == 4  # key 2 went with the forgotten artifact
    assert len(rows[0]["artifact_inputs"]) == 12  # a shared artifact's edges are its first
    assert driver_writes == [1] * 20  # every lease and publish of the story, none redone


def test_the_miss_writes_need_no_engine(tmp_path: Path) -> None:
    with _open(tmp_path / "c.db", driver=True) as catalog:
        assert catalog._engine is None
        _story(catalog)  # forget_artifact (a maintenance write) opens it
    with _open(tmp_path / "c.db", driver=True) as catalog:
        pub = publication(9)
        assert catalog.try_acquire_lease(pub.entry.key_id, "me", 30)
        catalog.publish(*pub.args())
        catalog.release_lease(pub.entry.key_id, "me")
        assert catalog._engine is None
        assert catalog.get_lease(pub.entry.key_id) is None


@pytest.mark.parametrize("driver", [True, False])
def test_a_publish_into_a_sweep_claim_is_refused_and_rolled_back(
    tmp_path: Path, driver: bool
) -> None:
    path = tmp_path / "c.db"
    with _open(path, driver=driver) as catalog:
        pub = publication(1)
        catalog.publish(*pub.args())
        catalog.forget_artifact(pub.artifact.artifact_id)
        assert catalog.claim_for_sweep([pub.artifact.artifact_id]) == [pub.artifact.artifact_id]
        before = _rows(path)
        again = replace(pub, entry=replace(pub.entry, feature="new_feature"))
        with pytest.raises(ArtifactBeingSweptError):
            catalog.publish(*again.args())
        assert _rows(path) == before  # no feature row, no entry: all rolled back
        assert catalog.lookup(pub.entry.key_id) is None


def test_a_composite_winner_is_answered_by_the_ordinary_path(tmp_path: Path) -> None:
    with _open(tmp_path / "c.db", driver=True) as catalog:
        pub = publication(1)
        parts = [
            replace(pub.artifact, artifact_id=artifact_id(f"part{i}"), uri=f"file:///p{i}")
            for i in range(2)
        ]
        composite = replace(pub.artifact, structure={"kind": "tuple", "n": 2})
        first = catalog.publish(pub.entry, composite, pub.lineage, pub.code, parts)
        plain = pub.with_artifact(artifact_id("plain"))
        assert catalog.publish(*plain.args()) == first  # the winner, with its parts
        assert len(first.parts) == 2


def test_a_driver_error_falls_back_to_the_ordinary_path(tmp_path: Path) -> None:
    with _open(tmp_path / "c.db", driver=True) as catalog:
        not_a_db = tmp_path / "not-a-database"
        not_a_db.write_bytes(b"this is no SQLite file, " * 100)
        catalog._direct = direct.DirectSqlite(not_a_db, 1000)
        pub = publication(1)
        assert catalog.try_acquire_lease(pub.entry.key_id, "me", 30)
        hit = catalog.publish(*pub.args())
        catalog.release_lease(pub.entry.key_id, "me")
        assert catalog._engine is not None
        assert catalog.get_lease(pub.entry.key_id) is None
        catalog._direct = None
        assert catalog.lookup(pub.entry.key_id) == hit


def test_an_expanding_parameter_is_refused() -> None:
    many: Callable[[], object] = lambda: prepare(  # noqa: E731 - read as the statement
        select(Lease.key_id).where(Lease.key_id.in_(bindparam("ids", expanding=True))), ["ids"]
    )
    with pytest.raises(NotImplementedError, match="expanding"):
        many()


def _batch(catalog: Catalog, *, together: bool = True) -> list[object]:
    """A batched publish (the background publisher's): two fresh keys, one a rival already
    published with another artifact, one sharing an artifact (whose first lineage stays),
    their leases deleted and their miss events recorded with the winning artifacts. Not
    ``together``: the same, one publish, release and event at a time."""
    from featurecache.catalog.records import PublishRow, UsageEvent

    rival = publication(7).with_artifact(artifact_id("rival's"))
    catalog.publish(*rival.args())
    pubs = [publication(6), publication(7), publication(8, artifact=6, upstream=artifact_id(7))]
    leases = [(pub.entry.key_id, f"owner-{i}") for i, pub in enumerate(pubs)]
    for key, owner in leases:
        assert catalog.try_acquire_lease(key, owner, 30)
    events = [
        UsageEvent("miss", pub.entry.key_id, pub.entry.feature, pub.artifact.artifact_id, 0.5, 0.25)
        for pub in pubs
    ]
    if together:
        hits = catalog.publish_batch(
            [PublishRow(*pub.args()) for pub in pubs], leases=leases, events=events
        )
    else:
        hits = [catalog.publish(*pub.args()) for pub in pubs]
        for key, owner in leases:
            catalog.release_lease(key, owner)
        catalog.record_events(
            [
                replace(e, artifact_id=h.artifact.artifact_id)
                for e, h in zip(events, hits, strict=True)
            ]
        )
    return [_timeless(hit) for hit in hits]


def test_a_batched_publish_writes_what_the_ordinary_path_writes(tmp_path: Path) -> None:
    told, rows = [], []
    for driver, together in ((True, True), (False, True), (True, False)):
        path = tmp_path / f"driver-{driver}-{together}.db"
        with _open(path, driver=driver) as catalog:
            told.append(_batch(catalog, together=together))
            if driver:
                assert catalog._engine is None  # the driver wrote it all
            rows.append(_rows(path))
    assert told[0] == told[1] == told[2]
    assert rows[0] == rows[1] == rows[2]  # a batch writes what one publish at a time does
    assert rows[0]["leases"] == []
    # Key components are bound as JSON text (``writes.json_text``): the very text the JSON
    # type stores for them.
    store_json = JSONType.bind_processor(_DIALECT)
    assert store_json is not None
    pubs = {pub.entry.key_id: pub for pub in (publication(6), publication(8, artifact=6))}
    for key, *_, components, _, _, _ in rows[0]["cache_entries"]:
        if key in pubs:
            assert components == store_json(pubs[key].entry.components)
    code = publication(6).code
    assert rows[0]["code_versions"] == [
        (code.code_digest, code.feature, code.source, store_json(code.components), "<time>")
    ]
    events = {(row[3], row[4]) for row in rows[0]["usage_events"]}  # key_id, artifact_id
    assert events == {
        (key_id(6), artifact_id(6)),
        (key_id(7), artifact_id("rival's")),  # the winner's artifact, not ours
        (key_id(8), artifact_id(6)),
    }


def _redone_batch(catalog: Catalog) -> list[object]:
    """A batch the driver path gives up halfway (its second key's winner is a composite,
    which only the ordinary path reads): the ordinary path redoes it whole, first key's new
    feature and code version included."""
    from featurecache.catalog.records import PublishRow, UsageEvent

    composite = publication(2)
    part = replace(composite.artifact, artifact_id=artifact_id("part"), uri="file:///part")
    catalog.publish(
        composite.entry,
        replace(composite.artifact, structure={"kind": "tuple", "n": 1}),
        composite.lineage,
        composite.code,
        [part],
    )
    pubs = [
        publication(1, feature="new_feature"),
        publication(3, feature="new_feature"),
        publication(2).with_artifact(artifact_id("plain")),
    ]
    events = [UsageEvent("miss", pub.entry.key_id, pub.entry.feature, None, 1, 1) for pub in pubs]
    hits = catalog.publish_batch(
        [PublishRow(*pub.args()) for pub in pubs], leases=[], events=events
    )
    return [_timeless(hit) for hit in hits]


def test_a_batch_redone_on_the_ordinary_path_writes_it_all(tmp_path: Path) -> None:
    told, rows = _on_both_paths(tmp_path, _redone_batch)
    assert told[0] == told[1]
    assert rows[0] == rows[1]
    assert [row[0] for row in rows[0]["features"]] == ["new_feature", "sessions"]
    assert len(rows[0]["cache_entries"]) == 3
