"""Alembic environment for the featurecache catalog.

featurecache runs its migrations itself (``featurecache.catalog.migrate``), on a connection it
has already opened and locked; there is no alembic.ini in the user's project. The connection
arrives in ``config.attributes["connection"]`` and is already inside a transaction, which the
migrations join (SQLite and PostgreSQL both roll DDL back with it).
"""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "featurecache migrations run through featurecache itself: use `featurecache db upgrade`"
    )

# The migrations never import the live models: target_metadata is only given by the test
# that compares the migrated schema with models.py.
context.configure(
    connection=connection,
    target_metadata=config.attributes.get("target_metadata"),
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
