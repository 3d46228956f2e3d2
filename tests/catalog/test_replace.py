"""``Catalog.replace``: a recomputed result takes a key over from its stale entry, atomically,
on SQLite and PostgreSQL (the ``catalog`` fixture runs both)."""

from __future__ import annotations

import threading
from dataclasses import replace

from featurecache.catalog import Catalog
from tests.catalog.factories import artifact_id, publication


def test_replace_takes_the_key_over_where_publish_keeps_the_first(catalog: Catalog) -> None:
    first = publication(1)
    catalog.publish(*first.args())
    newer = first.with_artifact(artifact_id("recomputed"))
    # An ordinary publish keeps the first entry (first writer wins)...
    assert catalog.publish(*newer.args()).artifact.artifact_id == first.artifact.artifact_id
    # ...a replace hands the key to the new result, with its components.
    newer = replace(newer, entry=replace(newer.entry, components={"observed": {"files": []}}))
    hit = catalog.replace(*newer.args())
    assert hit.artifact.artifact_id == artifact_id("recomputed")
    looked_up = catalog.lookup(first.entry.key_id)
    assert looked_up is not None
    assert looked_up.artifact.artifact_id == artifact_id("recomputed")
    assert looked_up.entry.components == {"observed": {"files": []}}
    # The old artifact is kept (another key may use it); only the entry moved.
    assert catalog.get_artifact(first.artifact.artifact_id) is not None


def test_replace_of_a_key_without_an_entry_publishes_it(catalog: Catalog) -> None:
    fresh = publication(2)
    assert catalog.replace(*fresh.args()).artifact.artifact_id == fresh.artifact.artifact_id
    assert catalog.lookup(fresh.entry.key_id) is not None


def test_concurrent_replaces_leave_exactly_one_entry(catalog: Catalog) -> None:
    base = publication(3)
    catalog.publish(*base.args())
    versions = [base.with_artifact(artifact_id(f"v{i}")) for i in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(versions))

    def run(version: object) -> None:
        try:
            start.wait()
            catalog.replace(*version.args())  # type: ignore[attr-defined]
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    hit = catalog.lookup(base.entry.key_id)
    assert hit is not None
    assert hit.artifact.artifact_id in {v.artifact.artifact_id for v in versions}
