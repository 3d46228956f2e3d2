"""Issue 16, item 11: a file at the catalog path that is not a SQLite database is a
``CatalogError`` naming the file and the fix, and the CLI's one-line error (exit 2), never a
raw SQLAlchemy error or exit 70."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurecache.catalog import Catalog
from featurecache.cli.main import main
from featurecache.errors import CatalogError


@pytest.fixture
def garbage(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.db"
    path.write_bytes(b"garbage" * 100)
    return path


def test_opening_a_file_that_is_not_a_database_is_a_catalog_error(garbage: Path) -> None:
    with pytest.raises(CatalogError) as raised:
        Catalog.open(f"sqlite:///{garbage}")
    message = str(raised.value)
    assert str(garbage) in message
    assert "not a SQLite database" in message
    assert "FEATURECACHE_CATALOG" in message  # the fix: point it elsewhere or move the file
    assert "\n" not in message


def test_the_cli_reports_it_in_one_line_as_a_catalog_error(
    garbage: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FEATURECACHE_CATALOG", f"sqlite:///{garbage}")
    monkeypatch.setenv("FEATURECACHE_STORE", str(tmp_path / "artifacts"))
    for argv in (["ls"], ["verify"], ["gc", "--older-than", "1d"]):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "internal error" not in lines[0], err
        assert str(garbage) in lines[0] and "not a SQLite database" in lines[0]


def test_a_catalog_that_becomes_garbage_after_opening_is_a_catalog_error(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    catalog = Catalog.open(f"sqlite:///{path}")
    try:
        catalog.close()  # drop pooled connections, then overwrite the file
        for leftover in tmp_path.glob("catalog.db-*"):
            leftover.unlink()
        path.write_bytes(b"garbage" * 100)
        with pytest.raises(CatalogError, match="not a SQLite database"):
            catalog.lookup("0" * 32)
    finally:
        catalog.close()
