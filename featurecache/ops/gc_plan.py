"""Garbage-collection planning: which artifacts a policy deletes, and why every other one stays.

Pure (no I/O, no clock): the catalog hands in a snapshot of every artifact as a ``GcCandidate``
plus the database's ``now``; ``plan_gc`` returns a deterministic ``GcPlan``. The catalog then
marks the plan's artifacts deleted in one transaction, calling ``recheck`` on each with fresh
data (Bazel's re-stat before delete, done in SQL), and removes blobs only later. Orphan blobs
are fsck's job, never GC's.

How the policies combine:

1. **Protected** artifacts are never deleted, whatever the policy: pinned ones, leased ones (a
   caller holds an active lease on a key that points to it), ones created *or* used within
   ``grace`` of ``now``, ones an MLflow run used when ``keep_used_by_runs``, and, when
   ``keep_last=N`` is given, the N most recently created artifacts of each feature (a retention
   floor, as in git/docker prune; counted among all of the feature's artifacts, protected ones
   included; ties in ``created_at`` go to the larger ``artifact_id``). An artifact belonging
   to several features is floored if it is among the last N of any of them; one that no
   feature points to any more is outside every floor.
2. **Selection**: an unprotected artifact is deleted when it was created before
   ``now - older_than`` OR was last used (created, if never used) before ``now - unused_for``.
   ``keep_last`` given with no other policy selects every unprotected artifact (i.e. everything
   outside the last N of each of its features); combined with other policies it only protects.
3. **Budget**: then, if ``max_size`` is given and the artifacts left exceed it, unprotected
   survivors are deleted least recently used first (ties: older ``created_at``, then smaller
   ``artifact_id``) until the total fits. ``max_size_met`` is False when protected artifacts
   alone keep the total above it (every unprotected artifact is then deleted).

Composite results (one row with no file; its parts are single-file artifacts with no cache
entry of their own) are collected as one unit:

4. **Parts of a live composite** stay (``PART_OF_LIVE_COMPOSITE``) while any composite that
   lists them is kept, whatever the policy would say of the part alone (a part has no entry,
   so it is outside every ``--keep-last`` floor and would otherwise go first). A composite is
   judged by the usual rules (keep-last, age, grace, pins: pinning a composite protects its
   parts). A part all of whose composites go in this plan is judged by the normal rules as
   any other artifact (it goes with them when its own age selects it; else a later run
   collects it). ``--max-size`` evicts a composite with every part only it was holding.
   Sizes count files: a composite's own ``size_bytes`` (its parts' total) is not counted
   again.

Applying a plan and planning again with the same policy and ``now`` deletes nothing. The
plan depends only on the set of candidates (not their order): ``delete`` is least recently
used first, ``keep`` and both reason maps are ordered by ``artifact_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from featurecache.catalog.records import GcCandidate, require_aware
from featurecache.errors import ConfigError

PINNED = "pinned"
LEASED = "leased"
WITHIN_GRACE = "within grace period"
USED_BY_RUNS = "used by an MLflow run"
NOT_SELECTED = "not selected by any policy"
WITHIN_MAX_SIZE = "fits within max size"
VANISHED = "vanished"
CHANGED = "changed since the scan"
PART_OF_LIVE_COMPOSITE = "part of a live composite"
KEEP_LAST_FLOOR = "--keep-last floor"  # the kind of every floor_reason(…)

DEFAULT_GRACE = timedelta(hours=1)
_POLICY_OPTIONS = "--older-than, --unused-for, --keep-last, --max-size"


def floor_reason(keep_last: int, feature: str) -> str:
    """The keep reason of an artifact held by the ``keep_last`` retention floor."""
    return f"among the last {keep_last} of feature {feature}"


def _lru_order(candidate: GcCandidate) -> tuple[datetime, datetime, str]:
    return (candidate.recency, candidate.created_at, candidate.artifact_id)


@dataclass(frozen=True)
class GcPolicy:
    """What to delete; see the module docstring for how the fields combine."""

    older_than: timedelta | None = None
    unused_for: timedelta | None = None
    keep_last: int | None = None  # artifacts per feature, most recently created
    max_size: int | None = None  # bytes
    grace: timedelta = DEFAULT_GRACE
    keep_used_by_runs: bool = False

    def __post_init__(self) -> None:
        for option, span in (("--older-than", self.older_than), ("--unused-for", self.unused_for)):
            if span is not None and span <= timedelta(0):
                raise ConfigError(option, f"must be a positive duration, got {span}", "e.g. 30d")
        if self.keep_last is not None and self.keep_last < 1:
            raise ConfigError(
                "--keep-last",
                f"must be at least 1, got {self.keep_last}",
                "to delete every version use --older-than or --unused-for instead",
            )
        if self.max_size is not None and self.max_size < 0:
            raise ConfigError(
                "--max-size", f"must not be negative, got {self.max_size}", "e.g. 20GB"
            )
        if self.grace < timedelta(0):
            raise ConfigError("--grace", f"must not be negative, got {self.grace}", "e.g. 1h")

    def is_empty(self) -> bool:
        """True when no policy selects anything: the CLI refuses to run (as DVC's gc does)."""
        return (
            self.older_than is None
            and self.unused_for is None
            and self.keep_last is None
            and self.max_size is None
        )

    @staticmethod
    def empty_message() -> str:
        return f"give at least one of {_POLICY_OPTIONS}"

    @property
    def keep_last_selects(self) -> bool:
        """keep_last deletes what is outside the floor only when it is the only policy given."""
        return (
            self.keep_last is not None
            and self.older_than is None
            and self.unused_for is None
            and self.max_size is None
        )

    def to_json(self) -> dict[str, Any]:
        def seconds(span: timedelta | None) -> float | None:
            return None if span is None else span.total_seconds()

        return {
            "older_than_seconds": seconds(self.older_than),
            "unused_for_seconds": seconds(self.unused_for),
            "keep_last": self.keep_last,
            "max_size": self.max_size,
            "grace_seconds": self.grace.total_seconds(),
            "keep_used_by_runs": self.keep_used_by_runs,
        }

    def recheck(
        self, candidate_now: GcCandidate | None, now: datetime, planned: GcCandidate | None = None
    ) -> str | None:
        """``recheck`` under this policy (what the catalog calls while it marks)."""
        return recheck(candidate_now, self, now, planned=planned)


@dataclass(frozen=True)
class GcPlan:
    """The outcome of planning: what to delete (least recently used first) and why the rest stays."""

    policy: GcPolicy
    now: datetime
    delete: tuple[GcCandidate, ...]
    keep: tuple[GcCandidate, ...]  # sorted by artifact_id
    delete_reasons: dict[str, str] = field(default_factory=dict)
    keep_reasons: dict[str, str] = field(default_factory=dict)
    # How many artifacts each kind of reason kept (the floor counted once, whatever feature).
    kept_by: dict[str, int] = field(default_factory=dict)
    bytes_freed: int = 0
    bytes_remaining: int = 0
    max_size_met: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "policy": self.policy.to_json(),
            "delete": [
                {**c.to_json(), "reason": self.delete_reasons[c.artifact_id]} for c in self.delete
            ],
            "keep": [
                {**c.to_json(), "reason": self.keep_reasons[c.artifact_id]} for c in self.keep
            ],
            "bytes_freed": self.bytes_freed,
            "bytes_remaining": self.bytes_remaining,
            "max_size_met": self.max_size_met,
        }


