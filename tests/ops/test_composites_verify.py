"""``featurecache verify`` over composite results (real cache: SQLite and PostgreSQL catalog,
local store; the feature run in fresh processes): a composite is verified through its parts,
never reported as a missing file of its own, and a composite with a lost part is reported as
broken, naming the part, and repaired so that its key recomputes."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete

from featurecache.catalog.database import run_write
from featurecache.catalog.models import Artifact
from featurecache.catalog.records import Hit
from featurecache.ops.verify import BROKEN_COMPOSITE, CORRUPT, MISSING, verify_cache
from featurecache.store.local import LocalStore
from tests.ops.composite_support import (  # noqa: F401 (fixtures)
    CliResult,
    CompositeProject,
    cli_fixture,
    composite_project_fixture,
)


def _the_composite(project: CompositeProject) -> Hit:
    with project.catalog() as catalog:
        [composite] = [
            listing
            for listing in catalog.artifact_listing()[1]
            if (record := catalog.get_artifact(listing.artifact_id)) and record.is_composite
        ]
        [entry] = catalog.entries_for_artifact(composite.artifact_id)
        hit = catalog.lookup(entry.key_id)
    assert hit is not None and len(hit.parts) == 4
    return hit


def test_a_whole_composite_is_clean(
    composite_project: CompositeProject, cli: Callable[..., CliResult]
) -> None:
    composite_project.run(40)
    result = cli("verify", "--json")
    assert result.code == 0, result.out
    report = result.json()
    assert report["clean"] and report["problems"] == []
    assert report["artifacts_read"] == 4  # the parts; the composite has no file to read


def test_a_lost_part_file_breaks_its_composite_and_repair_makes_it_recompute(
    composite_project: CompositeProject, cli: Callable[..., CliResult]
) -> None:
    first = composite_project.run(40)
    hit = _the_composite(composite_project)
    lost = hit.parts[2]
    store = LocalStore(composite_project.store_root)
    assert store.delete(lost.artifact_id)

    result = cli("verify", "--json")
    assert result.code == 1
    problems = {(p["kind"], p["subject"]): p for p in result.json()["problems"]}
    assert set(problems) == {
        (MISSING, lost.artifact_id),
        (BROKEN_COMPOSITE, hit.artifact.artifact_id),
    }
    detail = problems[(BROKEN_COMPOSITE, hit.artifact.artifact_id)]["detail"]
    assert f"part 2 ({lost.artifact_id[:12]}) file is missing" in detail

    repaired = cli("verify", "--repair", "--json").json()
    assert all(p["repaired"] for p in repaired["problems"]), repaired
    assert cli("verify").code == 0
    again = composite_project.run(40)  # a fresh process: recomputed, the same values
    assert (again["hits"], again["misses"]) == (0, 1)
    assert again["digest"] == first["digest"]
    assert composite_project.run(40)["hits"] == 1


def test_a_part_row_gone_or_a_corrupt_part_is_named(composite_project: CompositeProject) -> None:
    composite_project.run(40)
    hit = _the_composite(composite_project)
    gone, corrupt = hit.parts[0], hit.parts[3]
    store = LocalStore(composite_project.store_root)
    path = store.local_path(corrupt.artifact_id)
    assert path is not None
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with composite_project.catalog() as catalog:
        # A hand-edited catalog: the part's row deleted (part_id has no foreign key).
        run_write(
            catalog.engine,
            lambda conn: conn.execute(
                delete(Artifact).where(Artifact.artifact_id == gone.artifact_id)
            ),
            what="deleting a part row",
        )
        report = verify_cache(catalog, store)
        kinds = {(f.kind, f.subject) for f in report.problems}
        assert (CORRUPT, corrupt.artifact_id) in kinds
        [broken] = [f for f in report.problems if f.kind == BROKEN_COMPOSITE]
        assert broken.subject == hit.artifact.artifact_id
        assert f"part 0 ({gone.artifact_id[:12]}) has no catalog row" in broken.detail
        assert f"part 3 ({corrupt.artifact_id[:12]}) is corrupt" in broken.detail
        verify_cache(catalog, store, repair=True)
        assert catalog.lookup(hit.entry.key_id) is None
        assert verify_cache(catalog, store).clean
