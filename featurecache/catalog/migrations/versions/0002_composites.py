"""Composite results: a result made of parts (a train/test split tuple, a dict of frames, a
Series with its scalars) is one ``artifacts`` row whose ``structure`` is the JSON of the
result's shape and scalars, and whose parts, each an ordinary single-file artifact, are listed
in order in ``artifact_parts``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07

``part_id`` has no foreign key, as ``artifact_inputs.upstream_artifact_id``: GC keeps every part
of a composite that is not tombstoned (``ops.gc_plan``), and a hit whose part row is gone
forgets the composite and recomputes it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DIGEST = 64


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.add_column(sa.Column("structure", _json(), nullable=True))
    op.create_table(
        "artifact_parts",
        sa.Column("composite_id", sa.String(DIGEST), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("part_id", sa.String(DIGEST), nullable=False),
        sa.PrimaryKeyConstraint("composite_id", "position", name="pk_artifact_parts"),
        sa.ForeignKeyConstraint(
            ["composite_id"],
            ["artifacts.artifact_id"],
            name="fk_artifact_parts_composite_id_artifacts",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_artifact_parts_part_id", "artifact_parts", ["part_id"])


def downgrade() -> None:
    op.drop_index("ix_artifact_parts_part_id", table_name="artifact_parts")
    op.drop_table("artifact_parts")
    if op.get_bind().dialect.name == "sqlite":
        # Not a batch "move and copy": with foreign keys on, dropping the old ``artifacts``
        # table would cascade into ``entries`` and lose every cached result. SQLite 3.35+
        # drops a column in place.
        op.execute("ALTER TABLE artifacts DROP COLUMN structure")
    else:
        op.drop_column("artifacts", "structure")