def _within_grace(candidate: GcCandidate, grace: timedelta, now: datetime) -> bool:
    # A timestamp in the future (clock skew between writers) also counts as recent.
    if now - candidate.created_at < grace:
        return True
    return candidate.last_used_at is not None and now - candidate.last_used_at < grace


def _hard_protection(candidate: GcCandidate, policy: GcPolicy, now: datetime) -> str | None:
    """Protections that hold for one artifact on its own (everything but the keep_last floor)."""
    if candidate.pinned:
        return PINNED
    if candidate.leased:
        return LEASED
    if policy.keep_used_by_runs and candidate.used_by_runs:
        return USED_BY_RUNS
    if _within_grace(candidate, policy.grace, now):
        return WITHIN_GRACE
    return None


def keep_last_floor(candidates: Sequence[GcCandidate], keep_last: int) -> dict[str, str]:
    """artifact_id -> the first feature (by name) among whose ``keep_last`` newest it is.

    Newest by ``created_at``, ties broken by the larger ``artifact_id`` so the floor is
    deterministic. Removing artifacts outside the floor never changes it.
    """
    by_feature: dict[str, list[GcCandidate]] = {}
    for candidate in candidates:
        for feature in candidate.features:
            by_feature.setdefault(feature, []).append(candidate)
    floor: dict[str, str] = {}
    for feature in sorted(by_feature):
        newest = sorted(
            by_feature[feature], key=lambda c: (c.created_at, c.artifact_id), reverse=True
        )
        for candidate in newest[:keep_last]:
            floor.setdefault(candidate.artifact_id, feature)
    return floor


