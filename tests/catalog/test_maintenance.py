"""GC, verify and stats support in the catalog (SQLite and PostgreSQL): snapshots with the
lease / run flags, marking with the re-check inside the transaction, sweeping tombstones, and
usage aggregates."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from featurecache.catalog.database import run_write
from featurecache.catalog.facade import Catalog, UsageEvent
from featurecache.catalog.models import Artifact
from featurecache.ops.gc_plan import (
    CHANGED,
    LEASED,
    PINNED,
    VANISHED,
    WITHIN_GRACE,
    GcCandidate,
    GcPolicy,
)
from tests.catalog.factories import artifact_id, key_id, publication

POLICY = GcPolicy(older_than=timedelta(hours=1), grace=timedelta(0))


def age(catalog: Catalog, artifact: str, hours: float) -> None:
    """Backdate an artifact's creation and last use by ``hours``."""
    when = catalog.now() - timedelta(hours=hours)
    run_write(
        catalog.engine,
        lambda conn: conn.execute(
            update(Artifact)
            .where(Artifact.artifact_id == artifact)
            .values(created_at=when, last_used_at=when)
        ),
        what="age",
    )


def snapshot_of(catalog: Catalog) -> dict[str, GcCandidate]:
    return {c.artifact_id: c for c in catalog.gc_snapshot()[1]}


def test_snapshot_flags_features_pins_leases_and_runs(catalog: Catalog) -> None:
    for i in range(4):
        catalog.publish(*publication(i, feature="a" if i < 2 else "b").args())
    shared = publication("shared", 0, feature="c")  # another feature, same artifact as 0
    catalog.publish(*shared.args())
    catalog.set_pinned(artifact_id(1), True)
    assert catalog.try_acquire_lease(key_id(2), "someone", 600)
    assert catalog.try_acquire_lease(key_id(3), "crashed", 0.001)  # expires at once
    catalog.record_run_usage("run-1", artifact_id(3), "input", "http://mlflow")
    catalog.forget_artifact(artifact_id(3))
    catalog.publish(*publication(3).args())  # revived: live again
    catalog.publish(*publication(9).args())
    catalog.forget_artifact(artifact_id(9))  # tombstoned: not a candidate

    now, candidates = catalog.gc_snapshot()
    by_id = {c.artifact_id: c for c in candidates}
    assert set(by_id) == {artifact_id(i) for i in range(4)}
    assert by_id[artifact_id(0)].features == ("a", "c")
    assert by_id[artifact_id(1)].pinned and not by_id[artifact_id(0)].pinned
    assert by_id[artifact_id(2)].leased
    assert not by_id[artifact_id(3)].leased  # its lease expired
    assert by_id[artifact_id(3)].used_by_runs and not by_id[artifact_id(2)].used_by_runs
    assert all(c.created_at <= now for c in candidates)


def test_mark_deleted_rechecks_each_candidate_in_its_transaction(catalog: Catalog) -> None:
    for i in range(6):
        catalog.publish(*publication(i).args())
        age(catalog, artifact_id(i), 5)
    planned = [snapshot_of(catalog)[artifact_id(i)] for i in range(6)]
    # Between the scan and the marking: a hit, a pin, a lease, a deletion, a new key.
    catalog.record_event(
        "hit", key_id=key_id(1), feature="sessions", artifact_id=artifact_id(1),
        duration_seconds=0.1, compute_seconds=2.5,
    )  # fmt: skip
    catalog.set_pinned(artifact_id(2), True)
    assert catalog.try_acquire_lease(key_id(3), "someone", 600)
    catalog.forget_artifact(artifact_id(4))
    catalog.publish(*publication("other", 5, feature="elsewhere").args())

    outcome = catalog.mark_deleted(planned, POLICY)

    assert outcome.marked == (artifact_id(0),)
    assert outcome.kept == {
        artifact_id(1): CHANGED,
        artifact_id(2): PINNED,
        artifact_id(3): LEASED,
        artifact_id(4): VANISHED,
        artifact_id(5): CHANGED,
    }
    assert catalog.lookup(key_id(0)) is None  # its entries went with the mark
    assert catalog.get_artifact(artifact_id(0)) is None
    assert catalog.lookup(key_id(1)) is not None
    assert catalog.tombstoned() == sorted([artifact_id(0), artifact_id(4)])


