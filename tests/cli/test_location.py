"""Where the cache is, as the CLI tells it: every command names its cache, commands never
create one where the configuration points at nothing, a project's cache is found from any
subfolder, the user cache from any folder outside a project, and ``featurecache info`` says
where each setting came from. At ``COLUMNS=80``, like a pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.cli.cli_support import cli_invoker
from tests.e2e import REPO

FEATURES = """
import polars as pl
from featurecache import cached_feature

@cached_feature
def sessionize(n: int, gap_minutes: int = 30) -> pl.DataFrame:
    return pl.DataFrame({"n": [n] * 3, "gap": [gap_minutes] * 3})

sessionize(1, gap_minutes=15)
sessionize(2)
"""

READ_ONLY = [
    ("ls",),
    ("show", "abc"),
    ("why", "sessionize"),
    ("stats",),
    ("lineage", "abc"),
    ("verify",),
]
# Commands that write to a cache have nothing to do on one that does not exist either.
NEEDS_A_CACHE = [*READ_ONLY, ("pin", "abc"), ("gc", "--older-than", "1d")]


@pytest.fixture(autouse=True)
def _default_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("FEATURECACHE_") and name != "FEATURECACHE_TEST_PG_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "80")
    # A user cache of this test's own: whether it exists is part of what is tested.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Any:
    return cli_invoker(capsys)


def run_features(folder: Path) -> None:
    """A user's script, in a fresh process, with the default location (no FEATURECACHE_*)."""
    (folder / "features.py").write_text(textwrap.dedent(FEATURES))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURECACHE_")}
    env["PYTHONPATH"] = str(REPO)
    subprocess.run([sys.executable, "features.py"], cwd=folder, env=env, check=True, timeout=300)


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "src" / "deep").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "p"\n')
    return root


@pytest.mark.parametrize("argv", NEEDS_A_CACHE, ids=[a[0] for a in NEEDS_A_CACHE])
def test_commands_never_create_a_cache_they_do_not_find(
    argv: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    root = project(tmp_path)
    monkeypatch.chdir(root / "src" / "deep")
    before = files_under(root)
    code, out, err = run(*argv)
    assert code == 2 and out == ""
    assert err.strip() == (
        f"featurecache: error: no featurecache cache at {root.resolve() / '.featurecache'} "
        f"(project root: {root.resolve()}); run your features first or set "
        "FEATURECACHE_CATALOG"
    )
    assert files_under(root) == before  # no .featurecache/, no empty catalog


def test_outside_a_project_the_error_names_the_user_cache_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    folder = tmp_path / "loose"
    folder.mkdir()
    monkeypatch.chdir(folder)
    user_cache = Path(os.environ["XDG_CACHE_HOME"]) / "featurecache"
    code, _, err = run("ls")
    assert code == 2
    assert f"no featurecache cache at {user_cache} (project root: none, " in err
    assert not user_cache.exists() and files_under(folder) == set()


def test_a_configured_catalog_that_does_not_exist_is_named_and_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    catalog = tmp_path / "team" / "catalog.db"
    monkeypatch.setenv("FEATURECACHE_CATALOG", f"sqlite:///{catalog}")
    code, _, err = run("stats", "--json")
    assert code == 2 and f"no featurecache cache at {catalog} " in err
    assert not catalog.parent.exists()


def test_a_project_cache_is_found_from_any_subfolder_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    root = project(tmp_path).resolve()
    run_features(root)
    monkeypatch.chdir(root / "src" / "deep")
    code, out, _ = run("ls")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"cache: {root / '.featurecache'} (project root: {root})"
    assert lines[1] == "2 artifacts" and "gap_minutes=15" in out
    rows = json.loads(run("ls", "--json")[1])
    assert len(rows) == 2
    assert {row["catalog"] for row in rows} == {f"sqlite:///{root / '.featurecache/catalog.db'}"}


def test_outside_any_project_every_folder_shares_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "elsewhere" / "deeper").mkdir(parents=True)
    run_features(tmp_path / "notebooks")
    user_cache = Path(os.environ["XDG_CACHE_HOME"]) / "featurecache"
    assert (user_cache / "catalog.db").is_file() and (user_cache / ".gitignore").is_file()
    assert not (tmp_path / "notebooks" / ".featurecache").exists()
    monkeypatch.chdir(tmp_path / "elsewhere" / "deeper")
    code, out, _ = run("stats")
    assert code == 0
    assert out.splitlines()[0] == (
        f"cache: {user_cache} (the user cache: no project at or above "
        f"{(tmp_path / 'elsewhere' / 'deeper').resolve()})"
    )
    assert "sessionize" in out


