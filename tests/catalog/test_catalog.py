"""The catalog conformance suite (SQLite and PostgreSQL): publish and lookup, first writer
wins, forgetting and reviving artifacts, usage, listing, references, lineage, pins, runs
and aliases."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import exc, func, select, text, update

from featurecache.catalog.database import read, run_write
from featurecache.catalog.facade import Catalog, UsageEvent
from featurecache.catalog.models import Artifact, ArtifactInput, CacheEntry
from featurecache.catalog.models import UsageEventRow as EventRow
from featurecache.catalog.records import PublishRow
from featurecache.errors import (
    AmbiguousReferenceError,
    ArtifactBeingSweptError,
    ArtifactNotFoundError,
)
from tests.catalog.factories import artifact_id, key_id, publication


def count(catalog: Catalog, model: type) -> int:
    with read(catalog.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def tombstone(catalog: Catalog, artifact: str) -> None:
    """What GC's first phase does to an artifact (GC itself lives elsewhere)."""
    run_write(
        catalog.engine,
        lambda conn: conn.execute(
            update(Artifact)
            .where(Artifact.artifact_id == artifact)
            .values(deleted_at=datetime.now(UTC))
        ),
        what="tombstone",
    )


def next_tick(catalog: Catalog) -> None:
    """Wait until the database clock (millisecond steps on SQLite) has moved on."""
    start = catalog.now()
    while catalog.now() <= start:
        time.sleep(0.001)


def test_publish_then_lookup_round_trips_every_field(catalog: Catalog) -> None:
    pub = publication(1)
    before = catalog.now()
    hit = catalog.publish(*pub.args())
    found = catalog.lookup(pub.entry.key_id)
    assert found == hit
    assert found.entry.key_id == pub.entry.key_id
    assert found.entry.components == pub.entry.components
    assert found.entry.return_kind == "polars"
    assert found.artifact.schema == pub.artifact.schema
    assert (found.artifact.rows, found.artifact.columns, found.artifact.size_bytes) == (10, 2, 1000)
    assert found.artifact.file_hash == pub.artifact.file_hash
    assert found.artifact.compute_seconds == 2.5
    assert (found.artifact.hits, found.artifact.pinned) == (0, False)
    for stamp in (found.entry.created_at, found.artifact.created_at, found.artifact.last_used_at):
        assert stamp is not None and stamp.tzinfo is not None and stamp.utcoffset() == timedelta(0)
        assert before <= stamp <= catalog.now()  # the database clock wrote it
    assert catalog.lookup(key_id("absent")) is None


def test_a_batch_sharing_an_artifact_keeps_its_first_lineage(catalog: Catalog) -> None:
    """Rows of one batch that computed the same artifact from other inputs: the first row's
    edges are the artifact's (insert-if-absent in row order), as published one at a time."""
    first, second = publication(1), publication(2, artifact=1, upstream=artifact_id(9))
    rows = [PublishRow(*first.args()), PublishRow(*second.args())]
    events = [UsageEvent("miss", row.entry.key_id, row.entry.feature, None, 1, 1) for row in rows]
    hits = catalog.publish_batch(rows, leases=[], events=events)
    assert [hit.artifact.artifact_id for hit in hits] == [artifact_id(1)] * 2
    assert {edge.argument: edge for edge in catalog.lineage_of(artifact_id(1))} == {
        edge.argument: edge for edge in first.lineage
    }


def test_publish_is_idempotent(catalog: Catalog) -> None:
    pub = publication(1)
    first = catalog.publish(*pub.args())
    again = catalog.publish(*pub.args())
    assert again == first
    assert [count(catalog, m) for m in (CacheEntry, Artifact, ArtifactInput)] == [1, 1, 2]


def test_the_first_writer_wins(catalog: Catalog) -> None:
    ours = publication("k", artifact="ours")
    theirs = ours.with_artifact(artifact_id("theirs"), uri="file:///theirs.parquet")
    catalog.publish(*ours.args())
    winner = catalog.publish(*theirs.args())
    assert winner.artifact.artifact_id == artifact_id("ours")
    assert winner.artifact.uri == ours.artifact.uri
    assert catalog.lookup(ours.entry.key_id) == winner
    assert catalog.lineage_of(artifact_id("theirs")) != []  # recorded, for GC to find


