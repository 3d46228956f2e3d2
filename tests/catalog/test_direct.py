"""The SQLite hit path through the driver (``catalog.direct``): the statements SQLAlchemy
compiles, the same records and the same rows as the ordinary path, the ordinary path for
everything out of the ordinary, and a fresh process that makes a hit without importing
SQLAlchemy."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.dialects import sqlite as sqlite_dialect

from featurecache.catalog import direct, migrate, queries
from featurecache.catalog.clock import utc_now
from featurecache.catalog.database import run_read, run_write
from featurecache.catalog.facade import Catalog
from featurecache.catalog.models import Artifact, CacheEntry, UsageEventRow
from featurecache.catalog.records import ArtifactRecord, UsageEvent
from featurecache.errors import CatalogVersionError
from tests.catalog.factories import artifact_id, key_id, publication

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.db"
    Catalog.open(f"sqlite:///{path}").close()  # created through the ordinary path
    return path


@pytest.fixture
def sqlite_catalog(db_path: Path) -> Iterator[Catalog]:
    opened = Catalog.open(f"sqlite:///{db_path}")
    try:
        yield opened
    finally:
        opened.close()


def _compiled(statement: object) -> str:
    return str(statement.compile(dialect=sqlite_dialect.dialect()))  # type: ignore[attr-defined]


def test_the_statements_are_what_sqlalchemy_compiles() -> None:
    assert _compiled(queries.LOOKUP) == direct.LOOKUP
    assert _compiled(select(utc_now())) == f"SELECT {direct.NOW} AS utc_now_1"
    columns = [c.name for c in UsageEventRow.__table__.columns if c.name != "id"]
    assert (
        _compiled(insert(UsageEventRow).values({c: None for c in columns})) == direct.INSERT_EVENT
    )
    for model, column, ours in (
        (CacheEntry, CacheEntry.key_id, direct.BUMP_ENTRY),
        (Artifact, Artifact.artifact_id, direct.BUMP_ARTIFACT),
    ):
        bump = (
            update(model)
            .where(column == bindparam("row_id"))
            .values(hits=model.hits + bindparam("n"), last_used_at=utc_now())
        )
        assert ours == _compiled(bump)


def test_the_schema_head_is_the_newest_script() -> None:
    assert migrate.head() == direct.SCHEMA_HEAD


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////abs/catalog.db", Path("/abs/catalog.db")),
        ("sqlite:///rel/catalog.db", Path("rel/catalog.db")),
        ("sqlite+pysqlite:///c.db", Path("c.db")),
        ("sqlite:///~/c.db", Path("~/c.db").expanduser()),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///file:c.db?mode=ro&uri=true", None),
        ("sqlite:///c.db?timeout=3", None),
        ("sqlite:///a%20b.db", None),
        ("postgresql+psycopg://u@h/db", None),
    ],
)
def test_only_plain_file_urls_take_the_driver_path(url: str, expected: Path | None) -> None:
    assert direct.sqlite_path(url) == expected


def test_a_current_catalog_opens_without_the_sqlalchemy_engine(sqlite_catalog: Catalog) -> None:
    assert sqlite_catalog._engine is None
    assert sqlite_catalog.lookup(key_id("absent")) is None
    assert sqlite_catalog.release_leases_of("nobody:") == 0
    assert sqlite_catalog._engine is None
    pub = publication(1)
    assert sqlite_catalog.publish(*pub.args()).entry.key_id == pub.entry.key_id
    assert sqlite_catalog._engine is None  # a miss's writes go through the driver too
    sqlite_catalog.set_pinned(pub.artifact.artifact_id, True)
    assert sqlite_catalog._engine is not None  # any other write opens it


def test_the_lookup_returns_what_the_ordinary_one_does(sqlite_catalog: Catalog) -> None:
    pub = publication(7)
    sqlite_catalog.publish(*pub.args())
    sqlite_catalog.set_pinned(pub.artifact.artifact_id, True)
    assert sqlite_catalog._direct is not None
    found = sqlite_catalog._direct.lookup(pub.entry.key_id)
    ordinary = run_read(
        sqlite_catalog.engine, lambda conn: queries.lookup(conn, pub.entry.key_id), what="lookup"
    )
    assert found == ordinary
    assert not isinstance(found, direct.NotHandled) and found is not None
    assert found.artifact.pinned is True
    assert found.entry.created_at.tzinfo is not None
    assert found.artifact.last_used_at.tzinfo is not None
    assert found.entry.components == pub.entry.components
    assert found.artifact.schema == pub.artifact.schema
    assert sqlite_catalog._direct.lookup(key_id("absent")) is None


def test_a_tombstoned_artifact_is_a_miss(sqlite_catalog: Catalog) -> None:
    pub = publication(8)
    sqlite_catalog.publish(*pub.args())
    run_write(
        sqlite_catalog.engine,
        lambda conn: conn.execute(
            update(Artifact)
            .where(Artifact.artifact_id == pub.artifact.artifact_id)
            .values(deleted_at=datetime.now(UTC))
        ),
        what="tombstone",
    )
    assert sqlite_catalog.lookup(pub.entry.key_id) is None


def test_a_composite_is_left_to_the_ordinary_path(sqlite_catalog: Catalog) -> None:
    pub = publication(9)
    parts = [
        replace(pub.artifact, artifact_id=artifact_id(f"part{i}"), uri=f"file:///p{i}")
        for i in range(2)
    ]
    composite: ArtifactRecord = replace(pub.artifact, structure={"kind": "tuple", "n": 2})
    hit = sqlite_catalog.publish(pub.entry, composite, pub.lineage, pub.code, parts)
    assert sqlite_catalog._direct is not None
    assert sqlite_catalog._direct.lookup(pub.entry.key_id) is direct.NOT_HANDLED
    found = sqlite_catalog.lookup(pub.entry.key_id)
    assert found == hit and found is not None and len(found.parts) == 2


def test_a_driver_error_falls_back_to_the_ordinary_path(
    sqlite_catalog: Catalog, tmp_path: Path
) -> None:
    pub = publication(10)
    hit = sqlite_catalog.publish(*pub.args())
    not_a_db = tmp_path / "not-a-database"
    not_a_db.write_bytes(b"this is no SQLite file, " * 100)
    sqlite_catalog._direct = direct.DirectSqlite(not_a_db, 1000)
    assert sqlite_catalog.lookup(pub.entry.key_id) == hit
    sqlite_catalog.record_event(
        "hit",
        key_id=pub.entry.key_id,
        feature="sessions",
        artifact_id=pub.artifact.artifact_id,
        duration_seconds=0.1,
        compute_seconds=2.5,
    )
    found = sqlite_catalog.lookup(pub.entry.key_id)
    assert found is not None and found.artifact.hits == 1


def _usage_rows(catalog: Catalog) -> list[tuple[object, ...]]:
    with sqlite3.connect(catalog.sqlite_file() or "") as conn:
        events = conn.execute(
            "SELECT length(at), feature, key_id, artifact_id, kind, duration_seconds, "
            "compute_seconds, run_id FROM usage_events ORDER BY id"
        ).fetchall()
        bumps = conn.execute(
            "SELECT e.hits, a.hits, length(e.last_used_at), length(a.last_used_at) "
            "FROM cache_entries e JOIN artifacts a USING (artifact_id) ORDER BY e.key_id"
        ).fetchall()
    return [*events, *bumps]


def test_usage_events_write_the_rows_the_ordinary_path_writes(tmp_path: Path) -> None:
    given = datetime(2026, 1, 2, 3, 4, 5, 6789, tzinfo=UTC)
    pubs = [publication(i) for i in range(3)]
    events = [
        UsageEvent("hit", pubs[0].entry.key_id, "sessions", pubs[0].artifact.artifact_id, 0.1, 2.5),
        UsageEvent("hit", pubs[0].entry.key_id, "sessions", pubs[0].artifact.artifact_id, 0.2, 2.5),
        UsageEvent("hit", pubs[1].entry.key_id, "sessions", pubs[1].artifact.artifact_id, 0.3, 2.5),
        UsageEvent("miss", pubs[2].entry.key_id, "sessions", None, 0.4, 1.0, run_id="r1", at=given),
    ]
    rows = []
    for name in ("direct", "ordinary"):
        path = tmp_path / f"{name}.db"
        with Catalog.open(f"sqlite:///{path}") as catalog:
            for pub in pubs:
                catalog.publish(*pub.args())
            if name == "direct":
                assert catalog._direct is not None
                assert catalog._direct.record_events(events)
            else:
                from featurecache.catalog import events as usage_rows

                run_write(
                    catalog.engine, lambda conn: usage_rows.record_events(conn, events), what=""
                )
            rows.append(_usage_rows(catalog))
            with sqlite3.connect(path) as conn:
                stamps = [r[0] for r in conn.execute("SELECT at FROM usage_events ORDER BY id")]
            assert stamps[-1] == "2026-01-02 03:04:05.006789"
            assert all(len(stamp) == 26 for stamp in stamps)
    assert rows[0] == rows[1]
    assert sorted(row[:2] for row in rows[0][-3:]) == [(0, 0), (1, 1), (2, 2)]  # added up


def test_a_new_database_is_created_by_the_ordinary_path(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with Catalog.open(f"sqlite:///{path}") as catalog:
        assert catalog._engine is not None
        assert catalog._direct is not None  # lookups still go through the driver
    with Catalog.open(f"sqlite:///{path}") as catalog:
        assert catalog._engine is None


def test_an_older_schema_is_still_refused(db_path: Path) -> None:
    url = f"sqlite:///{db_path}"
    with Catalog.open(url) as catalog:
        run_write(
            catalog.engine,
            lambda conn: conn.execute(text("UPDATE alembic_version SET version_num = '0001'")),
            what="",
        )
    with pytest.raises(CatalogVersionError, match="featurecache db upgrade"):
        Catalog.open(url)


def test_an_in_memory_catalog_takes_the_ordinary_path() -> None:
    with Catalog.open("sqlite://") as memory:
        assert memory._direct is None and memory._engine is not None
        assert memory.lookup(key_id("absent")) is None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_makes_its_own_connection(sqlite_catalog: Catalog) -> None:
    pub = publication(11)
    sqlite_catalog.publish(*pub.args())
    assert sqlite_catalog.lookup(pub.entry.key_id) is not None  # the parent's connection
    pid = os.fork()
    if pid == 0:  # the child: the inherited catalog answers through a connection of its own
        try:
            ok = sqlite_catalog.lookup(pub.entry.key_id) is not None
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sqlite_catalog.lookup(pub.entry.key_id) is not None  # the parent's still works


FEATURE = """
import polars as pl
from featurecache import cached_feature

