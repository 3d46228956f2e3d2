"""The GC planner over composite results (pure: candidates in, plan out), then the marking
transaction on a real catalog (SQLite and PostgreSQL): a part of a kept composite is never
deleted, whatever the policy says of the part alone, and a composite is collected whole."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featurecache.catalog import Catalog
from featurecache.catalog.records import ArtifactRecord, GcCandidate
from featurecache.ops.gc_plan import (
    KEEP_LAST_FLOOR,
    PART_OF_LIVE_COMPOSITE,
    PINNED,
    GcPolicy,
    plan_gc,
    recheck,
)
from tests.catalog.factories import artifact_id, publication

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def candidate(name: str, age_days: float, **changes: object) -> GcCandidate:
    created = NOW - age_days * DAY
    values: dict[str, object] = {
        "artifact_id": artifact_id(name),
        "features": (),
        "size_bytes": 100,
        "created_at": created,
        "last_used_at": created,
    }
    values.update(changes)
    return GcCandidate(**values)  # type: ignore[arg-type]


def composite(
    name: str, parts: list[GcCandidate], age_days: float, **changes: object
) -> GcCandidate:
    values: dict[str, object] = {
        "features": ("split",),
        "parts": tuple(p.artifact_id for p in parts),
        "size_bytes": sum(p.size_bytes for p in parts),
    }
    return candidate(name, age_days, **{**values, **changes})


def listed_by(part: GcCandidate, *composites: GcCandidate) -> GcCandidate:
    return replace(part, composites=tuple(c.artifact_id for c in composites))


def split_call(name: str, age_days: float, **changes: object) -> list[GcCandidate]:
    """A composite of two parts (as the catalog snapshots them), composite first."""
    parts = [candidate(f"{name}-part{i}", age_days) for i in range(2)]
    whole = composite(name, parts, age_days, **changes)
    return [whole, *(listed_by(p, whole) for p in parts)]


def test_keep_last_keeps_the_parts_of_the_composites_it_keeps() -> None:
    old, new = split_call("old", 3), split_call("new", 2)
    plan = plan_gc([*old, *new], GcPolicy(keep_last=1), NOW)
    assert {c.artifact_id for c in plan.delete} == {c.artifact_id for c in old}
    assert plan.keep_reasons[new[0].artifact_id] == "among the last 1 of feature split"
    assert {plan.keep_reasons[p.artifact_id] for p in new[1:]} == {PART_OF_LIVE_COMPOSITE}
    assert plan.kept_by == {KEEP_LAST_FLOOR: 1, PART_OF_LIVE_COMPOSITE: 2}
    assert plan.bytes_freed == 200  # the two part files; the composite has none
    assert plan.bytes_remaining == 200


def test_an_age_policy_never_takes_a_part_of_a_recent_composite() -> None:
    # The parts are old (shared with an old call), the composite listing them is recent.
    shared = [candidate(f"p{i}", 30) for i in range(2)]
    recent = composite("recent", shared, 0.5)
    plan = plan_gc(
        [recent, *(listed_by(p, recent) for p in shared)],
        GcPolicy(older_than=DAY, grace=timedelta(0)),
        NOW,
    )
    assert plan.delete == ()


def test_a_part_shared_by_a_collected_and_a_kept_composite_stays() -> None:
    shared = candidate("shared", 10)
    mine, theirs = candidate("mine", 10), candidate("theirs", 10)
    old = composite("old", [shared, mine], 10)
    pinned = composite("pinned", [shared, theirs], 10, pinned=True)
    plan = plan_gc(
        [
            old,
            pinned,
            listed_by(shared, old, pinned),
            listed_by(mine, old),
            listed_by(theirs, pinned),
        ],
        GcPolicy(older_than=DAY),
        NOW,
    )
    assert {c.artifact_id for c in plan.delete} == {old.artifact_id, mine.artifact_id}
    assert plan.keep_reasons[pinned.artifact_id] == PINNED
    assert plan.keep_reasons[shared.artifact_id] == PART_OF_LIVE_COMPOSITE
    assert plan.keep_reasons[theirs.artifact_id] == PART_OF_LIVE_COMPOSITE


def test_a_part_with_its_own_protection_keeps_its_own_reason() -> None:
    whole, *parts = split_call("c", 10)
    parts[0] = replace(parts[0], pinned=True)
    plan = plan_gc([whole, *parts], GcPolicy(older_than=DAY), NOW)
    assert plan.keep_reasons == {parts[0].artifact_id: PINNED}


def test_max_size_evicts_a_composite_with_the_parts_only_it_held() -> None:
    old, new = split_call("old", 5), split_call("new", 4)
    plan = plan_gc([*old, *new], GcPolicy(max_size=250, grace=timedelta(0)), NOW)
    assert {c.artifact_id for c in plan.delete} == {c.artifact_id for c in old}
    reasons = {plan.delete_reasons[p.artifact_id] for p in old[1:]}
    assert reasons == {f"evicted by --max-size with its composite {old[0].artifact_id[:12]}"}
    assert plan.bytes_remaining == 200 and plan.max_size_met


def test_a_composite_within_grace_protects_its_old_parts() -> None:
    parts = [candidate("p", 30)]
    young = composite("young", parts, 0.01)
    plan = plan_gc([young, listed_by(parts[0], young)], GcPolicy(keep_last=1), NOW)
    assert plan.delete == ()


def test_recheck_keeps_a_part_a_new_composite_lists() -> None:
    part = candidate("p", 30)
    assert recheck(part, GcPolicy(older_than=DAY), NOW) is None
    newly_listed = replace(part, composites=(artifact_id("new composite"),))
    assert recheck(newly_listed, GcPolicy(older_than=DAY), NOW) == PART_OF_LIVE_COMPOSITE


@st.composite
def catalogs(draw: st.DrawFn) -> list[GcCandidate]:
    """Random composites over a pool of parts (parts shared between composites)."""
    pool = [
        candidate(f"part{i}", draw(st.integers(0, 40)) / 4, pinned=draw(st.booleans()) and i == 0)
        for i in range(draw(st.integers(1, 6)))
    ]
    wholes = []
    for i in range(draw(st.integers(1, 4))):
        chosen = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
        wholes.append(
            composite(
                f"c{i}",
                chosen,
                draw(st.integers(0, 40)) / 4,
                features=(draw(st.sampled_from(["a", "b"])),),
                pinned=draw(st.sampled_from([False, False, True])),
            )
        )
    parts = [listed_by(p, *(w for w in wholes if p.artifact_id in w.parts)) for p in pool]
    return [*wholes, *parts]


policies = st.builds(
    GcPolicy,
    older_than=st.none() | st.integers(1, 10).map(lambda d: d * DAY),
    unused_for=st.none() | st.integers(1, 10).map(lambda d: d * DAY),
    keep_last=st.none() | st.integers(1, 2),
    max_size=st.none() | st.integers(0, 600),
    grace=st.sampled_from([timedelta(0), timedelta(hours=1)]),
)


@settings(max_examples=300, deadline=None)
@given(catalogs(), policies)
def test_no_kept_composite_ever_loses_a_part(
    candidates: list[GcCandidate], policy: GcPolicy
) -> None:
    plan = plan_gc(candidates, policy, NOW)
    deleted = {c.artifact_id for c in plan.delete}
    for kept in plan.keep:
        assert not set(kept.parts) & deleted, (kept.artifact_id, plan.delete_reasons)
    # and the plan is a fixed point: planning again over what is left deletes nothing new
    # that a kept composite holds
    left = [c for c in candidates if c.artifact_id not in deleted]
    live = {c.artifact_id for c in left}
    left = [replace(c, composites=tuple(x for x in c.composites if x in live)) for c in left]
    again = plan_gc(left, policy, NOW)
    for kept in again.keep:
        assert not set(kept.parts) & {c.artifact_id for c in again.delete}


# ----------------------------------------------------- the marking transaction, real catalog


@pytest.fixture
def catalog(any_clean_catalog_url: str) -> Iterator[Catalog]:
    opened = Catalog.open(any_clean_catalog_url)
    yield opened
    opened.close()


def _publish_composite(catalog: Catalog, key: str, part_names: list[str]) -> ArtifactRecord:
    base = publication(key, f"{key}-composite", feature="split")
    parts = [publication(name, feature="split").artifact for name in part_names]
    whole = replace(
        base.artifact,
        uri=f"composite:{base.artifact.artifact_id}",
        rows=0,
        columns=len(parts),
        schema=[],
        file_hash="",
        size_bytes=sum(p.size_bytes for p in parts),
        structure={
            "codec": {"root": {"t": "tuple", "items": []}},
            "kinds": ["polars"] * len(parts),
        },
    )
    entry = replace(base.entry, return_kind="composite")
    catalog.publish(entry, whole, base.lineage, base.code, parts)
    return whole


def test_a_composite_and_its_parts_are_marked_in_one_batch(catalog: Catalog) -> None:
    whole = _publish_composite(catalog, "k1", ["a", "b"])
    _, candidates = catalog.gc_snapshot()
    policy = GcPolicy(keep_last=1, grace=timedelta(0))
    # Parts first in the batch: the catalog still marks the composite before them.
    ordered = sorted(candidates, key=lambda c: bool(c.parts))
    outcome = catalog.mark_deleted(ordered, policy)
    assert set(outcome.marked) == {whole.artifact_id, artifact_id("a"), artifact_id("b")}
    assert outcome.kept == {}


def test_a_part_listed_by_a_composite_published_after_the_scan_is_kept(catalog: Catalog) -> None:
    old = _publish_composite(catalog, "k1", ["a", "b"])
    now, candidates = catalog.gc_snapshot()
    plan = plan_gc(
        candidates, GcPolicy(older_than=timedelta(seconds=1), grace=timedelta(0)), now + DAY
    )
    assert {c.artifact_id for c in plan.delete} == {
        old.artifact_id,
        artifact_id("a"),
        artifact_id("b"),
    }
    _publish_composite(catalog, "k2", ["b", "c"])  # shares part b, published meanwhile
    policy = GcPolicy(older_than=timedelta(seconds=1), grace=timedelta(0))
    outcome = catalog.mark_deleted(plan.delete, policy)
    assert outcome.kept == {artifact_id("b"): PART_OF_LIVE_COMPOSITE}
    assert set(outcome.marked) == {old.artifact_id, artifact_id("a")}