def test_an_entry_of_a_tombstoned_artifact_does_not_win(catalog: Catalog) -> None:
    old = publication("k", artifact="old")
    catalog.publish(*old.args())
    tombstone(catalog, artifact_id("old"))
    assert catalog.lookup(old.entry.key_id) is None  # never served
    new = old.with_artifact(artifact_id("new"))
    assert catalog.publish(*new.args()).artifact.artifact_id == artifact_id("new")


def test_a_publish_into_an_artifact_claimed_by_a_sweep_is_refused(catalog: Catalog) -> None:
    """Its file is being deleted: neither a publish nor a batch holding it revives the row,
    and the batch's other rows roll back with it."""
    pub = publication(1)
    catalog.publish(*pub.args())
    catalog.forget_artifact(artifact_id(1))
    assert catalog.claim_for_sweep([artifact_id(1)]) == [artifact_id(1)]
    again, other = publication(2, artifact=1), publication(3)
    with pytest.raises(ArtifactBeingSweptError):
        catalog.publish(*again.args())
    rows = [PublishRow(*other.args()), PublishRow(*again.args())]
    events = [UsageEvent("miss", row.entry.key_id, row.entry.feature, None, 1, 1) for row in rows]
    with pytest.raises(ArtifactBeingSweptError):
        catalog.publish_batch(rows, leases=[], events=events)
    assert catalog.lookup(again.entry.key_id) is None
    assert catalog.lookup(other.entry.key_id) is None
    assert catalog.get_artifact(artifact_id(1)) is None


def test_forget_artifact_makes_every_key_recompute(catalog: Catalog) -> None:
    one, two = publication(1, artifact="shared"), publication(2, artifact="shared")
    catalog.publish(*one.args())
    catalog.publish(*two.args())
    catalog.forget_artifact(artifact_id("shared"))
    assert catalog.lookup(one.entry.key_id) is None
    assert catalog.lookup(two.entry.key_id) is None
    assert catalog.get_artifact(artifact_id("shared")) is None
    assert catalog.entries_for_artifact(artifact_id("shared")) == []
    catalog.forget_artifact(artifact_id("shared"))  # idempotent
    catalog.forget_artifact(artifact_id("never-seen"))

    # Recomputed to the same content (a new file): the tombstoned row comes back to life.
    revived = replace(one.artifact, uri="file:///again.parquet")
    hit = catalog.publish(one.entry, revived, one.lineage, one.code)
    assert hit.artifact.uri == "file:///again.parquet"
    assert catalog.get_artifact(artifact_id("shared")) == hit.artifact
    assert catalog.lookup(two.entry.key_id) is None  # only the republished key is back


def test_hits_bump_counters_and_misses_do_not(catalog: Catalog) -> None:
    pub = publication(1)
    catalog.publish(*pub.args())
    published = catalog.lookup(pub.entry.key_id)
    assert published is not None
    kwargs = dict(key_id=pub.entry.key_id, feature="sessions", artifact_id=pub.artifact.artifact_id)
    catalog.record_event("miss", duration_seconds=2.6, compute_seconds=2.5, **kwargs)
    catalog.record_event("hit", duration_seconds=0.01, compute_seconds=2.5, run_id="r1", **kwargs)
    catalog.record_events(
        [UsageEvent("hit", pub.entry.key_id, "sessions", pub.artifact.artifact_id, 0.01, 2.5)] * 3
    )
    found = catalog.lookup(pub.entry.key_id)
    assert found is not None and found.artifact.hits == 4
    assert found.artifact.last_used_at is not None and published.artifact.last_used_at is not None
    assert found.artifact.last_used_at >= published.artifact.last_used_at
    assert count(catalog, EventRow) == 5
    with read(catalog.engine) as conn:
        entry_hits = conn.execute(select(CacheEntry.hits)).scalar_one()
        kinds = conn.execute(select(EventRow.kind, func.count()).group_by(EventRow.kind)).all()
        run_ids = conn.execute(select(EventRow.run_id).where(EventRow.run_id.is_not(None))).all()
    assert entry_hits == 4
    assert sorted(kinds) == [("hit", 4), ("miss", 1)]
    assert run_ids == [("r1",)]
    catalog.record_events([])


def test_events_keep_the_time_they_happened(catalog: Catalog) -> None:
    at = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    catalog.record_events([UsageEvent("miss", key_id(9), "f", None, 1.0, 1.0, at=at)])
    with read(catalog.engine) as conn:
        assert conn.execute(select(EventRow.at)).scalar_one() == at


