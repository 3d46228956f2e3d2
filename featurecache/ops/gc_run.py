"""``featurecache gc``: plan with the pure ``featurecache.ops.gc_plan`` planner, mark, then sweep.

1. **Snapshot** every live artifact and the database clock in one read (``gc_snapshot``) and
   plan with ``plan_gc``. ``dry_run`` stops here: the plan names exactly what a real run
   started now would delete, unless the catalog changes in between.
2. **Mark**: tombstone the plan's artifacts in write transactions of at most ``CHUNK``, each
   re-checked inside its transaction (``gc.recheck``: pinned, leased, used or created within
   grace, or changed since the snapshot ⇒ kept). Their cache entries go in the same
   transaction, so from then on readers miss and recompute instead of loading them.
3. **Sweep**: delete the files of what was just marked, plus tombstones older than the grace
   period that an earlier run (or a reader that found a file lost) left behind, then purge
   their rows. Each batch is first *claimed* (``claim_for_sweep``): only rows still
   tombstoned are taken (a concurrent publish may have revived one), and from the claim to
   the purge no publish revives them; a publish that finds its row claimed waits for the
   purge and stores the file anew. So no row is ever live while its file is being deleted.
   A reader that read a row before it was marked and finds the file gone recomputes.

Composite results: composites are marked before the other artifacts (a part is free only once
every composite listing it is tombstoned, re-checked in the marking transaction), and a
composite's row is swept without touching the store (it has no file; its parts are their own
rows, collected by the normal rules once no live composite lists them).

A row whose artifact id is malformed (not 32 lowercase hex: hand-edited or corrupted; no store
can hold its file) is left out of the plan and the sweep and reported in ``invalid_ids``;
``featurecache verify --repair`` drops it.

Sound with several GCs at once (marking is a conditional update, deleting an absent file is a
no-op), and with concurrent readers and writers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from featurecache.catalog.maintenance import CHUNK, chunks
from featurecache.catalog.queries import is_artifact_id
from featurecache.catalog.records import GcCandidate
from featurecache.errors import ConfigError, InvalidArtifactIdError, StoreError
from featurecache.ops.gc_plan import GcPlan, GcPolicy, plan_gc
from featurecache.ops.progress import NoProgress, Progress

if TYPE_CHECKING:
    from featurecache.catalog import Catalog
    from featurecache.store.base import ArtifactStore

# Files are deleted in small batches after re-reading that their rows are still tombstoned:
# the smaller the batch, the narrower the window in which a publish can revive one.
SWEEP_CHUNK = 50


@dataclass(frozen=True)
class SweepOutcome:
    purged: tuple[str, ...]  # rows deleted (their files removed or already gone)
    files_removed: int
    failures: dict[str, str] = field(default_factory=dict)  # artifact_id -> store error


@dataclass(frozen=True)
class GcResult:
    """What a collection did (or, with ``dry_run``, would do)."""

    plan: GcPlan
    dry_run: bool
    deleted: tuple[GcCandidate, ...]  # dry run: what a real run would delete
    kept_on_recheck: dict[str, str]  # artifact_id -> why the re-check kept it
    swept: tuple[str, ...]  # leftover tombstones swept (dry run: to sweep)
    files_removed: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    invalid_ids: tuple[str, ...] = ()  # malformed artifact ids: neither planned nor swept

    @property
    def bytes_freed(self) -> int:
        # Files only: a composite's size is its parts', counted when they go.
        return sum(candidate.file_bytes for candidate in self.deleted)

    def to_json(self) -> dict[str, Any]:
        reasons = self.plan.delete_reasons
        return {
            "dry_run": self.dry_run,
            "now": self.plan.now.isoformat(),
            "policy": self.plan.policy.to_json(),
            "deleted": [{**c.to_json(), "reason": reasons[c.artifact_id]} for c in self.deleted],
            "bytes_freed": self.bytes_freed,
            "kept_on_recheck": dict(sorted(self.kept_on_recheck.items())),
            "swept_tombstones": list(self.swept),
            "files_removed": self.files_removed,
            "failures": dict(sorted(self.failures.items())),
            "invalid_artifact_ids": list(self.invalid_ids),
            "plan": self.plan.to_json(),
        }


def require_policy(policy: GcPolicy) -> None:
    """Refuse a collection with no policy (as DVC's gc does): it would be a guess."""
    if policy.is_empty():
        raise ConfigError(
            "featurecache gc",
            "no policy given, nothing was deleted",
            GcPolicy.empty_message().capitalize() + ".",
        )


def plan_collection(catalog: Catalog, policy: GcPolicy) -> GcPlan:
    """Plan over a fresh snapshot of the catalog (the database clock judges every age)."""
    return _plan(catalog, policy)[0]


def _plan(catalog: Catalog, policy: GcPolicy) -> tuple[GcPlan, list[str]]:
    """The plan, and the malformed artifact ids left out of it."""
    require_policy(policy)
    now, candidates = catalog.gc_snapshot()
    invalid = [c.artifact_id for c in candidates if not is_artifact_id(c.artifact_id)]
    valid = [c for c in candidates if is_artifact_id(c.artifact_id)]
    return plan_gc(valid, policy, now), invalid


def collect_garbage(
    catalog: Catalog,
    store: ArtifactStore,
    policy: GcPolicy,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> GcResult:
    """Run (or, with ``dry_run``, only plan) one collection; see the module docstring."""
    progress = progress or NoProgress()
    plan, invalid = _plan(catalog, policy)
    leftovers = catalog.tombstoned(policy.grace.total_seconds())
    invalid += [artifact_id for artifact_id in leftovers if not is_artifact_id(artifact_id)]
    leftovers = [artifact_id for artifact_id in leftovers if is_artifact_id(artifact_id)]
    invalid_ids = tuple(sorted(set(invalid)))
    if dry_run:
        return GcResult(plan, True, plan.delete, {}, tuple(leftovers), invalid_ids=invalid_ids)

    by_id = {candidate.artifact_id: candidate for candidate in plan.delete}
    marked: list[str] = []
    kept: dict[str, str] = {}
    progress.start("marking artifacts deleted", len(plan.delete))
    # Composites first, so that their parts' re-check finds them already tombstoned.
    for batch in chunks(sorted(plan.delete, key=lambda c: not c.parts), CHUNK):
        outcome = catalog.mark_deleted(batch, policy)
        marked.extend(outcome.marked)
        kept.update(outcome.kept)
        progress.advance(len(batch))

    just_marked = set(marked)
    to_sweep = marked + [artifact_id for artifact_id in leftovers if artifact_id not in just_marked]
    swept = sweep(catalog, store, to_sweep, progress)
    sweep_stale_holds(store)
    return GcResult(
        plan=plan,
        dry_run=False,
        deleted=tuple(by_id[artifact_id] for artifact_id in marked),
        kept_on_recheck=kept,
        swept=tuple(a for a in swept.purged if a not in just_marked),
        files_removed=swept.files_removed,
        failures=swept.failures,
        invalid_ids=invalid_ids,
    )


def sweep(
    catalog: Catalog,
    store: ArtifactStore,
    artifact_ids: Sequence[str],
    progress: Progress | None = None,
) -> SweepOutcome:
    """Delete the files of tombstoned artifacts, then their rows; skips any row a publish
    revived meanwhile. A file the store cannot delete keeps its row (tombstoned) for the
    next run, and is reported."""
    progress = progress or NoProgress()
    progress.start("removing files", len(artifact_ids))
    purged: list[str] = []
    removed = 0
    failures: dict[str, str] = {}
    for batch in chunks(artifact_ids, SWEEP_CHUNK):
        gone: list[str] = []
        # Claimed first: from here until the purge no publish revives these rows, so none
        # is ever live while its file is being deleted (a publish waits and stores anew).
        claimed = catalog.claim_for_sweep(batch)
        fileless = catalog.composite_ids(claimed) if claimed else set()
        kept: list[str] = []
        for artifact_id in claimed:
            if artifact_id in fileless:
                gone.append(artifact_id)  # a composite: no file of its own to delete
                continue
            try:
                removed += store.delete(artifact_id)
            except (StoreError, InvalidArtifactIdError) as error:
                failures[artifact_id] = str(error)
                kept.append(artifact_id)
                continue
            gone.append(artifact_id)
        if gone:
            catalog.purge(gone)
            purged.extend(gone)
        if kept:
            catalog.release_sweep_claims(kept)
        progress.advance(len(batch))
    return SweepOutcome(tuple(purged), removed, failures)


def sweep_stale_holds(store: ArtifactStore) -> int:
    """Remove the holds (files lazy results scan, ``store.local.hold_file``) of processes on
    this host that died without removing them; stores without holds have nothing to sweep."""
    sweep_holds = getattr(store, "sweep_holds", None)
    if sweep_holds is None:
        return 0
    try:
        return int(sweep_holds())
    except OSError:
        return 0  # best effort: they are swept by the next run
