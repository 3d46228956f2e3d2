"""``featurecache verify``: reconcile the catalog with the store, and repair what is safe.

Each inconsistency is its own class (``Finding.kind``):

* ``orphan_file``: a stored artifact no catalog row knows (a crash between publishing the
  file and committing its row). Repair removes it once older than the grace period.
* ``missing_artifact``: a live row whose file is gone. Repair drops the row and its cache
  entries: those keys recompute on their next call.
* ``corrupt_artifact``: a live row whose file's size or content hash differs from what was
  recorded when it was published (truncated, bit rot, overwritten). Repair moves the file to
  the store's quarantine and drops the row; never deletes the bytes.
* ``temp_file``: a temp file (or incomplete S3 multipart upload) of an interrupted publish,
  or an upload spool file a killed S3 writer left in the store's spool folder (under the
  cache's state folder; its subject is then the absolute path). Repair removes it once older
  than the grace period.
* ``invalid_artifact_id``: a catalog row (live or tombstoned) whose artifact id is not 32
  lowercase hex, so no store can hold its file: a hand-edited or corrupted row. Reads drop it
  and GC skips it; repair drops the row and its cache entries.
* ``broken_composite``: a live composite result (a row with no file of its own, its parts
  listed in ``artifact_parts``) one of whose parts has no catalog row, is tombstoned, or whose
  file is missing or corrupt (that part is reported under its own class too). The detail
  names the part. Repair drops the composite's row and cache entries: its keys recompute.
  A composite is verified through its parts only: its own row has no file to look for.
* ``expired_lease``: a single-flight lease whose owner stopped renewing it. Repair deletes it.
* ``unswept_tombstone``: a row GC (or a reader) tombstoned whose file is still stored, e.g.
  GC crashed between mark and sweep. Repair sweeps it once the tombstone is older than grace.

Items younger than the grace period are the normal traces of work in progress (a publish
between its file and its row, a GC between mark and sweep): they are listed as ``pending``,
are not problems, and are never repaired. Races with concurrent readers, writers and GCs are
settled by re-reading each finding just before reporting and again before repairing it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurecache.catalog.queries import is_artifact_id
from featurecache.errors import ArtifactNotFoundError, StoreError
from featurecache.hashing import digest_bytes
from featurecache.ops.gc_plan import DEFAULT_GRACE
from featurecache.ops.gc_run import sweep, sweep_stale_holds
from featurecache.ops.progress import NoProgress, Progress
from featurecache.store.base import StoredObject
from featurecache.store.layout import ARTIFACT_SUFFIX, SPOOL_PREFIX

if TYPE_CHECKING:
    from featurecache.catalog.facade import ArtifactState, Catalog
    from featurecache.store.base import ArtifactStore

ORPHAN = "orphan_file"
MISSING = "missing_artifact"
CORRUPT = "corrupt_artifact"
INVALID_ID = "invalid_artifact_id"
TEMP = "temp_file"
EXPIRED_LEASE = "expired_lease"
UNSWEPT = "unswept_tombstone"
BROKEN_COMPOSITE = "broken_composite"
KINDS = (ORPHAN, MISSING, CORRUPT, INVALID_ID, BROKEN_COMPOSITE, TEMP, EXPIRED_LEASE, UNSWEPT)


@dataclass(frozen=True)
class Finding:
    kind: str  # one of KINDS
    subject: str  # an artifact id, a store-relative temp name, or a lease's key id
    detail: str
    size_bytes: int | None = None
    repaired: bool = False
    action: str = ""  # what --repair did (or why it did not)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "detail": self.detail,
            "size_bytes": self.size_bytes,
            "repaired": self.repaired,
            "action": self.action,
        }


@dataclass(frozen=True)
class VerifyReport:
    now: datetime  # the database clock
    grace: timedelta
    repair: bool
    problems: tuple[Finding, ...]
    pending: tuple[Finding, ...]  # younger than grace: work in progress, not problems
    artifacts_read: int

    @property
    def clean(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        return {kind: sum(f.kind == kind for f in self.problems) for kind in KINDS}

    def to_json(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "now": self.now.isoformat(),
            "grace_seconds": self.grace.total_seconds(),
            "repair": self.repair,
            "counts": self.counts(),
            "problems": [finding.to_json() for finding in self.problems],
            "pending": [finding.to_json() for finding in self.pending],
            "artifacts_read": self.artifacts_read,
        }


def verify_cache(
    catalog: Catalog,
    store: ArtifactStore,
    *,
    repair: bool = False,
    grace: timedelta = DEFAULT_GRACE,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check every artifact, temp file and lease; with ``repair``, fix the problems found."""
    progress = progress or NoProgress()
    # The store is listed before the catalog is read: an artifact published in between then
    # has its file listed and its row read, instead of looking like an orphan.
    files = {obj.artifact_id: obj for obj in store.iter_artifacts() if obj.artifact_id}
    temps = list(store.iter_temp()) + _spool_files(store)
    now = catalog.now()
    states = {state.artifact_id: state for state in catalog.artifact_states()}
    problems: list[Finding] = []
    pending: list[Finding] = []
    for artifact_id in [a for a in states if not is_artifact_id(a)]:
        state = states.pop(artifact_id)  # no store call may see it: it is no file name
        detail = "catalog row with a malformed artifact id (not 32 lowercase hex)"
        problems.append(Finding(INVALID_ID, artifact_id, detail, state.size_bytes))

    def classify(finding: Finding, young: bool) -> None:
        (pending if young else problems).append(finding)

    for obj in _orphans(catalog, files, states):
        detail = f"no catalog row, stored {_age(now, obj.modified_at)} ago"
        young = now - obj.modified_at < grace
        classify(Finding(ORPHAN, obj.artifact_id or obj.name, detail, obj.size_bytes), young)
    for state in states.values():
        if state.deleted_at is not None and state.artifact_id in files:
            detail = f"tombstoned {_age(now, state.deleted_at)} ago, file still stored"
            young = now - state.deleted_at < grace
            classify(Finding(UNSWEPT, state.artifact_id, detail, state.size_bytes), young)
    live = [state for state in states.values() if state.live and not state.composite]
    problems.extend(_missing(catalog, store, [s for s in live if s.artifact_id not in files]))
    stored = [state for state in live if state.artifact_id in files]
    progress.start("reading artifacts", len(stored))
    for state in stored:
        finding = _check_content(catalog, store, state)
        if finding is not None:
            problems.append(finding)
        progress.advance()
    damaged = {f.subject: f for f in problems if f.kind in (MISSING, CORRUPT)}
    composites = [s for s in states.values() if s.live and s.composite]
    problems.extend(_broken_composites(catalog, store, composites, states, damaged))
    for obj in temps:
        finding = Finding(TEMP, obj.name, f"left {_age(now, obj.modified_at)} ago", obj.size_bytes)
        classify(finding, now - obj.modified_at < grace)
    for lease in catalog.expired_leases():
        detail = f"held by {lease.owner}, expired {_age(now, lease.expires_at)} ago"
        problems.append(Finding(EXPIRED_LEASE, lease.key_id, detail))

    if repair:
        problems = _repair(catalog, store, problems, {obj.name: obj for obj in temps}, progress)
        sweep_stale_holds(store)  # holds of dead processes on this host (store.local)
    order = {kind: rank for rank, kind in enumerate(KINDS)}
    problems.sort(key=lambda f: (order[f.kind], f.subject))
    pending.sort(key=lambda f: (order[f.kind], f.subject))
    return VerifyReport(now, grace, repair, tuple(problems), tuple(pending), len(stored))


