"""``verify``: each seeded inconsistency is found as its own class, ``repair`` fixes the safe
ones and is idempotent, and work in progress (younger than grace) is never a problem."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from featurecache.catalog.database import run_write
from featurecache.catalog.models import Artifact
from featurecache.ops.verify import (
    CORRUPT,
    EXPIRED_LEASE,
    KINDS,
    MISSING,
    ORPHAN,
    TEMP,
    UNSWEPT,
    verify_cache,
)
from featurecache.store.layout import QUARANTINE_DIR
from tests.ops.seed import Cache
from tests.ops.test_malformed_artifact_id import seed_invalid_id

ORPHAN_ID = "ab" * 16
TWO_HOURS_AGO = time.time() - 7200


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    opened = Cache.create(tmp_path)
    for i in range(3):
        opened.publish(i, rows=20 + i)
    yield opened
    opened.close()


def _ids(cache: Cache) -> list[str]:
    return sorted(cache.live_ids())


def _writable(path: Path) -> Path:
    os.chmod(path, 0o644)  # artifacts are published read-only
    return path


def seed_orphan(cache: Cache, old: bool = True) -> str:
    target = cache.path(ORPHAN_ID)
    target.parent.mkdir(exist_ok=True)
    shutil.copy(cache.path(_ids(cache)[0]), target)
    if old:
        os.utime(target, (TWO_HOURS_AGO, TWO_HOURS_AGO))
    return ORPHAN_ID


def seed_missing(cache: Cache) -> str:
    victim = _ids(cache)[1]
    cache.path(victim).unlink()
    return victim


def seed_truncated(cache: Cache) -> str:
    victim = _ids(cache)[2]
    path = _writable(cache.path(victim))
    path.write_bytes(path.read_bytes()[:-7])
    return victim


def seed_bit_flip(cache: Cache) -> str:
    victim = _ids(cache)[2]
    path = _writable(cache.path(victim))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content
    path.write_bytes(bytes(data))
    return victim


def seed_temp(cache: Cache, old: bool = True) -> str:
    shard = cache.path(_ids(cache)[0]).parent
    temp = shard / ".tmp-interrupted.parquet"
    temp.write_bytes(b"PAR1 half a file")
    if old:
        os.utime(temp, (TWO_HOURS_AGO, TWO_HOURS_AGO))
    return f"{shard.name}/{temp.name}"


def seed_expired_lease(cache: Cache) -> str:
    key = "c0ffee" * 5 + "00"
    assert cache.catalog.try_acquire_lease(key, "crashed-host:42", 0.001)
    time.sleep(0.01)
    return key


def seed_unswept(cache: Cache, old: bool = True) -> str:
    victim = _ids(cache)[0]
    cache.catalog.forget_artifact(victim)  # what GC's mark does; the sweep never came
    if old:
        when = cache.catalog.now() - timedelta(hours=2)
        run_write(
            cache.catalog.engine,
            lambda conn: conn.execute(
                update(Artifact).where(Artifact.artifact_id == victim).values(deleted_at=when)
            ),
            what="backdate",
        )
    return victim


SEEDS: dict[str, tuple[str, Callable[[Cache], str]]] = {
    "orphan": (ORPHAN, seed_orphan),
    "missing": (MISSING, seed_missing),
    "truncated": (CORRUPT, seed_truncated),
    "bit flip": (CORRUPT, seed_bit_flip),
    "temp": (TEMP, seed_temp),
    "expired lease": (EXPIRED_LEASE, seed_expired_lease),
    "unswept tombstone": (UNSWEPT, seed_unswept),
}


def test_a_healthy_cache_is_clean(cache: Cache) -> None:
    report = verify_cache(cache.catalog, cache.store)
    assert report.clean and report.problems == () and report.pending == ()
    assert report.artifacts_read == 3
    assert report.to_json()["counts"] == dict.fromkeys(KINDS, 0)


@pytest.mark.parametrize("seed", SEEDS, ids=list(SEEDS))
def test_each_inconsistency_is_its_own_class_and_repair_fixes_it(cache: Cache, seed: str) -> None:
    kind, plant = SEEDS[seed]
    subject = plant(cache)

    report = verify_cache(cache.catalog, cache.store)
    assert not report.clean
    assert [(f.kind, f.subject) for f in report.problems] == [(kind, subject)]
    assert report.counts()[kind] == 1 and sum(report.counts().values()) == 1

    repaired = verify_cache(cache.catalog, cache.store, repair=True)
    assert [(f.kind, f.repaired) for f in repaired.problems] == [(kind, True)]
    after = verify_cache(cache.catalog, cache.store)
    assert after.clean, after.problems
    again = verify_cache(cache.catalog, cache.store, repair=True)  # idempotent
    assert again.clean and again.problems == ()


def test_repair_quarantines_corrupt_files_and_their_keys_miss(cache: Cache) -> None:
    victim = seed_bit_flip(cache)
    [entry] = cache.catalog.entries_for_artifact(victim)
    verify_cache(cache.catalog, cache.store, repair=True)
    quarantined = sorted(p.name for p in (cache.store.root / QUARANTINE_DIR).iterdir())
    assert [name.split("-")[0] for name in quarantined] == [victim, victim]  # .parquet, .json
    assert not cache.path(victim).exists()
    assert cache.catalog.lookup(entry.key_id) is None
    assert cache.catalog.artifact_states([victim]) == []


def test_every_class_at_once(cache: Cache) -> None:
    seed_orphan(cache)
    seed_missing(cache)
    seed_truncated(cache)
    seed_temp(cache)
    seed_expired_lease(cache)
    seed_invalid_id(cache.catalog)
    extra = cache.publish("extra").artifact.artifact_id
    cache.catalog.forget_artifact(extra)
    report = verify_cache(cache.catalog, cache.store, grace=timedelta(0))
    # (broken composites: tests/ops/test_composites_verify.py)
    assert report.counts() == {**dict.fromkeys(KINDS, 1), "broken_composite": 0}
    verify_cache(cache.catalog, cache.store, repair=True, grace=timedelta(0))
    assert verify_cache(cache.catalog, cache.store, grace=timedelta(0)).clean


def test_work_in_progress_is_pending_not_a_problem(cache: Cache) -> None:
    seed_orphan(cache, old=False)  # a publish between its file and its row
    seed_temp(cache, old=False)  # a publish writing its temp file
    tombstoned = seed_unswept(cache, old=False)  # a GC between mark and sweep
    report = verify_cache(cache.catalog, cache.store, repair=True)
    assert report.clean
    assert sorted(f.kind for f in report.pending) == sorted([ORPHAN, TEMP, UNSWEPT])
    assert cache.path(ORPHAN_ID).exists() and cache.path(tombstoned).exists()  # untouched
    # With no grace they are problems, and repair removes them.
    strict = verify_cache(cache.catalog, cache.store, repair=True, grace=timedelta(0))
    assert sorted(f.kind for f in strict.problems) == sorted([ORPHAN, TEMP, UNSWEPT])
    assert all(f.repaired for f in strict.problems)
    assert not cache.path(ORPHAN_ID).exists() and not cache.path(tombstoned).exists()


def test_an_orphan_whose_row_lands_before_repair_is_kept(cache: Cache) -> None:
    """A publish that stored its file long ago and commits its row while verify runs."""
    artifact_id = cache.publish("late").artifact.artifact_id
    cache.catalog.drop([artifact_id])  # the row is not committed yet ...
    os.utime(cache.path(artifact_id), (TWO_HOURS_AGO, TWO_HOURS_AGO))

    class CommitBeforeRepair:
        def start(self, description: str, total: int) -> None:
            if description == "repairing":
                cache.publish("late")  # ... and now it is

        def advance(self, steps: int = 1) -> None:
            return None

    report = verify_cache(cache.catalog, cache.store, repair=True, progress=CommitBeforeRepair())
    assert [(f.kind, f.repaired) for f in report.problems] == [(ORPHAN, False)]
    assert cache.path(artifact_id).exists() and artifact_id in cache.live_ids()
    assert verify_cache(cache.catalog, cache.store).clean
