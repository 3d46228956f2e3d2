"""The catalog's tables as SQLAlchemy Core tables, one model class each (the full schema,
version 0001): ``Artifact.artifact_id`` is a column, ``Artifact`` stands for its table.

These models describe the schema for queries; they never create it. Alembic owns the schema
(``migrations/versions/``), and ``tests/catalog/test_migrate.py`` checks that the two agree.
Rows never leave ``featurecache.catalog``: callers get the records of ``records.py``.

Conventions: timestamps are timezone-aware UTC (``UTCDateTime``) and, where the catalog writes
them, come from the database clock (``clock.py``) so that hosts with skewed clocks agree;
columns are non-null unless a null means something; digests are stored as text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.sql.expression import ColumnClause
from sqlalchemy.types import TypeDecorator, TypeEngine

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


class _PortableJSON(TypeDecorator[Any]):
    """JSON text on SQLite, JSONB on PostgreSQL. ``JSON().with_variant(JSONB(), …)`` imported
    ``sqlalchemy.dialects.postgresql`` (25-58 ms) in every process, SQLite ones included: the
    PostgreSQL type is made when a PostgreSQL dialect first asks for it."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


JSONType = _PortableJSON()
# SQLite only auto-increments an INTEGER PRIMARY KEY (a rowid alias), not a BIGINT one.
EventId = BigInteger().with_variant(Integer(), "sqlite")


class _ModelType(type):
    """A model class stands for its table wherever SQLAlchemy takes one (``select``,
    ``insert``, ``update``, ``delete``, ``with_for_update(of=…)``)."""

    def __clause_element__(cls) -> Table:
        table: Table = cls.__dict__["__table__"]
        return table


def _column(*args: Any, nullable: bool = False, **kwargs: Any) -> Column[Any]:
    """A column, non-null unless ``nullable`` (primary keys never are); named after the class
    attribute that holds it."""
    return Column(*args, nullable=nullable and not kwargs.get("primary_key", False), **kwargs)


class Base(metaclass=_ModelType):
    """The models' base: each subclass's ``Column`` attributes, in order, plus its
    ``__table_args__`` become its ``__table__`` in ``Base.metadata``. (Annotated as
    ``ColumnClause``: SQLAlchemy types a ``Column`` read from a class as ``Never``, to keep
    its ``TypedColumns`` from being used as mapped classes.) SQLAlchemy Core only
    (no ORM: its import alone cost a fresh process making one hit about 0.1 s)."""

    metadata: ClassVar[MetaData] = MetaData(naming_convention=NAMING_CONVENTION)
    __tablename__: ClassVar[str]
    __table__: ClassVar[Table]
    __table_args__: ClassVar[tuple[Any, ...]] = ()

    def __init_subclass__(cls) -> None:
        columns = []
        for name, value in list(cls.__dict__.items()):
            if isinstance(value, Column):
                value.name = value.key = name
                columns.append(value)
        cls.__table__ = Table(cls.__tablename__, Base.metadata, *columns, *cls.__table_args__)


class Feature(Base):
    """Every feature name ever published."""

    __tablename__ = "features"

    name: ColumnClause[str] = _column(String(NAME), primary_key=True)
    created_at: ColumnClause[datetime] = _column(UTCDateTime())


class CodeVersion(Base):
    """A code identity of a feature: its source and the breakdown behind ``code_digest``."""

    __tablename__ = "code_versions"

    code_digest: ColumnClause[str] = _column(String(DIGEST), primary_key=True)
    feature: ColumnClause[str] = _column(String(NAME), ForeignKey("features.name"))
    source: ColumnClause[str] = _column(Text)
    components: ColumnClause[dict[str, Any]] = _column(JSONType)
    created_at: ColumnClause[datetime] = _column(UTCDateTime())


class Artifact(Base):
    """One immutable Parquet artifact. ``deleted_at`` set = tombstoned: never served, and
    the GC grace period for deleting its file runs from that time."""

    __tablename__ = "artifacts"

    artifact_id: ColumnClause[str] = _column(String(DIGEST), primary_key=True)
    uri: ColumnClause[str] = _column(Text)
    rows: ColumnClause[int] = _column(BigInteger)
    columns: ColumnClause[int] = _column(Integer)
    schema: ColumnClause[list[dict[str, Any]]] = _column(JSONType)
    size_bytes: ColumnClause[int] = _column(BigInteger)
    file_hash: ColumnClause[str] = _column(String(128))
    compute_seconds: ColumnClause[float] = _column(Float)
    created_at: ColumnClause[datetime] = _column(UTCDateTime())
    last_used_at: ColumnClause[datetime] = _column(UTCDateTime())
    hits: ColumnClause[int] = _column(BigInteger, default=0)
    pinned: ColumnClause[bool] = _column(Boolean, default=False)
    deleted_at: ColumnClause[datetime | None] = _column(UTCDateTime(), nullable=True)
    # A composite result (``results.codec``): the JSON of its shape and scalars, its parts in
    # ``artifact_parts``; no file of its own. NULL for a single Parquet file.
    structure: ColumnClause[dict[str, Any] | None] = _column(JSONType, nullable=True)

    __table_args__ = (Index(None, "last_used_at"),)


