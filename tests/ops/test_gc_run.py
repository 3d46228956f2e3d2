"""Garbage collection against a real catalog and store: the laws over random catalogs
(hypothesis), then the mark / re-check / sweep steps by example."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from featurecache.errors import ConfigError, StoreError
from featurecache.ops.gc_plan import CHANGED, GcPolicy
from featurecache.ops.gc_run import collect_garbage, plan_collection
from featurecache.ops.verify import UNSWEPT, verify_cache
from featurecache.store.local import LocalStore
from tests.ops.seed import Cache

HOUR = timedelta(hours=1)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    opened = Cache.create(tmp_path)
    yield opened
    opened.close()


# --------------------------------------------------------------------------- the laws

artifact_specs = st.fixed_dictionaries(
    {
        "features": st.lists(st.sampled_from("abc"), min_size=1, max_size=2, unique=True),
        "rows": st.integers(1, 300),
        "created_h": st.integers(0, 60),
        "used_h": st.none() | st.integers(0, 60),
        "pinned": st.sampled_from([False] * 5 + [True]),
        "leased": st.sampled_from([False] * 5 + [True]),
        "runs": st.sampled_from([False] * 3 + [True]),
    }
)
hours = st.integers(1, 60).map(lambda h: h * HOUR)
policies = st.builds(
    GcPolicy,
    older_than=st.none() | hours,
    unused_for=st.none() | hours,
    keep_last=st.none() | st.integers(1, 3),
    max_size=st.none() | st.integers(0, 30_000),
    grace=st.sampled_from([timedelta(0), HOUR, 24 * HOUR]),
    keep_used_by_runs=st.booleans(),
)


def _build(cache: Cache, specs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Publish one artifact per spec, aged half an hour off every whole-hour threshold."""
    by_id: dict[str, dict[str, Any]] = {}
    for index, spec in enumerate(specs):
        hits = [
            cache.publish(f"{index}-{feature}", feature=feature, content=index, rows=spec["rows"])
            for feature in spec["features"]
        ]
        artifact_id = hits[0].artifact.artifact_id
        created_ago = spec["created_h"] + 0.5
        used_ago = None if spec["used_h"] is None else min(spec["used_h"], spec["created_h"]) + 0.25
        cache.age(artifact_id, created_ago, used_ago)
        if spec["pinned"]:
            cache.catalog.set_pinned(artifact_id, True)
        if spec["leased"]:
            assert cache.catalog.try_acquire_lease(hits[0].entry.key_id, "computing", 3600)
        if spec["runs"]:
            cache.catalog.record_run_usage("run-1", artifact_id, "input", "http://mlflow")
        by_id[artifact_id] = {
            **spec,
            "created_ago": created_ago * HOUR,
            "used_ago": None if used_ago is None else used_ago * HOUR,
        }
    return by_id


def _protected(spec: dict[str, Any], policy: GcPolicy) -> bool:
    recent = spec["created_ago"] < policy.grace or (
        spec["used_ago"] is not None and spec["used_ago"] < policy.grace
    )
    runs = policy.keep_used_by_runs and spec["runs"]
    return bool(spec["pinned"] or spec["leased"] or runs or recent)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(specs=st.lists(artifact_specs, max_size=9), policy=policies)
def test_gc_laws_over_random_catalogs(specs: list[dict[str, Any]], policy: GcPolicy) -> None:
    assume(not policy.is_empty())
    with tempfile.TemporaryDirectory() as folder:
        cache = Cache.create(Path(folder))
        try:
            _check_laws(cache, _build(cache, specs), policy)
        finally:
            cache.close()


