"""The initial catalog: features, code versions, artifacts, cache entries, lineage, usage
events, MLflow run usages, single-flight leases and fingerprint aliases.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Spelled out with op.create_table (never the live models), so this revision creates the same
schema forever. Constraint and index names follow models.NAMING_CONVENTION.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

DIGEST = 64
NAME = 255


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _time(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "features",
        sa.Column("name", sa.String(NAME), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("name", name="pk_features"),
    )
    op.create_table(
        "code_versions",
        sa.Column("code_digest", sa.String(DIGEST), nullable=False),
        sa.Column("feature", sa.String(NAME), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("components", _json(), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("code_digest", name="pk_code_versions"),
        sa.ForeignKeyConstraint(
            ["feature"], ["features.name"], name="fk_code_versions_feature_features"
        ),
    )
    op.create_table(
        "artifacts",
        sa.Column("artifact_id", sa.String(DIGEST), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("columns", sa.Integer(), nullable=False),
        sa.Column("schema", _json(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("file_hash", sa.String(128), nullable=False),
        sa.Column("compute_seconds", sa.Float(), nullable=False),
        _time("created_at"),
        _time("last_used_at"),
        sa.Column("hits", sa.BigInteger(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        _time("deleted_at", nullable=True),
        sa.PrimaryKeyConstraint("artifact_id", name="pk_artifacts"),
    )
    op.create_index("ix_artifacts_last_used_at", "artifacts", ["last_used_at"])
    op.create_table(
        "cache_entries",
        sa.Column("key_id", sa.String(DIGEST), nullable=False),
        sa.Column("feature", sa.String(NAME), nullable=False),
        sa.Column("code_digest", sa.String(DIGEST), nullable=False),
        sa.Column("artifact_id", sa.String(DIGEST), nullable=False),
        sa.Column("return_kind", sa.String(16), nullable=False),
        sa.Column("components", _json(), nullable=False),
        _time("created_at"),
        _time("last_used_at"),
        sa.Column("hits", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_cache_entries"),
        sa.ForeignKeyConstraint(
            ["feature"], ["features.name"], name="fk_cache_entries_feature_features"
        ),
        sa.ForeignKeyConstraint(
            ["code_digest"],
            ["code_versions.code_digest"],
            name="fk_cache_entries_code_digest_code_versions",
        ),
        sa.ForeignKeyConstraint(
            ["artifact_id"],
            ["artifacts.artifact_id"],
            name="fk_cache_entries_artifact_id_artifacts",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_cache_entries_feature_created_at", "cache_entries", ["feature", "created_at"]
    )
    op.create_index("ix_cache_entries_artifact_id", "cache_entries", ["artifact_id"])
    op.create_table(
        "artifact_inputs",
        sa.Column("artifact_id", sa.String(DIGEST), nullable=False),
        sa.Column("argument", sa.String(NAME), nullable=False),
        sa.Column("fingerprint", sa.String(NAME), nullable=False),
        sa.Column("upstream_artifact_id", sa.String(DIGEST), nullable=True),
        sa.Column("source_uri", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("artifact_id", "argument", name="pk_artifact_inputs"),
        sa.ForeignKeyConstraint(
            ["artifact_id"],
            ["artifacts.artifact_id"],
            name="fk_artifact_inputs_artifact_id_artifacts",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_artifact_inputs_upstream_artifact_id", "artifact_inputs", ["upstream_artifact_id"]
    )
    op.create_table(
        "usage_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        _time("at"),
        sa.Column("feature", sa.String(NAME), nullable=False),
        sa.Column("key_id", sa.String(DIGEST), nullable=False),
        sa.Column("artifact_id", sa.String(DIGEST), nullable=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("compute_seconds", sa.Float(), nullable=False),
        sa.Column("run_id", sa.String(NAME), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_usage_events"),
        sa.CheckConstraint("kind IN ('hit', 'miss')", name="ck_usage_events_kind"),
    )
    op.create_index("ix_usage_events_feature_at", "usage_events", ["feature", "at"])
    op.create_index("ix_usage_events_at", "usage_events", ["at"])
    op.create_table(
        "run_usages",
        sa.Column("run_id", sa.String(NAME), nullable=False),
        sa.Column("artifact_id", sa.String(DIGEST), nullable=False),
        sa.Column("context", sa.String(NAME), nullable=False),
        sa.Column("tracking_uri", sa.Text(), nullable=False),
        _time("at"),
        sa.PrimaryKeyConstraint("run_id", "artifact_id", "context", name="pk_run_usages"),
    )
    op.create_index("ix_run_usages_artifact_id", "run_usages", ["artifact_id"])
    op.create_table(
        "leases",
        sa.Column("key_id", sa.String(DIGEST), nullable=False),
        sa.Column("owner", sa.String(NAME), nullable=False),
        _time("acquired_at"),
        _time("expires_at"),
        _time("heartbeat_at"),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_leases"),
    )
    op.create_index("ix_leases_expires_at", "leases", ["expires_at"])
    op.create_table(
        "fingerprint_aliases",
        sa.Column("algo", sa.String(32), nullable=False),
        sa.Column("value", sa.String(NAME), nullable=False),
        sa.Column("canonical", sa.String(NAME), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("algo", "value", name="pk_fingerprint_aliases"),
    )


def downgrade() -> None:
    for table in (
        "fingerprint_aliases",
        "leases",
        "run_usages",
        "usage_events",
        "artifact_inputs",
        "cache_entries",
        "artifacts",
        "code_versions",
        "features",
    ):
        op.drop_table(table)
