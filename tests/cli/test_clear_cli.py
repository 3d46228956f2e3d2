"""``featurecache clear FEATURE [--dry-run]`` against a real cache (SQLite and PostgreSQL
catalogs, a local store): what it drops, what it leaves to GC, and its errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from featurecache.catalog import Catalog
from featurecache.cli.main import main
from featurecache.store.local import LocalStore
from tests.ops.seed import Cache


@pytest.fixture
def cache(
    any_clean_catalog_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cache]:
    store = LocalStore(tmp_path / "artifacts")
    opened = Cache(tmp_path, Catalog.open(any_clean_catalog_url), store)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FEATURECACHE_CATALOG", any_clean_catalog_url)
    monkeypatch.setenv("FEATURECACHE_STORE", str(store.root))
    yield opened
    opened.close()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _features(cache: Cache) -> dict[str, int]:
    counts: dict[str, int] = {}
    for feature in ("sessions", "users"):
        counts[feature] = len(cache.catalog.newest_entries(feature, 100))
    return counts


def test_clear_drops_one_features_entries_and_leaves_artifacts(
    cache: Cache, capsys: pytest.CaptureFixture[str]
) -> None:
    cache.publish("k1", feature="sessions")
    cache.publish("k2", feature="sessions", content="shared")
    cache.publish("k3", feature="users", content="shared")  # the same artifact as k2
    artifacts = cache.live_ids()

    code, out, err = _run(capsys, "clear", "sessions", "--dry-run")
    assert (code, err) == (0, "")
    assert out.startswith("sessions: would drop 2 entries (2 artifacts, 1 of them")
    assert _features(cache) == {"sessions": 2, "users": 1}  # a dry run changes nothing

    code, out, _ = _run(capsys, "clear", "sessions")
    assert code == 0 and out.startswith("sessions: dropped 2 entries")
    assert "featurecache gc" in out
    assert _features(cache) == {"sessions": 0, "users": 1}
    assert cache.live_ids() == artifacts  # artifacts are GC's to delete

    code, out, _ = _run(capsys, "clear", "sessions", "--json")
    assert code == 0
    assert json.loads(out) == {
        "feature": "sessions",
        "entries": 0,
        "artifacts": 0,
        "unreferenced_artifacts": 0,
        "dry_run": False,
        "known": True,
    }
    code, out, _ = _run(capsys, "clear", "sessions")
    assert code == 0 and "no cache entries to drop" in out


def test_clear_json_counts_what_it_drops(cache: Cache, capsys: pytest.CaptureFixture[str]) -> None:
    cache.publish("k1", feature="users")
    code, out, _ = _run(capsys, "clear", "users", "--dry-run", "--json")
    report: dict[str, Any] = json.loads(out)
    assert code == 0 and report["entries"] == 1 and report["dry_run"] is True
    assert report["unreferenced_artifacts"] == 1


def test_clear_of_an_unknown_feature_is_a_one_line_error(
    cache: Cache, capsys: pytest.CaptureFixture[str]
) -> None:
    cache.publish("k1", feature="sessions")
    code, out, err = _run(capsys, "clear", "sesions")
    assert code == 2 and out == ""
    assert err.startswith("featurecache: error: no call of feature 'sesions'")
    assert len(err.strip().splitlines()) == 1
    assert _features(cache)["sessions"] == 1
