"""A feature's entries as a whole, on every backend: its newest keys (bounded, newest first)
and dropping them all (``catalog.by_feature``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from featurecache.catalog import Catalog
from featurecache.catalog.database import run_write
from featurecache.catalog.models import CacheEntry
from featurecache.store.local import LocalStore
from tests.catalog.factories import publication
from tests.ops.seed import Cache


def test_newest_entries_are_bounded_and_newest_first(catalog: Catalog, tmp_path: Path) -> None:
    cache = Cache(tmp_path, catalog, LocalStore(tmp_path / "artifacts"))
    keys = [cache.publish(f"k{i}", feature="f").entry.key_id for i in range(4)]
    cache.publish("other", feature="g")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for age, key_id in enumerate(keys):  # k0 newest ... k3 oldest
        run_write(
            catalog.engine,
            lambda conn, key_id=key_id, age=age: conn.execute(
                update(CacheEntry)
                .where(CacheEntry.key_id == key_id)
                .values(created_at=start - timedelta(hours=age))
            ),
            what="test: age",
        )
    assert [e.key_id for e in catalog.newest_entries("f", 3)] == keys[:3]
    assert catalog.newest_entries("nobody", 3) == []


def test_clear_feature_counts_then_drops(catalog: Catalog, tmp_path: Path) -> None:
    cache = Cache(tmp_path, catalog, LocalStore(tmp_path / "artifacts"))
    cache.publish("k1", feature="f")
    cache.publish("k2", feature="f", content="shared")
    cache.publish("k3", feature="g", content="shared")
    dry = catalog.clear_feature("f", dry_run=True)
    assert (dry.entries, dry.artifacts, dry.unreferenced, dry.known) == (2, 2, 1, True)
    assert len(catalog.newest_entries("f", 10)) == 2
    done = catalog.clear_feature("f")
    assert (done.entries, done.dry_run) == (2, False)
    assert catalog.newest_entries("f", 10) == []
    assert len(catalog.newest_entries("g", 10)) == 1
    assert len(catalog.list_artifacts()) == 2  # artifacts are left to GC
    again = catalog.clear_feature("f")
    assert (again.entries, again.known) == (0, True)
    assert catalog.clear_feature("typo").known is False


def test_a_batchs_keys_are_newest_in_the_order_they_were_published(catalog: Catalog) -> None:
    """Rows committed together (a batch of background publishes) used to share one creation
    time and one miss-event time (the transaction's on PostgreSQL, SQLite's clock has
    millisecond steps): `why`'s "latest" and "nearest earlier" key then fell back to key-id
    order. Each now comes after the one before it, batch after batch."""
    from featurecache.catalog.records import PublishRow, UsageEvent

    order = [5, 1, 4, 2, 3]  # key ids in another order than the calls'
    for first in (0, 3):
        pubs = [publication(n + 10 * first, feature="f") for n in order[first : first + 3]]
        catalog.publish_batch(
            [PublishRow(*pub.args()) for pub in pubs],
            leases=[],
            events=[UsageEvent("miss", p.entry.key_id, "f", None, 1, 1) for p in pubs],
        )
    published = [publication(n, feature="f").entry.key_id for n in order[:3]]
    published += [publication(n + 30, feature="f").entry.key_id for n in order[3:]]
    newest = [entry.key_id for entry in catalog.newest_entries("f", 10)]
    assert newest == published[::-1]
    # By their miss events too (`why`'s latest key): each at its entry's creation.
    assert [entry.key_id for entry in catalog.recent_entries("f", 10)] == published[::-1]


def test_an_entry_published_alone_comes_after_the_last_batchs(catalog: Catalog) -> None:
    """Every entry this catalog creates comes after the last one it created, alone or in a
    batch: a result published alone right after a batch (in the same millisecond on SQLite,
    where the batch's rows are a microsecond apart) must not read as older than them."""
    from featurecache.catalog.records import PublishRow, UsageEvent

    pubs = [publication(n, feature="f") for n in (1, 2)]
    catalog.publish_batch(
        [PublishRow(*pub.args()) for pub in pubs],
        leases=[],
        events=[UsageEvent("miss", p.entry.key_id, "f", None, 1, 1) for p in pubs],
    )
    # As if the batch's last row had been stamped after what the database clock reads next
    # (the same millisecond): the next entry must still come after it.
    last = datetime.now(UTC) + timedelta(hours=1)
    catalog._created_after = last
    alone = publication(3, feature="f")
    hit = catalog.publish(*alone.args())
    assert hit.entry.created_at is not None and hit.entry.created_at > last
    assert catalog.newest_entries("f", 1)[0].key_id == alone.entry.key_id