class ArtifactPart(Base):
    """Part ``position`` of the composite ``composite_id``: an ordinary single-file artifact.
    No foreign key on ``part_id``: GC keeps the parts of every live composite itself."""

    __tablename__ = "artifact_parts"

    composite_id: ColumnClause[str] = _column(
        String(DIGEST), ForeignKey("artifacts.artifact_id", ondelete="CASCADE"), primary_key=True
    )
    position: ColumnClause[int] = _column(Integer, primary_key=True)
    part_id: ColumnClause[str] = _column(String(DIGEST), index=True)


class CacheEntry(Base):
    """A cache key and the artifact it resolves to, with every component of the key."""

    __tablename__ = "cache_entries"

    key_id: ColumnClause[str] = _column(String(DIGEST), primary_key=True)
    feature: ColumnClause[str] = _column(String(NAME), ForeignKey("features.name"))
    code_digest: ColumnClause[str] = _column(
        String(DIGEST), ForeignKey("code_versions.code_digest")
    )
    # Deleting an artifact row (GC's last step) takes its entries with it.
    artifact_id: ColumnClause[str] = _column(
        String(DIGEST), ForeignKey("artifacts.artifact_id", ondelete="CASCADE")
    )
    return_kind: ColumnClause[str] = _column(String(16))
    components: ColumnClause[dict[str, Any]] = _column(JSONType)
    created_at: ColumnClause[datetime] = _column(UTCDateTime())
    last_used_at: ColumnClause[datetime] = _column(UTCDateTime())
    hits: ColumnClause[int] = _column(BigInteger, default=0)

    __table_args__ = (
        Index(None, "feature", "created_at"),
        Index(None, "artifact_id"),
    )


class ArtifactInput(Base):
    """A lineage edge: an input of the materialisation that produced ``artifact_id``."""

    __tablename__ = "artifact_inputs"

    artifact_id: ColumnClause[str] = _column(
        String(DIGEST), ForeignKey("artifacts.artifact_id", ondelete="CASCADE"), primary_key=True
    )
    argument: ColumnClause[str] = _column(String(NAME), primary_key=True)
    fingerprint: ColumnClause[str] = _column(String(NAME))
    # No foreign key: an upstream artifact may be collected while its descendants live on.
    upstream_artifact_id: ColumnClause[str | None] = _column(String(DIGEST), nullable=True)
    source_uri: ColumnClause[str | None] = _column(Text, nullable=True)

    __table_args__ = (Index(None, "upstream_artifact_id"),)


class UsageEventRow(Base):
    """An append-only log of calls: hits (``compute_seconds`` = seconds avoided) and misses."""

    __tablename__ = "usage_events"

    id: ColumnClause[int] = _column(EventId, primary_key=True, autoincrement=True)
    at: ColumnClause[datetime] = _column(UTCDateTime())
    feature: ColumnClause[str] = _column(String(NAME))
    key_id: ColumnClause[str] = _column(String(DIGEST))
    artifact_id: ColumnClause[str | None] = _column(String(DIGEST), nullable=True)
    kind: ColumnClause[str] = _column(String(8))
    duration_seconds: ColumnClause[float] = _column(Float)
    compute_seconds: ColumnClause[float] = _column(Float)
    run_id: ColumnClause[str | None] = _column(String(NAME), nullable=True)

    __table_args__ = (
        CheckConstraint("kind IN ('hit', 'miss')", name="kind"),
        Index(None, "feature", "at"),
        Index(None, "at"),
    )


class RunUsageRow(Base):
    """An MLflow run that used an artifact (as an input, or by producing it)."""

    __tablename__ = "run_usages"

    run_id: ColumnClause[str] = _column(String(NAME), primary_key=True)
    artifact_id: ColumnClause[str] = _column(String(DIGEST), primary_key=True)
    context: ColumnClause[str] = _column(String(NAME), primary_key=True)
    tracking_uri: ColumnClause[str] = _column(Text)
    at: ColumnClause[datetime] = _column(UTCDateTime())

    __table_args__ = (Index(None, "artifact_id"),)


class Lease(Base):
    """A single-flight lease on a key: who computes it, until when (database clock).
    ``epoch`` counts take-overs, a fencing token for whoever needs one."""

    __tablename__ = "leases"

    key_id: ColumnClause[str] = _column(String(DIGEST), primary_key=True)
    owner: ColumnClause[str] = _column(String(NAME))
    acquired_at: ColumnClause[datetime] = _column(UTCDateTime())
    expires_at: ColumnClause[datetime] = _column(UTCDateTime())
    heartbeat_at: ColumnClause[datetime] = _column(UTCDateTime())
    epoch: ColumnClause[int] = _column(Integer, default=1)

    __table_args__ = (Index(None, "expires_at"),)


class FingerprintAlias(Base):
    """Another tool's fingerprint of content we know by our own (e.g. DVC md5 -> xxh3)."""

    __tablename__ = "fingerprint_aliases"

    algo: ColumnClause[str] = _column(String(32), primary_key=True)
    value: ColumnClause[str] = _column(String(NAME), primary_key=True)
    canonical: ColumnClause[str] = _column(String(NAME))
    created_at: ColumnClause[datetime] = _column(UTCDateTime())