def _selected_by(candidate: GcCandidate, policy: GcPolicy, now: datetime) -> list[str]:
    """The options that select an unprotected artifact for deletion (before the size budget)."""
    chosen = []
    if policy.older_than is not None and candidate.created_at < now - policy.older_than:
        chosen.append("--older-than")
    if policy.unused_for is not None and candidate.recency < now - policy.unused_for:
        chosen.append("--unused-for")
    if policy.keep_last_selects:
        chosen.append("--keep-last")
    return chosen


def plan_gc(candidates: Sequence[GcCandidate], policy: GcPolicy, now: datetime) -> GcPlan:
    """Plan a collection over every artifact of the catalog; see the module docstring.

    Deterministic: the plan depends on the set of candidates, not on their order.
    """
    require_aware("now", now)
    ordered = sorted(candidates, key=lambda c: c.artifact_id)
    for previous, current in pairwise(ordered):
        if previous.artifact_id == current.artifact_id:
            raise ValueError(f"artifact {current.artifact_id} is listed twice")
    floor: dict[str, str] = {}
    keep_last = policy.keep_last
    if keep_last is not None:
        floor = {
            artifact_id: floor_reason(keep_last, feature)
            for artifact_id, feature in keep_last_floor(ordered, keep_last).items()
        }

    keep_reasons: dict[str, str] = {}
    keep_kinds: dict[str, str] = {}  # artifact_id -> the kind counted in kept_by
    delete_reasons: dict[str, str] = {}
    unselected: list[GcCandidate] = []
    for candidate in ordered:
        hard = _hard_protection(candidate, policy, now)
        protection = hard or floor.get(candidate.artifact_id)
        if protection is not None:
            keep_reasons[candidate.artifact_id] = protection
            keep_kinds[candidate.artifact_id] = hard or KEEP_LAST_FLOOR
            continue
        chosen = _selected_by(candidate, policy, now)
        if chosen:
            delete_reasons[candidate.artifact_id] = "selected by " + ", ".join(chosen)
        else:
            unselected.append(candidate)
    held = _hold_parts(ordered, delete_reasons, keep_reasons)
    for artifact_id in held:
        keep_reasons[artifact_id] = keep_kinds[artifact_id] = PART_OF_LIVE_COMPOSITE
    unselected = [c for c in unselected if c.artifact_id not in held]

    by_id = {candidate.artifact_id: candidate for candidate in ordered}
    total = sum(c.file_bytes for c in ordered)
    remaining = total - sum(by_id[a].file_bytes for a in delete_reasons)
    if policy.max_size is not None:
        for candidate in sorted(unselected, key=_lru_order):
            if remaining <= policy.max_size:
                break
            delete_reasons[candidate.artifact_id] = "evicted by --max-size (least recently used)"
            remaining -= candidate.file_bytes
            for part_id in _freed_parts(candidate, by_id, delete_reasons, keep_kinds):
                delete_reasons[part_id] = (
                    f"evicted by --max-size with its composite {candidate.artifact_id[:12]}"
                )
                del keep_reasons[part_id], keep_kinds[part_id]
                remaining -= by_id[part_id].file_bytes
    survivor_reason = NOT_SELECTED if policy.max_size is None else WITHIN_MAX_SIZE
    for candidate in unselected:
        if candidate.artifact_id not in delete_reasons:
            keep_reasons[candidate.artifact_id] = survivor_reason
            keep_kinds[candidate.artifact_id] = survivor_reason
    kept_by: dict[str, int] = {}
    for kind in keep_kinds.values():
        kept_by[kind] = kept_by.get(kind, 0) + 1

    deleted = sorted((c for c in ordered if c.artifact_id in delete_reasons), key=_lru_order)
    kept = [c for c in ordered if c.artifact_id in keep_reasons]
    return GcPlan(
        policy=policy,
        now=now,
        delete=tuple(deleted),
        keep=tuple(kept),
        delete_reasons={c.artifact_id: delete_reasons[c.artifact_id] for c in deleted},
        keep_reasons={c.artifact_id: keep_reasons[c.artifact_id] for c in kept},
        kept_by=dict(sorted(kept_by.items())),
        bytes_freed=total - remaining,
        bytes_remaining=remaining,
        max_size_met=policy.max_size is None or remaining <= policy.max_size,
    )


