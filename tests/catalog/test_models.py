"""The models' portable JSON type: JSON text on SQLite, JSONB on PostgreSQL, and the
PostgreSQL dialect imported only when a PostgreSQL catalog needs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateTable

from featurecache.catalog import Catalog
from featurecache.catalog.models import Artifact

REPO = Path(__file__).resolve().parents[2]


def test_json_columns_are_jsonb_on_postgres_and_json_on_sqlite() -> None:
    pg = str(CreateTable(Artifact.__table__).compile(dialect=postgresql.dialect()))
    lite = str(CreateTable(Artifact.__table__).compile(dialect=sqlite.dialect()))
    assert "schema JSONB NOT NULL" in pg and "structure JSONB" in pg
    assert "schema JSON NOT NULL" in lite and "structure JSON" in lite


def test_a_sqlite_catalog_does_not_import_the_postgres_dialect(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    Catalog.open(url).close()  # created here (Alembic imports every dialect it knows)
    code = (
        "import sys\n"
        "from featurecache.catalog import Catalog\n"
        "from tests.catalog.factories import publication\n"
        f"with Catalog.open({url!r}) as c:\n"
        "    c.publish(*publication(1).args())\n"
        "    c.artifact_listing()\n"
        "print(any(m.startswith('sqlalchemy.dialects.postgresql') for m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