def _age(now: datetime, then: datetime) -> str:
    """A compact age, the two largest units: ``3d4h``, ``12m5s``, ``0s``."""
    seconds = max(0, int((now - then).total_seconds()))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count or (unit == "s" and not parts):
            parts.append(f"{count}{unit}")
    return "".join(parts[:2])


def _spool_files(store: ArtifactStore) -> list[StoredObject]:
    """Upload spool files in the store's spool folder (S3 stores opened from settings): a
    live publish's, or one a killed writer left. Named by absolute path."""
    folder: Path | None = getattr(store, "spool_dir", None)
    if folder is None:
        return []
    found: list[StoredObject] = []
    try:
        paths = sorted(folder.glob(f"{SPOOL_PREFIX}*{ARTIFACT_SUFFIX}"))
    except OSError:
        return []
    for path in paths:
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue  # uploaded and removed since the listing
        modified = datetime.fromtimestamp(stat.st_mtime, UTC)
        found.append(StoredObject(str(path), None, stat.st_size, modified))
    return found


def _orphans(
    catalog: Catalog, files: dict[str, StoredObject], states: dict[str, ArtifactState]
) -> list[StoredObject]:
    unknown = [artifact_id for artifact_id in files if artifact_id not in states]
    if not unknown:
        return []
    # Re-read: a row committed after our catalog read is no orphan.
    known_now = {state.artifact_id for state in catalog.artifact_states(unknown)}
    return [files[artifact_id] for artifact_id in unknown if artifact_id not in known_now]