def test_recent_entries_follow_the_latest_use(catalog: Catalog) -> None:
    pubs = [publication(i, feature="sessions") for i in range(3)]
    for pub in pubs:
        catalog.publish(*pub.args())
    catalog.publish(*publication(9, feature="other").args())
    base = datetime(2024, 1, 1, tzinfo=UTC)
    order = [0, 1, 0]  # key 0 was used last, then key 1; key 2 only published
    catalog.record_events(
        [
            UsageEvent(
                "hit",
                pubs[i].entry.key_id,
                "sessions",
                None,
                0.1,
                1.0,
                at=base + timedelta(minutes=n),
            )
            for n, i in enumerate(order)
        ]
    )
    keys = [e.key_id for e in catalog.recent_entries("sessions")]
    assert keys == [pubs[0].entry.key_id, pubs[1].entry.key_id]
    keys = [e.key_id for e in catalog.recent_entries("sessions", limit=5)]
    assert keys == [pubs[0].entry.key_id, pubs[1].entry.key_id, pubs[2].entry.key_id]
    assert catalog.recent_entries("nobody") == []


def test_list_artifacts_sorts_and_filters(catalog: Catalog) -> None:
    small = publication(1, feature="a", size_bytes=10)
    big = publication(2, feature="b", size_bytes=5000)
    shared = publication(3, artifact=2, feature="a")  # feature a also produced big's content
    for pub in (small, big, shared):
        catalog.publish(*pub.args())
        next_tick(catalog)  # created_at and last_used_at tell them apart
    catalog.record_event(
        "hit",
        key_id=small.entry.key_id,
        feature="a",
        artifact_id=small.artifact.artifact_id,
        duration_seconds=0.1,
        compute_seconds=1,
    )

    by_size = catalog.list_artifacts(sort="size")
    assert [(a.artifact_id, names) for a, names in by_size] == [
        (artifact_id(2), ["a", "b"]),
        (artifact_id(1), ["a"]),
    ]
    assert catalog.list_artifacts(sort="used")[0][0].artifact_id == artifact_id(1)
    assert catalog.list_artifacts(sort="created")[0][0].artifact_id == artifact_id(2)
    assert [a.artifact_id for a, _ in catalog.list_artifacts(feature="b")] == [artifact_id(2)]
    assert catalog.list_artifacts(feature="b")[0][1] == ["a", "b"]
    catalog.forget_artifact(artifact_id(1))
    assert [a.artifact_id for a, _ in catalog.list_artifacts()] == [artifact_id(2)]
    with pytest.raises(ValueError, match="sort"):
        catalog.list_artifacts(sort="name")  # type: ignore[arg-type]


def test_resolve_ref_takes_unique_prefixes(catalog: Catalog) -> None:
    ids: list[str] = []
    i = 0
    while len({x[0] for x in ids}) == len(ids):  # find two ids sharing a first character
        pub = publication(i)
        catalog.publish(*pub.args())
        ids.append(pub.artifact.artifact_id)
        i += 1
    clash = ids[-1]
    other = next(x for x in ids[:-1] if x[0] == clash[0])
    assert catalog.resolve_ref(clash) == clash
    assert catalog.resolve_ref(clash[:20].upper()) == clash
    assert catalog.resolve_ref(f"  {other[:20]} ") == other
    with pytest.raises(AmbiguousReferenceError) as ambiguous:
        catalog.resolve_ref(clash[0])
    assert set(ambiguous.value.candidates) >= {clash, other}
    with pytest.raises(ArtifactNotFoundError):
        catalog.resolve_ref("zz-not-hex")
    with pytest.raises(ArtifactNotFoundError):
        catalog.resolve_ref("")
    with pytest.raises(ArtifactNotFoundError):
        catalog.resolve_ref(artifact_id("never published"))
    with pytest.raises(ArtifactNotFoundError):
        catalog.resolve_ref("%")  # no LIKE wildcards sneak in
    catalog.forget_artifact(clash)
    assert catalog.resolve_ref(clash[0]) == other  # tombstoned ids are not candidates