def _check_laws(cache: Cache, specs: dict[str, dict[str, Any]], policy: GcPolicy) -> None:
    snapshot = {c.artifact_id: c for c in cache.catalog.gc_snapshot()[1]}
    dry = collect_garbage(cache.catalog, cache.store, policy, dry_run=True)
    assert cache.live_ids() == set(specs) == cache.stored_ids()  # a dry run changes nothing

    real = collect_garbage(cache.catalog, cache.store, policy)
    deleted = [c.artifact_id for c in real.deleted]
    # --dry-run names exactly what the next real run deletes.
    assert [c.artifact_id for c in dry.deleted] == deleted
    assert real.kept_on_recheck == {} and real.failures == {}
    # Pinned, leased, recent (and, when asked, run-used) artifacts are never deleted.
    assert not [a for a in deleted if _protected(specs[a], policy)]
    if policy.keep_last is not None:
        for feature in "abc":
            newest = sorted(
                (c for c in snapshot.values() if feature in c.features),
                key=lambda c: (c.created_at, c.artifact_id),
                reverse=True,
            )[: policy.keep_last]
            assert not {c.artifact_id for c in newest} & set(deleted)
    # Each deletion was selected by a policy.
    if policy.max_size is None and not policy.keep_last_selects:
        for artifact_id in deleted:
            spec = specs[artifact_id]
            old = policy.older_than is not None and spec["created_ago"] > policy.older_than
            recency = spec["created_ago"] if spec["used_ago"] is None else spec["used_ago"]
            unused = policy.unused_for is not None and recency > policy.unused_for
            assert old or unused
    # Deleted means gone from catalog and store; everything else is untouched.
    survivors = set(specs) - set(deleted)
    assert cache.live_ids() == survivors == cache.stored_ids()
    assert {s.artifact_id for s in cache.catalog.artifact_states()} == survivors
    # --max-size is honoured whenever protected artifacts alone do not exceed it.
    if policy.max_size is not None:
        total = sum(snapshot[a].size_bytes for a in survivors)
        if real.plan.max_size_met:
            assert total <= policy.max_size
        else:
            floor = set(real.plan.keep_reasons) - {
                a for a, r in real.plan.keep_reasons.items() if r.startswith("fits")
            }
            assert survivors <= floor
    # A second run deletes nothing, and the cache is consistent.
    again = collect_garbage(cache.catalog, cache.store, policy)
    assert again.deleted == () and again.swept == () and again.files_removed == 0
    assert verify_cache(cache.catalog, cache.store, grace=timedelta(0)).clean


# --------------------------------------------------------------------------- by example


def test_gc_refuses_to_run_without_a_policy(cache: Cache) -> None:
    cache.publish(1)
    with pytest.raises(ConfigError, match="no policy given"):
        collect_garbage(cache.catalog, cache.store, GcPolicy(grace=timedelta(0)))
    with pytest.raises(ConfigError, match="no policy given"):
        plan_collection(cache.catalog, GcPolicy())
    assert len(cache.live_ids()) == 1


def test_gc_marks_then_removes_files_and_rows(cache: Cache) -> None:
    old = cache.publish("old").artifact.artifact_id
    new = cache.publish("new").artifact.artifact_id
    cache.age(old, 48)
    result = collect_garbage(cache.catalog, cache.store, GcPolicy(older_than=24 * HOUR))
    assert [c.artifact_id for c in result.deleted] == [old]
    assert result.files_removed == 1 and result.bytes_freed == result.deleted[0].size_bytes
    assert not cache.path(old).exists() and cache.path(new).exists()
    assert cache.catalog.lookup(cache.catalog.entries_for_artifact(new)[0].key_id) is not None
    assert cache.catalog.artifact_states([old]) == []
    json = result.to_json()
    assert json["deleted"][0]["artifact_id"] == old and json["dry_run"] is False
    assert json["deleted"][0]["reason"] == "selected by --older-than"


class TouchWhileMarking:
    """A progress hook that runs ``action`` when a phase starts: a deterministic
    interleaving of a concurrent reader or writer with the GC."""

    def __init__(self, phase: str, action: Any) -> None:
        self.phase = phase
        self.action = action

    def start(self, description: str, total: int) -> None:
        if description.startswith(self.phase):
            self.action()

    def advance(self, steps: int = 1) -> None:
        return None


