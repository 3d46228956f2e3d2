"""Replacing a key's entry: the one write that is not insert-if-absent.

A key's entry can go stale without its key changing: a file the body read (an observed
input, ``fingerprint.observed_inputs``) changed since. The recomputed result must then take
the key over, or the next lookup would find the stale entry again (and a racing publish of
the old kind would hand it back as "the winner"). Deleting the old entry and publishing the
new one happen in one transaction, so a reader sees the old entry or the new one, never no
entry and never both. The old artifact stays (other keys may use it); GC collects it when
unused.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete

from featurecache.catalog.models import CacheEntry
from featurecache.catalog.records import Hit, PublishRow
from featurecache.catalog.tx import Tx
from featurecache.catalog.writes import publish_rows

_DROP_ENTRY = delete(CacheEntry).where(CacheEntry.key_id == bindparam("key_id"))


def replace_entry(
    tx: Tx, row: PublishRow, *, after: datetime | None = None
) -> tuple[Hit, datetime]:
    """Record ``row``'s artifact under its key in place of whatever entry the key had;
    returns the entry now committed (ours, unless a concurrent replace committed after
    our delete and before our insert: PostgreSQL READ COMMITTED; then theirs, which is
    re-validated like any entry on its next lookup), and when ours was created
    (``writes.publish_rows``, ``after``)."""
    tx.execute(_DROP_ENTRY, {"key_id": row.entry.key_id})
    hits, created = publish_rows(tx, [row], after=after)
    return hits[0], created[0]