def test_lineage_and_downstream(catalog: Catalog) -> None:
    upstream = publication("clicks")
    downstream = publication("sessions", upstream=upstream.artifact.artifact_id)
    catalog.publish(*upstream.args())
    catalog.publish(*downstream.args())
    edges = catalog.lineage_of(downstream.artifact.artifact_id)
    assert edges == sorted(downstream.lineage, key=lambda e: e.argument)
    assert catalog.downstream_of(upstream.artifact.artifact_id) == [downstream.artifact.artifact_id]
    assert catalog.downstream_of(downstream.artifact.artifact_id) == []
    assert [e.key_id for e in catalog.entries_for_artifact(upstream.artifact.artifact_id)] == [
        upstream.entry.key_id
    ]


def test_pins(catalog: Catalog) -> None:
    pub = publication(1)
    catalog.publish(*pub.args())
    catalog.set_pinned(pub.artifact.artifact_id, True)
    assert catalog.get_artifact(pub.artifact.artifact_id).pinned is True  # type: ignore[union-attr]
    catalog.set_pinned(pub.artifact.artifact_id, False)
    assert catalog.get_artifact(pub.artifact.artifact_id).pinned is False  # type: ignore[union-attr]
    with pytest.raises(ArtifactNotFoundError):
        catalog.set_pinned(artifact_id("absent"), True)


def test_run_usages(catalog: Catalog) -> None:
    pub = publication(1)
    catalog.publish(*pub.args())
    aid = pub.artifact.artifact_id
    catalog.record_run_usage("run-1", aid, "input", "http://mlflow:5000")
    catalog.record_run_usage("run-1", aid, "input", "http://mlflow:5000")  # idempotent
    catalog.record_run_usage("run-2", aid, "output", "http://mlflow:5000")
    runs = catalog.runs_for_artifact(aid)
    assert [(r.run_id, r.context) for r in runs] == [("run-1", "input"), ("run-2", "output")]
    assert all(r.at.tzinfo is not None and r.tracking_uri == "http://mlflow:5000" for r in runs)
    assert catalog.runs_for_artifact(artifact_id("absent")) == []


def test_fingerprint_aliases(catalog: Catalog) -> None:
    assert catalog.lookup_alias("md5", "d41d8cd98f00b204e9800998ecf8427e") is None
    catalog.add_alias("md5", "d41d8cd98f00b204e9800998ecf8427e", "xxh3_128:99aa")
    catalog.add_alias("md5", "d41d8cd98f00b204e9800998ecf8427e", "xxh3_128:other")  # first stays
    assert catalog.lookup_alias("md5", "d41d8cd98f00b204e9800998ecf8427e") == "xxh3_128:99aa"


def test_naive_datetimes_are_refused(catalog: Catalog) -> None:
    naive = datetime(2024, 1, 1)  # noqa: DTZ001 (the point of the test)
    with pytest.raises(exc.StatementError, match="naive"):
        catalog.record_events([UsageEvent("hit", key_id(1), "f", None, 1.0, 1.0, at=naive)])


# Text the databases can hold: PostgreSQL refuses NUL in text and JSON.
_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(feature=_TEXT.filter(bool), components=st.dictionaries(_TEXT, _JSON, max_size=5))
def test_any_feature_name_and_components_round_trip(
    catalog: Catalog, feature: str, components: dict[str, object]
) -> None:
    # The catalog outlives the examples: every example gets a key of its own.
    example = json.dumps([feature, components], sort_keys=True)
    pub = publication(example, feature=feature)
    entry = replace(pub.entry, components=components)
    hit = catalog.publish(entry, pub.artifact, pub.lineage, pub.code)
    assert hit.entry.feature == feature
    assert hit.entry.components == components
    assert catalog.lookup(entry.key_id) == hit
    with read(catalog.engine) as conn:  # bound as parameters, never spliced into SQL
        assert (
            conn.execute(
                text("SELECT count(*) FROM features WHERE name = :n"), {"n": feature}
            ).scalar()
            == 1
        )


def test_newest_entries_for_many_artifacts_agree_with_one_at_a_time(catalog: Catalog) -> None:
    pubs = [publication(1, "shared"), publication(2, "shared"), publication(3), publication(4)]
    for pub in pubs:
        catalog.publish(*pub.args())
    ids = [artifact_id("shared"), artifact_id(3), artifact_id(4), artifact_id("never")]
    newest = catalog.newest_entries_for_artifacts(ids)
    assert set(newest) == set(ids[:3])  # an artifact no entry names is left out
    for wanted in ids[:3]:
        assert newest[wanted] == catalog.entries_for_artifact(wanted)[0]
    assert catalog.newest_entries_for_artifacts([]) == {}
