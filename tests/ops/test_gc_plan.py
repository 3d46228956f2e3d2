"""GC planning: the laws over random catalogs (hypothesis), then each policy by example."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featurecache.errors import ConfigError
from featurecache.ops.gc_plan import (
    CHANGED,
    LEASED,
    NOT_SELECTED,
    PINNED,
    USED_BY_RUNS,
    VANISHED,
    WITHIN_GRACE,
    WITHIN_MAX_SIZE,
    GcCandidate,
    GcPlan,
    GcPolicy,
    floor_reason,
    plan_gc,
    recheck,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MAX_SIZE_EVICTION = "evicted by --max-size (least recently used)"

# --------------------------------------------------------------------------- strategies


def _candidate(
    artifact_id: str,
    features: list[str],
    size: int,
    created_hours_ago: int,
    used_percent: int | None,
    flags: tuple[bool, bool, bool],
) -> GcCandidate:
    created_at = NOW - created_hours_ago * HOUR
    last_used_at = None
    if used_percent is not None:  # somewhere between creation and two hours from NOW
        last_used_at = created_at + (created_hours_ago + 2) * used_percent // 100 * HOUR
    return GcCandidate(
        artifact_id=artifact_id,
        features=tuple(features),
        size_bytes=size,
        created_at=created_at,
        last_used_at=last_used_at,
        pinned=flags[0],
        leased=flags[1],
        used_by_runs=flags[2],
    )


# Random artifacts around NOW: hour-granular times (so ties happen), some in the future.
candidates = st.builds(
    _candidate,
    st.text("0123456789abcdef", min_size=3, max_size=3),
    st.lists(st.sampled_from("abcd"), max_size=3, unique=True),
    st.integers(0, 1000),
    st.integers(-2, 60 * 24),
    st.none() | st.integers(0, 100),
    st.tuples(  # pinned, leased, used_by_runs: mostly not, so that there is work to do
        st.sampled_from([False] * 7 + [True]),
        st.sampled_from([False] * 7 + [True]),
        st.sampled_from([False] * 3 + [True]),
    ),
)
catalogs = st.lists(candidates, max_size=20, unique_by=lambda c: c.artifact_id)


spans = st.none() | st.integers(1, 60 * 24).map(lambda hours: hours * HOUR)
policies_without_budget = st.builds(
    GcPolicy,
    older_than=spans,
    unused_for=spans,
    keep_last=st.none() | st.integers(1, 4),
    grace=st.sampled_from([timedelta(0), HOUR, DAY]),
    keep_used_by_runs=st.booleans(),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[GcCandidate], GcPolicy]:
    """A catalog and a policy whose budget (if any) is a share of the catalog's total size, so
    that budgets that bind, that fit and that cannot be met are all common."""
    catalog = draw(catalogs)
    policy = draw(policies_without_budget)
    percent = draw(st.none() | st.integers(0, 110))
    if percent is not None:
        total = sum(c.size_bytes for c in catalog)
        policy = replace(policy, max_size=total * percent // 100)
    return catalog, policy


# --------------------------------------------------------------------------- oracles


def _within_grace(c: GcCandidate, grace: timedelta) -> bool:
    times = [c.created_at] + ([c.last_used_at] if c.last_used_at is not None else [])
    return any(NOW - t < grace for t in times)


def _hard_protected(c: GcCandidate, policy: GcPolicy) -> bool:
    return (
        c.pinned
        or c.leased
        or (policy.keep_used_by_runs and c.used_by_runs)
        or _within_grace(c, policy.grace)
    )


def _floor_ids(catalog: list[GcCandidate], keep_last: int | None) -> set[str]:
    if keep_last is None:
        return set()
    floor = set()
    for feature in "abcd":
        members = [c for c in catalog if feature in c.features]
        members.sort(key=lambda c: (c.created_at, c.artifact_id), reverse=True)
        floor |= {c.artifact_id for c in members[:keep_last]}
    return floor


def _recency(c: GcCandidate) -> datetime:
    return c.created_at if c.last_used_at is None else max(c.created_at, c.last_used_at)


def _ids(cs: tuple[GcCandidate, ...] | list[GcCandidate]) -> set[str]:
    return {c.artifact_id for c in cs}


# --------------------------------------------------------------------------- laws


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_plan_laws(scenario: tuple[list[GcCandidate], GcPolicy]) -> None:
    catalog, policy = scenario
    plan = plan_gc(catalog, policy, NOW)
    deleted, kept = _ids(plan.delete), _ids(plan.keep)
    by_id = {c.artifact_id: c for c in catalog}

    # A partition of the catalog, every kept artifact with a reason, every deleted one too.
    assert deleted | kept == set(by_id) and not deleted & kept
    assert set(plan.keep_reasons) == kept and set(plan.delete_reasons) == deleted
    assert plan.bytes_freed == sum(c.size_bytes for c in plan.delete)
    assert plan.bytes_remaining == sum(c.size_bytes for c in plan.keep)

    # Never a protected artifact: pinned, leased, within grace, used by runs (when asked).
    for c in plan.delete:
        assert not _hard_protected(c, policy), c
        assert recheck(c, policy, NOW, planned=c) is None

    # The keep_last floor holds against every policy, max_size included.
    assert not deleted & _floor_ids(catalog, policy.keep_last)
    if policy.keep_last is not None:
        for c in plan.delete:
            for feature in c.features:
                newer_kept = [
                    k for k in plan.keep if feature in k.features and k.created_at >= c.created_at
                ]
                assert len(newer_kept) >= policy.keep_last

    # Selection: exactly the unprotected artifacts that a policy selects, plus max-size evictions.
    protected = {c.artifact_id for c in catalog if _hard_protected(c, policy)}
    protected |= _floor_ids(catalog, policy.keep_last)
    keep_last_alone = policy.keep_last is not None and (
        policy.older_than is None and policy.unused_for is None and policy.max_size is None
    )
    selected = {
        c.artifact_id
        for c in catalog
        if c.artifact_id not in protected
        and (
            (policy.older_than is not None and c.created_at < NOW - policy.older_than)
            or (policy.unused_for is not None and _recency(c) < NOW - policy.unused_for)
            or keep_last_alone
        )
    }
    assert selected <= deleted
    evicted = deleted - selected
    assert all(plan.delete_reasons[i] == MAX_SIZE_EVICTION for i in evicted)
    if policy.max_size is None:
        assert not evicted
    if policy.is_empty():
        assert not deleted

    # max_size: honoured when possible; otherwise everything unprotected went.
    if policy.max_size is not None:
        assert plan.max_size_met == (plan.bytes_remaining <= policy.max_size)
        if not plan.max_size_met:
            assert kept <= protected
        # LRU order: every eviction is less recently used than every unprotected survivor.
        survivors = [by_id[i] for i in kept - protected]
        for e in (by_id[i] for i in evicted):
            for s in survivors:
                assert (_recency(e), e.created_at, e.artifact_id) < (
                    _recency(s),
                    s.created_at,
                    s.artifact_id,
                )
        # And no more than needed: the last eviction was still required to fit.
        if evicted:
            last = max(
                (by_id[i] for i in evicted),
                key=lambda c: (_recency(c), c.created_at, c.artifact_id),
            )
            assert plan.bytes_remaining + last.size_bytes > policy.max_size
    else:
        assert plan.max_size_met

    # The whole plan is JSON.
    assert json.loads(json.dumps(plan.to_json()))["bytes_freed"] == plan.bytes_freed


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_second_run_deletes_nothing(scenario: tuple[list[GcCandidate], GcPolicy]) -> None:
    catalog, policy = scenario
    first = plan_gc(catalog, policy, NOW)
    second = plan_gc(list(first.keep), policy, NOW)
    assert second.delete == ()
    assert second.keep_reasons == first.keep_reasons
    assert second.bytes_remaining == first.bytes_remaining
    assert second.max_size_met == first.max_size_met


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_plan_is_deterministic(
    scenario: tuple[list[GcCandidate], GcPolicy], rng: random.Random
) -> None:
    catalog, policy = scenario
    shuffled = list(catalog)
    rng.shuffle(shuffled)
    first, again = plan_gc(catalog, policy, NOW), plan_gc(shuffled, policy, NOW)
    assert first == again
    assert list(first.keep_reasons) == list(again.keep_reasons)
    assert json.dumps(first.to_json()) == json.dumps(again.to_json())


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_recheck_flips_when_a_candidate_becomes_protected(
    scenario: tuple[list[GcCandidate], GcPolicy],
) -> None:
    catalog, policy = scenario
    plan = plan_gc(catalog, policy, NOW)
    later = NOW + timedelta(minutes=5)
    for c in plan.delete:
        assert recheck(None, policy, later, planned=c) == VANISHED
        assert recheck(replace(c, pinned=True), policy, later, planned=c) == PINNED
        assert recheck(replace(c, leased=True), policy, later, planned=c) == LEASED
        used_now = replace(c, last_used_at=later)
        expected = WITHIN_GRACE if policy.grace > timedelta(0) else CHANGED
        assert recheck(used_now, policy, later, planned=c) == expected
        assert (
            recheck(replace(c, features=(*c.features, "new")), policy, later, planned=c) == CHANGED
        )
        ran = replace(c, used_by_runs=True)
        assert recheck(ran, policy, later, planned=c) == (
            USED_BY_RUNS if policy.keep_used_by_runs else None
        )


# --------------------------------------------------------------------------- by example


def art(
    artifact_id: str,
    created_days_ago: float,
    *,
    features: tuple[str, ...] = ("f",),
    size: int = 100,
    used_days_ago: float | None = None,
    **flags: bool,
) -> GcCandidate:
    return GcCandidate(
        artifact_id=artifact_id,
        features=features,
        size_bytes=size,
        created_at=NOW - created_days_ago * DAY,
        last_used_at=None if used_days_ago is None else NOW - used_days_ago * DAY,
        **flags,
    )


def deleted_ids(plan: GcPlan) -> list[str]:
    return [c.artifact_id for c in plan.delete]


def test_older_than_alone_deletes_by_creation_time() -> None:
    catalog = [art("old", 10, used_days_ago=0.5 + 0.1), art("new", 3), art("edge", 7)]
    plan = plan_gc(catalog, GcPolicy(older_than=7 * DAY), NOW)
    # Used recently but created long ago: older_than looks at creation only.
    assert deleted_ids(plan) == ["old"]
    assert plan.delete_reasons == {"old": "selected by --older-than"}
    assert plan.keep_reasons == {"edge": NOT_SELECTED, "new": NOT_SELECTED}  # "before" is strict
    assert (plan.bytes_freed, plan.bytes_remaining, plan.max_size_met) == (100, 200, True)


def test_unused_for_alone_uses_last_use_or_creation() -> None:
    catalog = [
        art("used-lately", 30, used_days_ago=2),
        art("used-long-ago", 30, used_days_ago=20),
        art("never-used-old", 15),
        art("never-used-new", 5),
    ]
    plan = plan_gc(catalog, GcPolicy(unused_for=10 * DAY), NOW)
    assert deleted_ids(plan) == ["used-long-ago", "never-used-old"]  # least recently used first
    assert set(plan.keep_reasons) == {"used-lately", "never-used-new"}


def test_keep_last_alone_deletes_outside_the_last_n_of_every_feature() -> None:
    catalog = [art(f"f{i}", 10 - i) for i in range(5)]  # f4 is the newest
    catalog += [art("shared", 20, features=("f", "g")), art("g1", 5, features=("g",))]
    catalog += [art("orphan", 20, features=())]
    plan = plan_gc(catalog, GcPolicy(keep_last=2), NOW)
    # "shared" is outside f's last 2 but among g's: kept. No feature points to "orphan".
    assert sorted(deleted_ids(plan)) == ["f0", "f1", "f2", "orphan"]
    assert plan.keep_reasons == {
        "f3": floor_reason(2, "f"),
        "f4": floor_reason(2, "f"),
        "g1": floor_reason(2, "g"),
        "shared": "among the last 2 of feature g",
    }


def test_keep_last_is_a_floor_when_combined() -> None:
    catalog = [art("v1", 40), art("v2", 35), art("v3", 30), art("v4", 2)]
    plan = plan_gc(catalog, GcPolicy(older_than=7 * DAY, keep_last=2), NOW)
    # v3 is old but among the last 2; v4 is new. Only v1 and v2 are old and outside the floor.
    assert deleted_ids(plan) == ["v1", "v2"]
    assert plan.keep_reasons == {"v3": floor_reason(2, "f"), "v4": floor_reason(2, "f")}
    # Without an old-enough artifact, combined keep_last deletes nothing by itself.
    plan = plan_gc(catalog, GcPolicy(older_than=60 * DAY, keep_last=1), NOW)
    assert deleted_ids(plan) == []
    assert plan.keep_reasons["v1"] == NOT_SELECTED


def test_keep_last_counts_protected_artifacts() -> None:
    catalog = [art("v1", 40), art("v2", 35), art("v3", 30, pinned=True)]
    plan = plan_gc(catalog, GcPolicy(keep_last=1), NOW)
    assert deleted_ids(plan) == ["v1", "v2"]
    assert plan.keep_reasons == {"v3": PINNED}


def test_max_size_alone_evicts_least_recently_used_until_it_fits() -> None:
    catalog = [
        art("a", 50, used_days_ago=1),
        art("b", 40, used_days_ago=30),
        art("c", 30),  # never used: its creation counts, a tie with b and d
        art("d", 35, used_days_ago=30),  # same last use as b, created later than b
        art("e", 60, used_days_ago=20),
    ]
    plan = plan_gc(catalog, GcPolicy(max_size=250), NOW)
    assert deleted_ids(plan) == ["b", "d", "c"]
    assert plan.delete_reasons["b"] == MAX_SIZE_EVICTION
    assert plan.keep_reasons == {"a": WITHIN_MAX_SIZE, "e": WITHIN_MAX_SIZE}
    assert (plan.bytes_freed, plan.bytes_remaining, plan.max_size_met) == (300, 200, True)
    # Exactly at the budget: nothing to do.
    assert deleted_ids(plan_gc(catalog, GcPolicy(max_size=500), NOW)) == []


def test_max_size_ties_break_by_artifact_id() -> None:
    catalog = [art(name, 10) for name in ("z", "m", "a")]
    assert deleted_ids(plan_gc(catalog, GcPolicy(max_size=100), NOW)) == ["a", "m"]


def test_max_size_cannot_be_met_because_of_protected_artifacts() -> None:
    catalog = [
        art("pinned", 50, size=400, pinned=True),
        art("fresh", 0.01, size=300),
        art("latest", 40, size=200, features=("g",)),
        art("old", 60, size=100, features=("g",)),
    ]
    plan = plan_gc(catalog, GcPolicy(max_size=500, keep_last=1), NOW)
    assert deleted_ids(plan) == ["old"]
    assert plan.keep_reasons == {
        "fresh": WITHIN_GRACE,
        "latest": floor_reason(1, "g"),
        "pinned": PINNED,
    }
    assert (plan.bytes_remaining, plan.max_size_met) == (900, False)


def test_selection_and_budget_combine() -> None:
    catalog = [art("old", 100, size=100), art("b", 5, size=300), art("c", 4, size=300)]
    plan = plan_gc(catalog, GcPolicy(older_than=30 * DAY, max_size=350), NOW)
    assert plan.delete_reasons == {"old": "selected by --older-than", "b": MAX_SIZE_EVICTION}
    assert deleted_ids(plan) == ["old", "b"]


def test_protections() -> None:
    catalog = [
        art("pinned", 100, pinned=True),
        art("leased", 100, leased=True),
        art("run", 100, used_by_runs=True),
        art("created", 0.5 / 24),  # 30 minutes ago
        art("used", 100, used_days_ago=0.5 / 24),
        art("future", -1),  # a writer's clock ahead of ours
        art("gone", 100),
    ]
    policy = GcPolicy(older_than=DAY, unused_for=DAY, max_size=0, keep_used_by_runs=True)
    plan = plan_gc(catalog, policy, NOW)
    assert deleted_ids(plan) == ["gone"]
    assert plan.keep_reasons == {
        "created": WITHIN_GRACE,
        "future": WITHIN_GRACE,
        "leased": LEASED,
        "pinned": PINNED,
        "run": USED_BY_RUNS,
        "used": WITHIN_GRACE,
    }
    # used_by_runs protects only when asked to; grace is configurable.
    plan = plan_gc(catalog, replace(policy, keep_used_by_runs=False, grace=timedelta(0)), NOW)
    assert deleted_ids(plan) == ["gone", "run", "used", "created"]


def test_empty_policy_is_refused_by_the_cli_and_deletes_nothing() -> None:
    policy = GcPolicy()
    assert policy.is_empty()
    assert "--older-than, --unused-for, --keep-last, --max-size" in GcPolicy.empty_message()
    assert plan_gc([art("a", 100)], policy, NOW).delete == ()
    assert not GcPolicy(max_size=0).is_empty()


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"older_than": timedelta(0)}, "--older-than"),
        ({"unused_for": -DAY}, "--unused-for"),
        ({"keep_last": 0}, "--keep-last"),
        ({"max_size": -1}, "--max-size"),
        ({"grace": -HOUR}, "--grace"),
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, object], option: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GcPolicy(**kwargs)  # type: ignore[arg-type]
    assert caught.value.setting == option


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_gc([], GcPolicy(older_than=DAY), datetime(2025, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        GcCandidate("a", ("f",), 1, datetime(2025, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="negative size"):
        GcCandidate("a", ("f",), -1, NOW)
    with pytest.raises(ValueError, match="listed twice"):
        plan_gc([art("a", 1), art("a", 2)], GcPolicy(older_than=DAY), NOW)


def test_recheck_without_snapshot_checks_protections_only() -> None:
    policy = GcPolicy(unused_for=DAY)
    candidate = art("a", 10, used_days_ago=5)
    assert recheck(candidate, policy, NOW) is None
    assert recheck(replace(candidate, last_used_at=NOW - 2 * DAY), policy, NOW) is None
    assert recheck(replace(candidate, last_used_at=NOW - timedelta(minutes=1)), policy, NOW) == (
        WITHIN_GRACE
    )
    # A snapshot lets recheck notice a use that the grace period alone would not catch.
    assert (
        recheck(replace(candidate, last_used_at=NOW - 2 * DAY), policy, NOW, planned=candidate)
        == CHANGED
    )
    # Losing a feature (an entry removed) does not save it.
    assert recheck(replace(candidate, features=()), policy, NOW, planned=candidate) is None


def test_to_json_shape() -> None:
    plan = plan_gc([art("a", 10), art("b", 1)], GcPolicy(older_than=7 * DAY), NOW)
    data = plan.to_json()
    assert data["policy"]["older_than_seconds"] == 7 * 86400
    assert data["policy"]["grace_seconds"] == 3600
    assert [d["artifact_id"] for d in data["delete"]] == ["a"]
    assert data["delete"][0]["reason"] == "selected by --older-than"
    assert data["delete"][0]["created_at"] == (NOW - 10 * DAY).isoformat()
    assert data["keep"] == [{**art("b", 1).to_json(), "reason": NOT_SELECTED}]
    assert data["now"] == NOW.isoformat()


def test_the_plan_counts_what_kept_each_artifact_by_kind() -> None:
    # The CLI's summary reads these counts; it never parses the reasons' wording back.
    from featurecache.ops.gc_plan import KEEP_LAST_FLOOR, NOT_SELECTED, PINNED

    old = NOW - timedelta(days=30)
    candidates = [
        GcCandidate("a1", ("f",), 1, old),
        GcCandidate("a2", ("f",), 1, old - timedelta(days=1)),
        GcCandidate("b1", ("g",), 1, old),
        GcCandidate("p1", ("h",), 1, old, pinned=True),
    ]
    plan = plan_gc(candidates, GcPolicy(keep_last=1, older_than=timedelta(days=365)), NOW)
    assert plan.kept_by == {KEEP_LAST_FLOOR: 2, NOT_SELECTED: 1, PINNED: 1}
    assert sum(plan.kept_by.values()) == len(plan.keep)