def test_an_artifact_used_between_scan_and_mark_is_kept(cache: Cache) -> None:
    hit = cache.publish("busy")
    artifact_id = hit.artifact.artifact_id
    cache.age(artifact_id, 48)

    def use() -> None:
        cache.catalog.record_event(
            "hit", key_id=hit.entry.key_id, feature="sessions", artifact_id=artifact_id,
            duration_seconds=0.1, compute_seconds=1.5,
        )  # fmt: skip

    result = collect_garbage(
        cache.catalog,
        cache.store,
        GcPolicy(older_than=24 * HOUR, grace=timedelta(0)),
        progress=TouchWhileMarking("marking", use),
    )
    assert result.deleted == () and result.kept_on_recheck == {artifact_id: CHANGED}
    assert cache.path(artifact_id).exists() and cache.live_ids() == {artifact_id}


def test_a_row_revived_before_the_sweep_keeps_its_file(cache: Cache) -> None:
    artifact_id = cache.publish("revived").artifact.artifact_id
    cache.age(artifact_id, 48)
    result = collect_garbage(
        cache.catalog,
        cache.store,
        GcPolicy(older_than=24 * HOUR),
        # A writer republishes the same content between mark and sweep.
        progress=TouchWhileMarking("removing", lambda: cache.publish("revived")),
    )
    assert [c.artifact_id for c in result.deleted] == [artifact_id]
    assert result.files_removed == 0
    assert cache.path(artifact_id).exists() and cache.live_ids() == {artifact_id}


def test_a_crash_between_mark_and_sweep_is_swept_by_the_next_run(cache: Cache) -> None:
    artifact_id = cache.publish("crashed").artifact.artifact_id
    cache.age(artifact_id, 48)
    policy = GcPolicy(older_than=24 * HOUR)
    # A GC marks, then dies before removing files.
    plan = plan_collection(cache.catalog, policy)
    assert cache.catalog.mark_deleted(plan.delete, policy).marked == (artifact_id,)
    assert cache.path(artifact_id).exists()
    # Within the grace period the tombstone waits (a reader may be finishing with it) ...
    waiting = collect_garbage(cache.catalog, cache.store, policy)
    assert waiting.swept == () and cache.path(artifact_id).exists()
    report = verify_cache(cache.catalog, cache.store)
    assert report.clean and [f.kind for f in report.pending] == [UNSWEPT]
    # ... and goes with the next run after it.
    later = GcPolicy(older_than=24 * HOUR, grace=timedelta(0))
    swept = collect_garbage(cache.catalog, cache.store, later)
    assert swept.swept == (artifact_id,) and swept.files_removed == 1 and swept.deleted == ()
    assert not cache.path(artifact_id).exists()
    assert cache.catalog.artifact_states() == []
    dry = collect_garbage(cache.catalog, cache.store, later, dry_run=True)
    assert dry.swept == ()


class FailingDeletes(LocalStore):
    """Fault injection: a store that cannot delete (as with a read-only bucket policy)."""

    def delete(self, artifact_id: str) -> bool:
        raise StoreError(f"access denied deleting {artifact_id}")


def test_a_file_the_store_cannot_delete_is_reported_and_retried(cache: Cache) -> None:
    artifact_id = cache.publish("stuck").artifact.artifact_id
    cache.age(artifact_id, 48)
    policy = GcPolicy(older_than=24 * HOUR, grace=timedelta(0))
    result = collect_garbage(cache.catalog, FailingDeletes(cache.store.root), policy)
    assert list(result.failures) == [artifact_id]
    assert cache.catalog.tombstoned() == [artifact_id]  # kept for the next run
    retry = collect_garbage(cache.catalog, cache.store, policy)
    assert retry.swept == (artifact_id,) and not cache.path(artifact_id).exists()