def _missing(catalog: Catalog, store: ArtifactStore, rows: list[ArtifactState]) -> list[Finding]:
    if not rows:
        return []
    # Re-read both sides: a publish may have landed since the listing, a GC may have
    # tombstoned the row (a tombstoned row without a file is consistent).
    live_now = {
        s.artifact_id for s in catalog.artifact_states([r.artifact_id for r in rows]) if s.live
    }
    return [
        Finding(MISSING, row.artifact_id, "live catalog row, no stored file", row.size_bytes)
        for row in rows
        if row.artifact_id in live_now and not store.exists(row.artifact_id)
    ]


def _broken_composites(
    catalog: Catalog,
    store: ArtifactStore,
    composites: list[ArtifactState],
    states: dict[str, ArtifactState],
    damaged: dict[str, Finding],
) -> list[Finding]:
    """A finding for each live composite with a part that cannot be served (checked against
    the snapshot first, then re-read: a GC or publish may have moved on since)."""
    found = []
    for state in composites:
        if not state.parts or any(_part_problem(p, states, damaged) for p in state.parts):
            finding = _recheck_composite(catalog, store, state.artifact_id, damaged)
            if finding is not None:
                found.append(finding)
    return found


def _part_problem(
    part_id: str, states: dict[str, ArtifactState], damaged: dict[str, Finding]
) -> str | None:
    state = states.get(part_id)
    if state is None:
        return "has no catalog row"
    if not state.live:
        return "is tombstoned (collected or forgotten)"
    finding = damaged.get(part_id)
    if finding is not None:
        return "file is missing" if finding.kind == MISSING else f"is corrupt ({finding.detail})"
    return None


def _recheck_composite(
    catalog: Catalog, store: ArtifactStore, composite_id: str, damaged: dict[str, Finding]
) -> Finding | None:
    if not any(state.live for state in catalog.artifact_states([composite_id])):
        return None  # collected or forgotten meanwhile: nothing left to serve
    listing = catalog.parts_listing(composite_id)
    if not listing:
        return Finding(BROKEN_COMPOSITE, composite_id, "composite row lists no part")
    problems = []
    for ref in listing:
        if ref.record is None:
            why: str | None = "has no catalog row"
        elif ref.tombstoned:
            why = "is tombstoned (collected or forgotten)"
        elif ref.part_id in damaged and damaged[ref.part_id].kind == CORRUPT:
            why = f"is corrupt ({damaged[ref.part_id].detail})"
        elif ref.part_id in damaged and not store.exists(ref.part_id):
            why = "file is missing"
        else:
            why = None
        if why is not None:
            problems.append(f"part {ref.position} ({ref.part_id[:12]}) {why}")
    if not problems:
        return None
    size = sum(ref.record.size_bytes for ref in listing if ref.record is not None)
    detail = f"{len(listing)} parts; " + "; ".join(problems)
    return Finding(BROKEN_COMPOSITE, composite_id, detail, size)


