"""Single-flight leases in the catalog: at most one owner computes a key at a time.

A lease is a row (key_id, owner, expires_at) whose expiry is computed and judged by the
database clock, never the client's. Every change is one conditional statement whose row
count says whether it happened, so races are decided by the database:

* acquire: ``INSERT … ON CONFLICT DO NOTHING``; if the row exists and has expired, take it
  over with ``UPDATE … WHERE owner = :old_owner AND expires_at < now``. Of two waiters taking
  over at once, PostgreSQL re-evaluates the second UPDATE's WHERE on the row the first one
  wrote (owner changed: 0 rows), and SQLite runs them one after the other (BEGIN IMMEDIATE).
* take over from a dead owner (its process is known to be gone): the same UPDATE without the
  expiry condition, ``WHERE owner = :dead_owner``.
* renew / release: ``… WHERE key_id = :key AND owner = :me``.

A lease only saves work; correctness comes from publish-if-absent in the catalog. These
functions take a transaction already open: the writes of a miss (acquire, take over, renew,
release) a ``tx.Tx`` (SQLAlchemy's, or the SQLite driver's of ``prepared``), the rest a
connection; ``Catalog`` opens them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CursorResult, Float, bindparam, delete, select, type_coerce, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql import ColumnElement, Select

from featurecache.catalog.clock import utc_now, utc_now_plus
from featurecache.catalog.models import Lease
from featurecache.catalog.records import LeaseRecord
from featurecache.catalog.tx import Tx
from featurecache.catalog.upsert import insert_if_absent


def _is_expired() -> ColumnElement[bool]:
    return type_coerce(Lease.expires_at < utc_now(), Boolean).label("expired")


def _lease_select() -> Select[str, str, datetime, datetime, bool]:
    return select(Lease.key_id, Lease.owner, Lease.expires_at, Lease.heartbeat_at, _is_expired())


def _record(row: Row[str, str, datetime, datetime, bool]) -> LeaseRecord:
    return LeaseRecord(
        key_id=row.key_id,
        owner=row.owner,
        expires_at=row.expires_at,
        heartbeat_at=row.heartbeat_at,
        expired=bool(row.expired),
    )


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return result.rowcount


# The statements of a lease, built once (the insert once per dialect) and executed with
# parameters: a statement object executed again keeps its compiled-cache key (SQLAlchemy
# derives it anew for every statement built per call), and ``prepared`` compiles it once.
_SECONDS = bindparam("lease_seconds", type_=Float())
_INSERTS: dict[str, Any] = {}
_CURRENT = select(Lease.owner, _is_expired()).where(Lease.key_id == bindparam("lease_key"))
_TAKEN_BY = {
    "owner": bindparam("lease_owner"),
    "acquired_at": utc_now(),
    "expires_at": utc_now_plus(_SECONDS),
    "heartbeat_at": utc_now(),
    "epoch": Lease.epoch + 1,
}
# Taking over: conditioned on the owner seen, so of two takers one wins (module docstring).
_TAKE_OVER = (
    update(Lease)
    .where(Lease.key_id == bindparam("lease_key"), Lease.owner == bindparam("old_owner"))
    .values(**_TAKEN_BY)
)
_TAKE_OVER_EXPIRED = _TAKE_OVER.where(Lease.expires_at < utc_now())
_RENEW = (
    update(Lease)
    .where(Lease.key_id == bindparam("lease_key"), Lease.owner == bindparam("lease_owner"))
    .values(expires_at=utc_now_plus(_SECONDS), heartbeat_at=utc_now())
)
_RELEASE = delete(Lease).where(
    Lease.key_id == bindparam("lease_key"), Lease.owner == bindparam("lease_owner")
)


def _insert_new(tx: Tx, key_id: str, owner: str, seconds: float) -> bool:
    statement = _INSERTS.get(tx.dialect_name)
    if statement is None:
        statement = _INSERTS[tx.dialect_name] = insert_if_absent(
            tx.dialect_name, Lease, ["key_id"]
        ).values(
            key_id=bindparam("lease_key"),
            owner=bindparam("lease_owner"),
            acquired_at=utc_now(),
            expires_at=utc_now_plus(_SECONDS),
            heartbeat_at=utc_now(),
            epoch=1,
        )
    params = {"lease_key": key_id, "lease_owner": owner, "lease_seconds": float(seconds)}
    return tx.execute(statement, params) == 1


def try_acquire(tx: Tx, key_id: str, owner: str, seconds: float) -> bool:
    """Take the lease on ``key_id`` for ``seconds`` if nobody holds it, its holder's lease
    has expired, or ``owner`` already holds it (then it is extended). True if we hold it."""
    if _insert_new(tx, key_id, owner, seconds):
        return True
    current = tx.first(_CURRENT, {"lease_key": key_id})
    if current is None:
        # Released between our INSERT and SELECT: the key is free again.
        return _insert_new(tx, key_id, owner, seconds)
    holder, expired = current
    if holder == owner:
        return renew(tx, key_id, owner, seconds)
    if not expired:
        return False
    return tx.execute(_TAKE_OVER_EXPIRED, _take_over(key_id, holder, owner, seconds)) == 1


def take_over(tx: Tx, key_id: str, dead_owner: str, owner: str, seconds: float) -> bool:
    """Take the lease on ``key_id`` from ``dead_owner`` before it expires: the caller knows
    that owner's process is gone (``singleflight`` checks this for owners on its own host).
    Conditioned on the same owner, like the take-over of an expired lease, so of two waiters
    taking over at once one wins, and a lease that changed hands meanwhile is left alone.
    True if we hold it."""
    return tx.execute(_TAKE_OVER, _take_over(key_id, dead_owner, owner, seconds)) == 1


def _take_over(key_id: str, old_owner: str, owner: str, seconds: float) -> dict[str, Any]:
    """The parameters of a take-over statement (``_TAKE_OVER``, ``_TAKE_OVER_EXPIRED``)."""
    return {
        "lease_key": key_id,
        "old_owner": old_owner,
        "lease_owner": owner,
        "lease_seconds": float(seconds),
    }


def renew(tx: Tx, key_id: str, owner: str, seconds: float) -> bool:
    """Extend ``owner``'s lease to now + ``seconds``; False if someone else holds it now or
    it is gone (the owner must then stop: it may no longer publish)."""
    params = {"lease_key": key_id, "lease_owner": owner, "lease_seconds": float(seconds)}
    return tx.execute(_RENEW, params) == 1


def release(tx: Tx, key_id: str, owner: str) -> None:
    """Give the lease up (a no-op if ``owner`` no longer holds it)."""
    tx.execute(_RELEASE, {"lease_key": key_id, "lease_owner": owner})


def release_many(tx: Tx, held: Sequence[tuple[str, str]]) -> None:
    """``release`` of each ``(key_id, owner)``, as one statement run once per lease."""
    tx.execute(_RELEASE, [{"lease_key": key_id, "lease_owner": owner} for key_id, owner in held])


def release_all(conn: Connection, owner_prefix: str) -> int:
    """Give up every lease whose owner starts with ``owner_prefix`` (all the threads of one
    process: ``host:pid:token:``); how many went."""
    pattern = owner_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return _rowcount(conn.execute(delete(Lease).where(Lease.owner.like(pattern, escape="\\"))))


def get(conn: Connection, key_id: str) -> LeaseRecord | None:
    row = conn.execute(_lease_select().where(Lease.key_id == key_id)).first()
    return None if row is None else _record(row)


def expired(conn: Connection) -> list[LeaseRecord]:
    """Leases whose expiry has passed by the database clock (crashed or stalled owners)."""
    rows = conn.execute(
        _lease_select().where(Lease.expires_at < utc_now()).order_by(Lease.expires_at)
    )
    return [_record(row) for row in rows]


def delete_expired(conn: Connection) -> int:
    """Delete every expired lease; returns how many."""
    return _rowcount(conn.execute(delete(Lease).where(Lease.expires_at < utc_now())))
