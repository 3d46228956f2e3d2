"""The catalog's tables as SQLAlchemy 2 declarative models (the full schema, version 0001).

These models describe the schema for queries; they never create it. Alembic owns the schema
(``migrations/versions/``), and ``tests/catalog/test_migrate.py`` checks that the two agree.
ORM objects never leave ``featurecache.catalog``: callers get the records of ``records.py``.

Conventions: timestamps are timezone-aware UTC (``UTCDateTime``) and, where the catalog writes
them, come from the database clock (``clock.py``) so that hosts with skewed clocks agree;
columns are non-null unless a null means something; digests are stored as text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Constraint names are spelled out so the migration scripts can name them identically.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DIGEST = 64  # room for a longer digest than today's 32-hex xxh3-128 without a migration
NAME = 255


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``. SQLite has no time zones, so values are stored as UTC
    text ('YYYY-MM-DD HH:MM:SS.ffffff', the format ``clock.utc_now`` also renders), which
    sorts and compares correctly as text. Naive datetimes are refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the catalog stores aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Portable JSON: JSON text on SQLite, JSONB on PostgreSQL.
JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY (a rowid alias), not a BIGINT one.
EventId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads this class attribute)
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[dict[str, Any]]: JSONType,
    }


class Feature(Base):
    """Every feature name ever published."""

    __tablename__ = "features"

    name: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    created_at: Mapped[datetime]


class CodeVersion(Base):
    """A code identity of a feature: its source and the breakdown behind ``code_digest``."""

    __tablename__ = "code_versions"

    code_digest: Mapped[str] = mapped_column(String(DIGEST), primary_key=True)
    feature: Mapped[str] = mapped_column(String(NAME), ForeignKey("features.name"))
    source: Mapped[str] = mapped_column(Text)
    components: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class Artifact(Base):
    """One immutable Parquet artifact. ``deleted_at`` set = tombstoned: never served, and
    the GC grace period for deleting its file runs from that time."""

    __tablename__ = "artifacts"

    artifact_id: Mapped[str] = mapped_column(String(DIGEST), primary_key=True)
    uri: Mapped[str] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(BigInteger)
    columns: Mapped[int] = mapped_column(Integer)
    schema: Mapped[list[dict[str, Any]]]
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    file_hash: Mapped[str] = mapped_column(String(128))
    compute_seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime]
    hits: Mapped[int] = mapped_column(BigInteger, default=0)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime | None]
    # A composite result (``results.codec``): the JSON of its shape and scalars, its parts in
    # ``artifact_parts``; no file of its own. NULL for a single Parquet file.
    structure: Mapped[dict[str, Any] | None]

    __table_args__ = (Index(None, "last_used_at"),)


class ArtifactPart(Base):
    """Part ``position`` of the composite ``composite_id``: an ordinary single-file artifact.
    No foreign key on ``part_id``: GC keeps the parts of every live composite itself."""

    __tablename__ = "artifact_parts"

    composite_id: Mapped[str] = mapped_column(
        String(DIGEST), ForeignKey("artifacts.artifact_id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    part_id: Mapped[str] = mapped_column(String(DIGEST), index=True)


class CacheEntry(Base):
    """A cache key and the artifact it resolves to, with every component of the key."""

    __tablename__ = "cache_entries"

    key_id: Mapped[str] = mapped_column(String(DIGEST), primary_key=True)
    feature: Mapped[str] = mapped_column(String(NAME), ForeignKey("features.name"))
    code_digest: Mapped[str] = mapped_column(
        String(DIGEST), ForeignKey("code_versions.code_digest")
    )
    # Deleting an artifact row (GC's last step) takes its entries with it.
    artifact_id: Mapped[str] = mapped_column(
        String(DIGEST), ForeignKey("artifacts.artifact_id", ondelete="CASCADE")
    )
    return_kind: Mapped[str] = mapped_column(String(16))
    components: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime]
    hits: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (
        Index(None, "feature", "created_at"),
        Index(None, "artifact_id"),
    )


class ArtifactInput(Base):
    """A lineage edge: an input of the materialisation that produced ``artifact_id``."""

    __tablename__ = "artifact_inputs"

    artifact_id: Mapped[str] = mapped_column(
        String(DIGEST), ForeignKey("artifacts.artifact_id", ondelete="CASCADE"), primary_key=True
    )
    argument: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(NAME))
    # No foreign key: an upstream artifact may be collected while its descendants live on.
    upstream_artifact_id: Mapped[str | None] = mapped_column(String(DIGEST))
    source_uri: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index(None, "upstream_artifact_id"),)


class UsageEventRow(Base):
    """An append-only log of calls: hits (``compute_seconds`` = seconds avoided) and misses."""

    __tablename__ = "usage_events"

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    feature: Mapped[str] = mapped_column(String(NAME))
    key_id: Mapped[str] = mapped_column(String(DIGEST))
    artifact_id: Mapped[str | None] = mapped_column(String(DIGEST))
    kind: Mapped[str] = mapped_column(String(8))
    duration_seconds: Mapped[float] = mapped_column(Float)
    compute_seconds: Mapped[float] = mapped_column(Float)
    run_id: Mapped[str | None] = mapped_column(String(NAME))

    __table_args__ = (
        CheckConstraint("kind IN ('hit', 'miss')", name="kind"),
        Index(None, "feature", "at"),
        Index(None, "at"),
    )


class RunUsageRow(Base):
    """An MLflow run that used an artifact (as an input, or by producing it)."""

    __tablename__ = "run_usages"

    run_id: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    artifact_id: Mapped[str] = mapped_column(String(DIGEST), primary_key=True)
    context: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    tracking_uri: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]

    __table_args__ = (Index(None, "artifact_id"),)


class Lease(Base):
    """A single-flight lease on a key: who computes it, until when (database clock).
    ``epoch`` counts take-overs, a fencing token for whoever needs one."""

    __tablename__ = "leases"

    key_id: Mapped[str] = mapped_column(String(DIGEST), primary_key=True)
    owner: Mapped[str] = mapped_column(String(NAME))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    epoch: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (Index(None, "expires_at"),)


class FingerprintAlias(Base):
    """Another tool's fingerprint of content we know by our own (e.g. DVC md5 -> xxh3)."""

    __tablename__ = "fingerprint_aliases"

    algo: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    canonical: Mapped[str] = mapped_column(String(NAME))
    created_at: Mapped[datetime]