def _hold_parts(
    ordered: Sequence[GcCandidate], delete_reasons: dict[str, str], keep_reasons: dict[str, str]
) -> set[str]:
    """Parts that stay because a composite listing them stays, taken out of ``delete_reasons``.

    A part with a protection of its own keeps that reason. Composites are never parts (a
    composite's parts are single files), so one pass decides every part. A listed composite
    missing from the snapshot (e.g. a malformed id, left out of the plan) counts as staying.
    """
    held: set[str] = set()
    for candidate in ordered:
        if not candidate.composites or candidate.artifact_id in keep_reasons:
            continue
        if any(composite not in delete_reasons for composite in candidate.composites):
            delete_reasons.pop(candidate.artifact_id, None)
            held.add(candidate.artifact_id)
    return held


def _freed_parts(
    composite: GcCandidate,
    by_id: dict[str, GcCandidate],
    delete_reasons: dict[str, str],
    keep_kinds: dict[str, str],
) -> list[str]:
    """Parts of an evicted ``composite`` that only live composites were keeping, none of
    which is left now: they go with it."""
    freed = []
    for part_id in dict.fromkeys(composite.parts):
        part = by_id.get(part_id)
        if part is None or keep_kinds.get(part_id) != PART_OF_LIVE_COMPOSITE:
            continue
        if all(holder in delete_reasons for holder in part.composites):
            freed.append(part_id)
    return freed


def recheck(
    candidate_now: GcCandidate | None,
    policy: GcPolicy,
    now: datetime,
    planned: GcCandidate | None = None,
) -> str | None:
    """Re-check one planned artifact inside the transaction that marks it deleted.

    ``candidate_now`` is a fresh read of the artifact (None when it is gone) and ``now`` the
    database's time at that moment. Returns None when it may still be deleted, else why it
    must now stay: vanished, pinned, leased, used by an MLflow run, within grace (used or
    created since), part of a live composite (``candidate_now.composites``: the catalog
    leaves out composites tombstoned earlier in the same transaction). When ``planned`` (the snapshot the plan was made from) is given, any use
    since the scan or a new feature pointing at the artifact also keeps it (``CHANGED``):
    the keep_last floor of that feature could not be judged from one artifact alone.
    """
    require_aware("now", now)
    if candidate_now is None:
        return VANISHED
    protection = _hard_protection(candidate_now, policy, now)
    if protection is not None:
        return protection
    if candidate_now.composites:
        # A live composite lists it (one published since the scan, or one this run kept).
        return PART_OF_LIVE_COMPOSITE
    if planned is not None and (
        candidate_now.last_used_at != planned.last_used_at
        or not set(candidate_now.features) <= set(planned.features)
    ):
        return CHANGED
    return None