def test_json_reports_name_their_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    root = project(tmp_path).resolve()
    run_features(root)
    monkeypatch.chdir(root)
    artifact = json.loads(run("ls", "--json")[1])[0]["artifact_id"]
    expected = {
        "catalog": f"sqlite:///{root / '.featurecache' / 'catalog.db'}",
        "store": str(root / ".featurecache" / "artifacts"),
        "cache_dir": str(root / ".featurecache"),
        "project_root": str(root),
    }
    for argv in (
        ("stats", "--json"),
        ("show", artifact, "--json"),
        ("why", "sessionize", "--json"),
        ("verify", "--json"),
        ("gc", "--older-than", "30d", "--dry-run", "--json"),
        ("lineage", artifact, "--json"),
        ("pin", artifact, "--json"),
        ("db", "current", "--json"),
        ("info", "--json"),
    ):
        code, out, _ = run(*argv)
        assert code == 0, argv
        assert json.loads(out)["cache"] == expected, argv
    # Human output: the header is the first line.
    for argv in (
        ("stats",),
        ("show", artifact),
        ("why", "sessionize"),
        ("verify",),
        ("unpin", artifact),
    ):
        code, out, _ = run(*argv)
        assert out.splitlines()[0].startswith(f"cache: {root / '.featurecache'} "), argv
    # dot and mermaid are piped into other tools: their header goes to stderr.
    code, out, err = run("lineage", artifact, "--format", "dot")
    assert out.startswith("digraph") and err.startswith("cache: ")


def test_info_says_where_every_value_came_from_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    root = project(tmp_path).resolve()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "p"\n\n[tool.featurecache]\ncompression = "zstd"\n'
    )
    monkeypatch.chdir(root / "src")
    monkeypatch.setenv("FEATURECACHE_LEASE_SECONDS", "90")
    code, out, _ = run("info")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"cache: {root / '.featurecache'} (project root: {root})"
    assert f"catalog   sqlite:///{root / '.featurecache' / 'catalog.db'} (default)" in lines
    assert "exists    no: running a feature creates it (or featurecache db upgrade)" in lines
    by_name = {line.split()[0]: line for line in lines if line and line[0].islower()}
    assert by_name["compression"].split()[1] == "zstd"
    assert by_name["compression"].split()[1:] == ["zstd", "pyproject.toml"]
    assert by_name["lease_seconds"].split()[1:] == ["90.0", "FEATURECACHE_LEASE_SECONDS"]
    assert by_name["row_group_rows"].split()[1:] == ["1000000", "default"]
    table = lines[lines.index("settings") :]  # the lines above hold whole paths
    assert len(table) > 10 and all(len(line) <= 80 for line in table)
    report = json.loads(run("info", "--json")[1])
    assert report["settings"]["compression"] == {
        "value": "zstd",
        "source": f"{root / 'pyproject.toml'} [tool.featurecache] compression",
    }
    assert report["exists"] is False and report["project_root"] == str(root)
    assert not (root / ".featurecache").exists()


def test_info_shows_the_local_tier_of_an_s3_store_without_creating_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    root = project(tmp_path).resolve()
    monkeypatch.chdir(root)
    code, out, _ = run("info")
    assert code == 0 and "tier      none: the store is local" in out.splitlines()
    assert json.loads(run("info", "--json")[1])["local_tier"] is None

    monkeypatch.setenv("FEATURECACHE_STORE", "s3://bucket/features")
    monkeypatch.setenv("FEATURECACHE_LOCAL_TIER_MAX", "5GB")
    folder = root / ".featurecache" / "state" / "tier"
    assert f"tier      {folder}: 0 files, " in run("info")[1]
    report = json.loads(run("info", "--json")[1])
    assert report["local_tier"] == {
        "folder": str(folder),
        "files": 0,
        "bytes": 0,
        "max_bytes": 5 * 10**9,
    }
    assert report["settings"]["local_tier_max"] == {
        "value": 5 * 10**9,
        "source": "FEATURECACHE_LOCAL_TIER_MAX",
    }
    monkeypatch.setenv("FEATURECACHE_LOCAL_TIER", "off")
    assert "tier      off (FEATURECACHE_LOCAL_TIER=off): every hit downloads" in run("info")[1]
    assert not (root / ".featurecache").exists()


def test_db_current_reports_a_missing_catalog_without_creating_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    root = project(tmp_path).resolve()
    monkeypatch.chdir(root)
    code, out, _ = run("db", "current", "--json")
    report = json.loads(out)
    assert code == 0 and report["exists"] is False and report["revision"] is None
    assert not (root / ".featurecache").exists()
    code, out, _ = run("db", "upgrade")
    assert code == 0 and (root / ".featurecache" / ".gitignore").read_text().endswith("*\n")
    report = json.loads(run("db", "current", "--json")[1])
    assert report["exists"] is True and report["up_to_date"] is True
    assert report["revision"] == report["head"]


@pytest.mark.postgres
def test_an_empty_postgresql_database_is_no_cache_and_stays_empty(
    pg_catalog_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    from sqlalchemy import create_engine, inspect

    from featurecache.catalog.database import safe_url

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FEATURECACHE_CATALOG", pg_catalog_url)
    for argv in READ_ONLY:
        code, _, err = run(*argv)
        assert code == 2
        assert f"no featurecache cache at {safe_url(pg_catalog_url)} " in err, argv
    engine = create_engine(pg_catalog_url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_info_masks_passwords(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://ml:s3cr3t@mlflow.internal:5000")
    monkeypatch.setenv("FEATURECACHE_CATALOG", "postgresql+psycopg://fc:s3cr3t@db/features")
    code, out, _ = run("info")
    _, as_json, _ = run("info", "--json")
    assert code == 0 and "s3cr3t" not in out + as_json
    report = json.loads(as_json)
    assert report["settings"]["mlflow_tracking_uri"]["value"] == (
        "http://ml:***@mlflow.internal:5000"
    )
    assert report["exists"] is None  # a server is not asked: info opens nothing