def _check_content(catalog: Catalog, store: ArtifactStore, state: ArtifactState) -> Finding | None:
    """Compare the stored bytes with the size and xxh3 hash recorded at publish time."""
    try:
        data = store.read_bytes(state.artifact_id)
    except ArtifactNotFoundError:
        found = _missing(catalog, store, [state])  # deleted since the listing: by GC?
        return found[0] if found else None
    try:
        if len(data) != state.size_bytes:
            problem = f"{len(data)} bytes stored, {state.size_bytes} recorded (truncated?)"
        else:
            actual = digest_bytes(data)
            if actual == state.file_hash:
                return None
            problem = f"content hash {actual[:12]} != recorded {state.file_hash[:12]}"
    finally:
        data.release()
    return Finding(CORRUPT, state.artifact_id, problem, state.size_bytes)


def _repair(
    catalog: Catalog,
    store: ArtifactStore,
    problems: list[Finding],
    temps: dict[str, StoredObject],
    progress: Progress,
) -> list[Finding]:
    progress.start("repairing", len(problems))
    repaired: list[Finding] = []
    # Broken composites first: dropping a part's row takes its composites along.
    for finding in sorted(problems, key=lambda f: f.kind != BROKEN_COMPOSITE):
        try:
            action = _repair_one(catalog, store, finding, temps)
        except StoreError as error:
            repaired.append(replace(finding, action=f"not repaired: {error}"))
        else:
            repaired.append(replace(finding, repaired=action is not None, action=action or ""))
        progress.advance()
    return repaired


def _repair_one(
    catalog: Catalog, store: ArtifactStore, finding: Finding, temps: dict[str, StoredObject]
) -> str | None:
    """Fix one problem; the action taken, or None when a re-check found it resolved."""
    subject = finding.subject
    if finding.kind == ORPHAN:
        if catalog.artifact_states([subject]):
            return None  # its row was committed meanwhile: not an orphan after all
        store.delete(subject)
        return "removed the file"
    if finding.kind == UNSWEPT:
        outcome = sweep(catalog, store, [subject])
        if outcome.failures:
            raise StoreError(outcome.failures[subject])
        return "removed the file and the row" if outcome.purged else None
    if finding.kind == MISSING:
        if store.exists(subject):
            return None
        catalog.drop([subject])
        return "dropped the row and its cache entries (they recompute)"
    if finding.kind == CORRUPT:
        if not any(state.live for state in catalog.artifact_states([subject])):
            return None  # collected or forgotten meanwhile
        store.quarantine(subject, finding.detail)
        catalog.drop([subject])
        return "moved the file to quarantine, dropped the row (its keys recompute)"
    if finding.kind == BROKEN_COMPOSITE:
        if not any(state.live for state in catalog.artifact_states([subject])):
            return None  # collected or forgotten meanwhile
        catalog.drop([subject])
        return "dropped the composite's row and its cache entries (they recompute)"
    if finding.kind == INVALID_ID:
        if not catalog.artifact_states([subject]):
            return None
        catalog.drop([subject])
        return "dropped the row and its cache entries (they recompute)"
    if finding.kind == TEMP:
        if Path(subject).is_absolute():  # a spool file (store-relative names never are)
            try:
                Path(subject).unlink(missing_ok=True)
            except OSError as error:
                raise StoreError(f"removing {subject}: {error}") from error
            return "removed the spool file"
        store.remove_object(temps[subject])
        return "removed the temp file"
    if finding.kind == EXPIRED_LEASE:
        catalog.delete_expired_leases()
        return "deleted the expired lease"
    raise AssertionError(f"unknown finding kind {finding.kind}")