@cached_feature
def doubled(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(y=pl.col("x") * 2)
"""

CALL = """
import sys
import polars as pl
import featurecache
import features

features.doubled(pl.DataFrame({"x": [1, 2, 3]}))
engine = featurecache.default_cache().engine
engine.flush()  # the usage event, as at exit
print(engine.session.hits, engine.session.misses, "sqlalchemy" in sys.modules)
"""


def test_a_fresh_process_hits_without_importing_sqlalchemy(tmp_path: Path) -> None:
    (tmp_path / "features.py").write_text(textwrap.dedent(FEATURE))
    (tmp_path / "call.py").write_text(textwrap.dedent(CALL))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEATURECACHE_", "MLFLOW_"))}
    env |= {
        "PYTHONPATH": os.pathsep.join([str(REPO), str(tmp_path)]),
        "FEATURECACHE_CATALOG": f"sqlite:///{tmp_path / 'cache' / 'catalog.db'}",
        "FEATURECACHE_STORE": str(tmp_path / "cache" / "artifacts"),
        "FEATURECACHE_STATE_DIR": str(tmp_path / "cache" / "state"),
    }

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "call.py"], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert run() == ["0", "1", "True"]  # the miss's statements are SQLAlchemy's
    assert run() == ["1", "0", "False"]
    with sqlite3.connect(tmp_path / "cache" / "catalog.db") as conn:
        assert conn.execute("SELECT hits FROM cache_entries").fetchall() == [(1,)]
        kinds = conn.execute("SELECT kind FROM usage_events ORDER BY id").fetchall()
    assert kinds == [("miss",), ("hit",)]


def test_a_row_not_as_featurecache_stores_it_is_left_to_the_ordinary_path(
    sqlite_catalog: Catalog, db_path: Path
) -> None:
    pub = publication(12)
    sqlite_catalog.publish(*pub.args())
    assert sqlite_catalog._direct is not None
    with sqlite3.connect(db_path) as conn:  # written by hand, without microseconds
        conn.execute("UPDATE cache_entries SET created_at = '2026-01-02 03:04:05'")
    found = sqlite_catalog._direct.lookup(pub.entry.key_id)
    assert found == run_read(
        sqlite_catalog.engine, lambda conn: queries.lookup(conn, pub.entry.key_id), what=""
    )
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE cache_entries SET components = 'not json'")
    assert sqlite_catalog._direct.lookup(pub.entry.key_id) is direct.NOT_HANDLED


def test_a_repeated_lookup_of_an_unchanged_row_reuses_its_parse(
    sqlite_catalog: Catalog, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same row gives the same hit without parsing it again; any change to the row (here
    its components, then its hit count) is parsed afresh and seen."""
    pub = publication(13)
    sqlite_catalog.publish(*pub.args())
    reader = sqlite_catalog._direct
    assert reader is not None
    first = reader.lookup(pub.entry.key_id)
    parsed: list[object] = []
    real_entry = direct._entry
    monkeypatch.setattr(direct, "_entry", lambda row: parsed.append(row) or real_entry(row))
    assert reader.lookup(pub.entry.key_id) is first
    assert parsed == []
    with sqlite3.connect(db_path) as conn:
        conn.execute('UPDATE cache_entries SET components = \'{"observed": {"files": []}}\'')
    changed = reader.lookup(pub.entry.key_id)
    assert not isinstance(changed, direct.NotHandled) and changed is not None
    assert changed.entry.components == {"observed": {"files": []}}
    assert len(parsed) == 1
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE artifacts SET hits = hits + 1")
    bumped = reader.lookup(pub.entry.key_id)
    assert not isinstance(bumped, direct.NotHandled) and bumped is not None
    assert bumped.artifact.hits == changed.artifact.hits + 1
    assert len(parsed) == 2


def test_the_parsed_rows_are_bounded(
    sqlite_catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct, "_PARSED_KEPT", 2)
    reader = sqlite_catalog._direct
    assert reader is not None
    for n in range(20, 26):
        pub = publication(n)
        sqlite_catalog.publish(*pub.args())
        key = pub.entry.key_id
        found = reader.lookup(key)
        assert found == run_read(
            sqlite_catalog.engine, lambda conn, key=key: queries.lookup(conn, key), what=""
        )
        assert len(reader._parsed) <= 2
