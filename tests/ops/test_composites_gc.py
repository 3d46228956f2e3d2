"""``featurecache gc`` over composite results, on a real cache (SQLite and the real PostgreSQL
catalog, a local store), the feature run in fresh processes: a part of a live composite is
never collected (its parts have no cache entry, so the "not in any --keep-last floor" rule
used to take them), a collected composite takes its unshared parts along, and a pinned
composite protects its parts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import update

from featurecache.catalog import Catalog
from featurecache.catalog.database import run_write
from featurecache.catalog.models import Artifact
from featurecache.catalog.records import Hit
from featurecache.ops.gc_plan import PART_OF_LIVE_COMPOSITE, GcPolicy
from featurecache.ops.gc_run import collect_garbage
from featurecache.store.local import LocalStore
from tests.ops.composite_support import (  # noqa: F401 (fixtures)
    CliResult,
    CompositeProject,
    cli_fixture,
    composite_project_fixture,
)


def _composites(catalog: Catalog) -> dict[int, Hit]:
    """rows of the composite's first part (75% of n) -> its live Hit, for every split call."""
    found: dict[int, Hit] = {}
    for listing in catalog.artifact_listing()[1]:
        record = catalog.get_artifact(listing.artifact_id)
        if record is None or not record.is_composite:
            continue
        for entry in catalog.entries_for_artifact(record.artifact_id):
            hit = catalog.lookup(entry.key_id)
            assert hit is not None and hit.complete
            found[hit.parts[0].rows] = hit
    return found


def _age_everything(catalog: Catalog, hours: float) -> None:
    then = catalog.now() - timedelta(hours=hours)
    run_write(
        catalog.engine,
        lambda conn: conn.execute(update(Artifact).values(created_at=then, last_used_at=then)),
        what="ageing",
    )


def test_keep_last_keeps_the_parts_of_the_newest_composite_across_processes(
    composite_project: CompositeProject, cli: Callable[..., CliResult]
) -> None:
    first = composite_project.run(40)
    assert first["misses"] == 1
    assert composite_project.run(80)["misses"] == 1
    with composite_project.catalog() as catalog:
        _age_everything(catalog, 2)
        before = _composites(catalog)
    old, new = before[30], before[60]

    result = cli("gc", "--keep-last", "1", "--json")
    assert result.code == 0, result.err
    report = result.json()
    deleted = {item["artifact_id"] for item in report["deleted"]}
    # The older composite goes with its parts; the newest stays whole.
    assert deleted == {old.artifact.artifact_id} | {p.artifact_id for p in old.parts}
    kept = {item["artifact_id"]: item["reason"] for item in report["plan"]["keep"]}
    assert {kept[p.artifact_id] for p in new.parts} == {PART_OF_LIVE_COMPOSITE}
    assert report["bytes_freed"] == sum(p.size_bytes for p in old.parts)
    stored = {path.stem for path in composite_project.store_root.rglob("*.parquet")}
    assert all(p.artifact_id[2:] in stored for p in new.parts)

    # A new process: the newest composite is a hit, the collected one recomputes.
    again = composite_project.run(80)
    assert (again["hits"], again["misses"]) == (1, 0)
    recomputed = composite_project.run(40)
    assert (recomputed["hits"], recomputed["misses"]) == (0, 1)
    assert recomputed["digest"] == first["digest"]
    assert cli("verify").code == 0


def test_a_pinned_composite_protects_its_parts_from_an_age_policy(
    composite_project: CompositeProject,
) -> None:
    composite_project.run(40)
    composite_project.run(80)
    with composite_project.catalog() as catalog:
        _age_everything(catalog, 48)
        hits = _composites(catalog)
        catalog.set_pinned(hits[60].artifact.artifact_id, True)
        store = LocalStore(composite_project.store_root)
        result = collect_garbage(
            catalog, store, GcPolicy(older_than=timedelta(hours=24), grace=timedelta(0))
        )
        deleted = {c.artifact_id for c in result.deleted}
        pinned = hits[60]
        assert pinned.artifact.artifact_id not in deleted
        assert not deleted & {p.artifact_id for p in pinned.parts}  # protected by the pin
        assert result.plan.kept_by[PART_OF_LIVE_COMPOSITE] == len(pinned.parts)
        assert hits[30].artifact.artifact_id in deleted
        for part in pinned.parts:
            assert store.exists(part.artifact_id)
        after = catalog.lookup(pinned.entry.key_id)
        assert after is not None and after.complete
    assert composite_project.run(80)["hits"] == 1


def test_parts_whose_composite_went_earlier_are_collected_by_the_normal_rules(
    composite_project: CompositeProject,
) -> None:
    composite_project.run(40)
    with composite_project.catalog() as catalog:
        _age_everything(catalog, 48)
        hit = _composites(catalog)[30]
        composite_id = hit.artifact.artifact_id
        # The composite alone goes first (as a reader that found it broken would forget it).
        catalog.forget_artifact(composite_id)
        store = LocalStore(composite_project.store_root)
        result = collect_garbage(
            catalog, store, GcPolicy(older_than=timedelta(hours=24), grace=timedelta(0))
        )
        assert {c.artifact_id for c in result.deleted} == {p.artifact_id for p in hit.parts}
        assert composite_id in result.swept  # the tombstoned composite's row, no file
        assert not result.failures
        assert not any(store.exists(p.artifact_id) for p in hit.parts)
        assert catalog.artifact_states() == []