def test_a_hit_after_the_scan_keeps_the_artifact(catalog: Catalog) -> None:
    catalog.publish(*publication(1).args())
    age(catalog, artifact_id(1), 5)
    planned = snapshot_of(catalog)[artifact_id(1)]
    catalog.record_event(
        "hit", key_id=key_id(1), feature="sessions", artifact_id=artifact_id(1),
        duration_seconds=0.1, compute_seconds=2.5,
    )  # fmt: skip
    # Even with no grace at all, the use since the scan keeps it (CHANGED).
    assert catalog.mark_deleted([planned], POLICY).kept == {artifact_id(1): CHANGED}
    # With a grace period, the same use is a recent use.
    graceful = GcPolicy(older_than=timedelta(hours=1), grace=timedelta(hours=1))
    assert catalog.mark_deleted([planned], graceful).kept == {artifact_id(1): WITHIN_GRACE}


def test_sweeping_purges_only_rows_still_tombstoned(catalog: Catalog) -> None:
    for i in range(3):
        catalog.publish(*publication(i).args())
        catalog.forget_artifact(artifact_id(i))
    catalog.publish(*publication(2).args())  # revived by a publish
    assert catalog.tombstoned() == sorted([artifact_id(0), artifact_id(1)])
    assert catalog.tombstoned(min_age_seconds=3600) == []
    ids = [artifact_id(i) for i in range(3)]
    assert catalog.still_tombstoned(ids) == sorted([artifact_id(0), artifact_id(1)])
    assert catalog.purge(ids) == 2
    states = {s.artifact_id: s for s in catalog.artifact_states()}
    assert set(states) == {artifact_id(2)} and states[artifact_id(2)].live
    # A purged artifact can be published again from scratch.
    hit = catalog.publish(*publication(0).args())
    assert hit.artifact.artifact_id == artifact_id(0)


def test_drop_removes_live_rows_and_their_entries(catalog: Catalog) -> None:
    catalog.publish(*publication(1).args())
    catalog.publish(*publication(2).args())
    assert catalog.drop([artifact_id(1)]) == 1
    assert catalog.lookup(key_id(1)) is None
    assert [s.artifact_id for s in catalog.artifact_states()] == [artifact_id(2)]
    assert catalog.artifact_states([artifact_id(1)]) == []


def test_usage_stats_add_up_per_feature_and_in_total(catalog: Catalog) -> None:
    catalog.publish(*publication(1, feature="a").args())
    catalog.publish(*publication(2, feature="b").args())
    catalog.publish(*publication("b-dup", 1, feature="b").args())  # shares artifact 1
    events = [
        UsageEvent("miss", key_id(1), "a", artifact_id(1), 3.0, 2.5),
        UsageEvent("hit", key_id(1), "a", artifact_id(1), 0.1, 2.5),
        UsageEvent("hit", key_id(1), "a", artifact_id(1), 0.1, 2.5),
        UsageEvent("hit", key_id(2), "b", artifact_id(2), 0.1, 4.0),
        UsageEvent("miss", key_id("gone"), "c", None, 1.0, 1.0),
    ]
    catalog.record_events(events)
    names, usage, stored, total = catalog.usage_stats()
    assert names == ["a", "b", "c"]
    by_feature = {u.feature: u for u in usage}
    assert (by_feature["a"].hits, by_feature["a"].misses) == (2, 1)
    assert by_feature["a"].seconds_avoided == 5.0 and by_feature["a"].compute_seconds == 2.5
    assert (by_feature["b"].hits, by_feature["b"].seconds_avoided) == (1, 4.0)
    assert (by_feature["c"].hits, by_feature["c"].misses) == (0, 1)
    held = {s.feature: s for s in stored}
    assert (held["a"].artifacts, held["a"].size_bytes) == (1, 1000)
    assert (held["b"].artifacts, held["b"].size_bytes) == (2, 2000)
    assert (total.artifacts, total.size_bytes, total.compute_seconds) == (2, 2000, 5.0)


def test_code_versions_by_digest(catalog: Catalog) -> None:
    pub = publication(1, feature="a")
    catalog.publish(*pub.args())
    [code] = catalog.code_versions([pub.code.code_digest, "f" * 32])
    assert code == pub.code
