"""Issue 16, item 10: a catalog row whose artifact id is not 32 lowercase hex (a hostile or
corrupted row written with SQL) is a corrupt row: a hit forgets it and recomputes, ``verify``
reports it in a class of its own (and ``--repair`` drops it), and GC plans without it and
reports it instead of failing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import delete, insert, select, update

from featurecache import FeatureCache
from featurecache.catalog import Catalog
from featurecache.catalog.database import run_write
from featurecache.catalog.models import Artifact, CacheEntry
from featurecache.catalog.records import ArtifactRecord, CodeVersionRecord, EntryRecord
from featurecache.cli.main import main
from featurecache.ops.gc_plan import GcPolicy
from featurecache.ops.gc_run import collect_garbage
from featurecache.ops.verify import INVALID_ID, verify_cache
from tests.ops.seed import Cache

BAD_ID = "../../etc/passwd"  # fits the column, and is no artifact id


def make_malformed(catalog: Catalog, artifact_id: str, bad_id: str = BAD_ID) -> None:
    """Rewrite the row of ``artifact_id`` (and its entries) to ``bad_id`` with plain SQL."""

    def work(conn: Any) -> None:
        row = conn.execute(select(Artifact).where(Artifact.artifact_id == artifact_id)).mappings()
        values = dict(row.one())
        values["artifact_id"] = bad_id
        conn.execute(insert(Artifact).values(**values))
        conn.execute(
            update(CacheEntry)
            .where(CacheEntry.artifact_id == artifact_id)
            .values(artifact_id=bad_id)
        )
        conn.execute(delete(Artifact).where(Artifact.artifact_id == artifact_id))

    run_write(catalog.engine, work, what="corrupting a row")


def seed_invalid_id(catalog: Catalog, bad_id: str = BAD_ID) -> str:
    """A row (and entry) under ``bad_id`` with no file: what a hand-written INSERT leaves."""
    catalog.publish(
        EntryRecord("f" * 32, "hostile", "e" * 32, bad_id, "arrow", {"inputs": {}}),
        ArtifactRecord(bad_id, "file:///nowhere", 1, 1, [], 10, "0" * 32, 1.0),
        [],
        CodeVersionRecord("e" * 32, "hostile", "def hostile(): ..."),
    )
    return bad_id


def test_a_hit_on_a_malformed_artifact_id_forgets_it_and_recomputes(tmp_path: Path) -> None:
    fc = FeatureCache(catalog=f"sqlite:///{tmp_path / 'c.db'}", store=tmp_path / "a")
    calls: list[int] = []
    try:

        @fc.cached_feature(ignore=["calls"])
        def numbers(n: int) -> pa.Table:
            calls.append(n)
            return pa.table({"x": list(range(n))})

        assert numbers(3).num_rows == 3
        fc.engine.flush()
        catalog = fc.engine.catalog
        (good,) = [state.artifact_id for state in catalog.artifact_states() if state.live]
        make_malformed(catalog, good)

        assert numbers(3).num_rows == 3  # no InvalidArtifactIdError: recomputed
        assert calls == [3, 3]
        assert BAD_ID not in {state.artifact_id for state in catalog.artifact_states()}
        assert numbers(3).num_rows == 3  # and from then on a hit again
        assert calls == [3, 3]
    finally:
        fc.close()


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    opened = Cache.create(tmp_path)
    yield opened
    opened.close()


def test_verify_reports_a_malformed_id_in_a_class_of_its_own(cache: Cache) -> None:
    victim = cache.publish(1).artifact.artifact_id
    cache.publish(2)
    make_malformed(cache.catalog, victim)
    report = verify_cache(cache.catalog, cache.store)
    assert [(f.kind, f.subject) for f in report.problems] == [(INVALID_ID, BAD_ID)]
    # The file of the good id it replaced is now an orphan only after grace; not a problem.
    assert report.counts()[INVALID_ID] == 1
    repaired = verify_cache(cache.catalog, cache.store, repair=True)
    assert [f.repaired for f in repaired.problems if f.kind == INVALID_ID] == [True]
    assert BAD_ID not in {state.artifact_id for state in cache.catalog.artifact_states()}
    assert not [
        f for f in verify_cache(cache.catalog, cache.store).problems if f.kind == INVALID_ID
    ]


def test_gc_plans_without_a_malformed_id_and_reports_it(cache: Cache) -> None:
    ids = [cache.publish(i).artifact.artifact_id for i in range(3)]
    for artifact_id in ids:
        cache.age(artifact_id, 10)
    make_malformed(cache.catalog, ids[0])
    policy = GcPolicy(older_than=timedelta(hours=1), grace=timedelta(0))
    dry = collect_garbage(cache.catalog, cache.store, policy, dry_run=True)
    assert BAD_ID not in {c.artifact_id for c in dry.plan.delete + dry.plan.keep}
    assert dry.invalid_ids == (BAD_ID,)
    done = collect_garbage(cache.catalog, cache.store, policy)
    assert {c.artifact_id for c in done.deleted} == set(ids[1:])
    assert done.invalid_ids == (BAD_ID,)
    assert done.to_json()["invalid_artifact_ids"] == [BAD_ID]


def test_gc_sweeps_past_a_tombstoned_malformed_id(cache: Cache) -> None:
    ids = [cache.publish(i).artifact.artifact_id for i in range(2)]
    make_malformed(cache.catalog, ids[0])
    cache.catalog.forget_artifact(BAD_ID)  # a tombstone GC would sweep
    for artifact_id in ids[1:]:
        cache.age(artifact_id, 10)
    policy = GcPolicy(older_than=timedelta(hours=1), grace=timedelta(0))
    done = collect_garbage(cache.catalog, cache.store, policy)
    assert {c.artifact_id for c in done.deleted} == {ids[1]}


def test_cli_gc_and_verify_survive_a_malformed_id(
    cache: Cache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    ids = [cache.publish(i).artifact.artifact_id for i in range(2)]
    for artifact_id in ids:
        cache.age(artifact_id, 10)
    make_malformed(cache.catalog, ids[0])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FEATURECACHE_CATALOG", cache.catalog_url)
    monkeypatch.setenv("FEATURECACHE_STORE", str(cache.store.root))
    assert main(["gc", "--older-than", "1h", "--grace", "0s"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert BAD_ID in out
    assert main(["verify"]) == 1
    assert INVALID_ID.replace("_", " ") in capsys.readouterr().out.replace("_", " ")
