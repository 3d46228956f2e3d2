"""Every command through ``featurecache.cli.main.main`` against a real cache: JSON that parses
(and nothing else on stdout), the human output, exit codes, and one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from featurecache.catalog.records import EventKind
from featurecache.cli.main import main
from tests.ops.seed import Cache


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)  # stdout holds the JSON and nothing else


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cache]:
    opened = Cache.create(tmp_path / "cache")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FEATURECACHE_CATALOG", opened.catalog_url)
    monkeypatch.setenv("FEATURECACHE_STORE", str(opened.store.root))
    monkeypatch.setenv("COLUMNS", "200")
    yield opened
    opened.close()


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Any:
    def invoke(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def one_line_error(result: Result) -> str:
    assert result.code != 0
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("featurecache: error: "), result.err
    return lines[0]


def test_ls_lists_artifacts_as_json_and_as_a_table(cache: Cache, run: Any) -> None:
    small = cache.publish("s", feature="clicks", rows=5).artifact.artifact_id
    big = cache.publish("b", feature="sessions", rows=500).artifact.artifact_id
    listing = run("ls", "--json")
    assert listing.code == 0
    rows = listing.json()
    assert {r["artifact_id"] for r in rows} == {small, big}
    for row in rows:
        for field in ("feature", "rows", "size_bytes", "created_at", "last_used_at", "hits"):
            assert field in row
        assert row["pinned"] is False and row["uri"].startswith("file://")
    assert [r["artifact_id"] for r in run("ls", "--sort", "size", "--json").json()] == [big, small]
    only = run("ls", "--feature", "clicks", "--json").json()
    assert [(r["artifact_id"], r["feature"], r["rows"]) for r in only] == [(small, "clicks", 5)]
    table = run("ls")
    assert table.code == 0 and "2 artifacts" in table.out
    assert small[:12] in table.out and big[:12] in table.out
    # Pages: a table shows the first 100 by default, JSON everything unless limited.
    assert [
        r["artifact_id"] for r in run("ls", "--sort", "size", "--limit", "1", "--json").json()
    ] == [big]
    first = run("ls", "--sort", "size", "--limit", "1")
    assert big[:12] in first.out and small[:12] not in first.out and "1 more" in first.out


def test_show_resolves_prefixes_and_tells_the_whole_story(cache: Cache, run: Any) -> None:
    upstream = cache.publish("clicks", feature="clicks").artifact.artifact_id
    hit = cache.publish("sessions", feature="sessions", upstream=upstream)
    target = hit.artifact.artifact_id
    cache.catalog.record_run_usage("run-7", target, "input", "http://mlflow:5000")

    detail = run("show", target[:6], "--json").json()
    assert detail["artifact_id"] == target and detail["feature"] == "sessions"
    assert detail["schema"] == [{"name": "x", "type": "int64", "nullable": True}]
    [key] = detail["keys"]
    assert key["key_id"] == hit.entry.key_id and key["components"]["feature"] == "sessions"
    assert {"kind": "feature", "name": "feature", "value": "sessions", "detail": ""} in key[
        "component_rows"
    ]
    assert [c["code_digest"] for c in detail["code_versions"]] == [hit.entry.code_digest]
    inputs = {edge["argument"]: edge for edge in detail["inputs"]}
    assert inputs["df"]["upstream_artifact_id"] == upstream
    assert inputs["src"]["source_uri"] == "file:///data.csv"
    assert [r["run_id"] for r in detail["runs"]] == ["run-7"]
    assert run("show", upstream, "--json").json()["downstream"] == [target]

    human = run("show", target[:8])
    assert human.code == 0
    for text in (target, "sessions", "run-7", upstream[:12], "def sessions(src):"):
        assert text in human.out


def test_show_errors_are_one_line(cache: Cache, run: Any) -> None:
    ids = [cache.publish(i).artifact.artifact_id for i in range(17)]
    first = [i[0] for i in ids]
    shared = next(c for c in first if first.count(c) > 1)  # 17 ids, 16 hex digits
    assert "matches" in one_line_error(run("show", shared))
    assert "no artifact matches 'zzz'" in one_line_error(run("show", "zzz"))
    assert "no artifact matches" in one_line_error(run("pin", "0" * 32))


def test_pin_and_unpin(cache: Cache, run: Any) -> None:
    artifact_id = cache.publish("keep").artifact.artifact_id
    cache.age(artifact_id, 100)
    pinned = run("pin", artifact_id[:10])
    assert pinned.code == 0
    assert pinned.out.strip().splitlines()[-1] == f"pinned {artifact_id[:12]} (sessions)"
    assert run("ls", "--json").json()[0]["pinned"] is True
    assert run("gc", "--older-than", "1h", "--json").json()["deleted"] == []
    assert run("unpin", artifact_id, "--json").json()["pinned"] is False
    deleted = run("gc", "--older-than", "1h", "--json").json()["deleted"]
    assert [d["artifact_id"] for d in deleted] == [artifact_id]


def test_stats_add_up_hits_misses_storage_and_time_saved(cache: Cache, run: Any) -> None:
    for feature, compute in (("clicks", 2.0), ("sessions", 5.0)):
        hit = cache.publish(feature, feature=feature, compute_seconds=compute)
        kinds: list[EventKind] = ["miss", "hit", "hit"] if feature == "clicks" else ["miss", "hit"]
        for kind in kinds:
            cache.catalog.record_event(
                kind, key_id=hit.entry.key_id, feature=feature,
                artifact_id=hit.artifact.artifact_id, duration_seconds=0.01,
                compute_seconds=compute,
            )  # fmt: skip
    report = run("stats", "--json").json()
    by_feature = {f["feature"]: f for f in report["features"]}
    assert (by_feature["clicks"]["hits"], by_feature["clicks"]["misses"]) == (2, 1)
    assert by_feature["clicks"]["seconds_avoided"] == 4.0
    assert by_feature["sessions"]["seconds_avoided"] == 5.0
    total = report["total"]
    assert (total["hits"], total["misses"], total["artifacts"]) == (3, 2, 2)
    assert total["seconds_avoided"] == 9.0 and total["compute_seconds_stored"] == 7.0
    assert total["bytes_stored"] == sum(f["bytes_stored"] for f in report["features"])
    human = run("stats")
    assert human.code == 0 and "total" in human.out and "9.0s" in human.out


def test_gc_dry_run_names_what_the_real_run_deletes(cache: Cache, run: Any) -> None:
    ids = [cache.publish(i, rows=50).artifact.artifact_id for i in range(4)]
    for hours, artifact_id in enumerate(ids):
        cache.age(artifact_id, 10 + hours)
    args = ("gc", "--max-size", "3KB", "--grace", "0s", "--json")
    plan = run(*args, "--dry-run").json()
    assert plan["dry_run"] is True and plan["deleted"]
    assert cache.live_ids() == set(ids)
    done = run(*args).json()
    assert [d["artifact_id"] for d in done["deleted"]] == [
        d["artifact_id"] for d in plan["deleted"]
    ]
    assert done["files_removed"] == len(done["deleted"])
    assert run(*args).json()["deleted"] == []
    human = run("gc", "--unused-for", "1h", "--keep-last", "1", "--dry-run")
    assert human.code == 0 and "would delete" in human.out and "dry run" in human.out


def test_gc_refuses_bad_or_missing_policies_in_one_line(cache: Cache, run: Any) -> None:
    cache.age(cache.publish(1).artifact.artifact_id, 100)
    assert "no policy given" in one_line_error(run("gc"))
    assert "no policy given" in one_line_error(run("gc", "--grace", "0s", "--dry-run"))
    assert "'7' has no unit" in one_line_error(run("gc", "--older-than", "7"))
    assert "is not a size" in one_line_error(run("gc", "--max-size", "lots"))
    assert "--keep-last" in one_line_error(run("gc", "--keep-last", "0"))
    assert "No such option" in one_line_error(run("gc", "--older", "1d"))
    assert "size" in one_line_error(run("ls", "--sort", "random"))
    assert len(cache.live_ids()) == 1  # nothing was deleted


def test_verify_exit_codes_and_repair(cache: Cache, run: Any) -> None:
    victim = cache.publish(1).artifact.artifact_id
    cache.publish(2)
    clean = run("verify", "--json")
    assert clean.code == 0 and clean.json()["clean"] is True
    cache.path(victim).unlink()
    found = run("verify", "--json")
    assert found.code == 1
    assert found.json()["counts"]["missing_artifact"] == 1
    assert run("verify", "--repair").code == 1  # problems were found (and fixed)
    assert run("verify").code == 0
    human = run("verify")
    assert "clean" in human.out


def test_db_current_and_upgrade(cache: Cache, run: Any) -> None:
    current = run("db", "current")
    assert current.code == 0 and "at 0002" in current.out and cache.catalog_url in current.out
    upgraded = run("db", "upgrade")
    assert upgraded.code == 0 and "0002 -> 0002" in upgraded.out


@pytest.mark.postgres
def test_db_current_masks_the_password(
    pg_url: str, run: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = pg_url.replace("postgres@", "postgres:s3cr3t-pw@", 1)
    assert "s3cr3t-pw" in secret
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FEATURECACHE_CATALOG", secret)
    result = run("db", "current")
    assert result.code == 0, result.err
    assert "s3cr3t-pw" not in result.out and "***" in result.out


def test_configuration_errors_are_one_line(
    run: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FEATURECACHE_CATALOG", "mysql://nope")
    assert "does not support" in one_line_error(run("ls"))
    monkeypatch.setenv("FEATURECACHE_CATALOG", f"sqlite:///{tmp_path / 'c.db'}")
    monkeypatch.setenv("FEATURECACHE_STORE", "ftp://host/x")
    assert "unsupported scheme" in one_line_error(run("verify"))


def test_grace_defaults_to_an_hour(cache: Cache, run: Any) -> None:
    recent = cache.publish("recent").artifact.artifact_id
    cache.age(recent, 0.5)
    plan = run("gc", "--older-than", "1m", "--dry-run", "--json").json()
    assert plan["policy"]["grace_seconds"] == timedelta(hours=1).total_seconds()
    assert plan["deleted"] == [] and plan["plan"]["keep"][0]["reason"] == "within grace period"


def test_an_unexpected_failure_is_one_line_too(
    cache: Cache, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import featurecache.ops.stats

    def broken(catalog: object) -> None:
        raise RuntimeError("boom\nwith a second line")

    monkeypatch.setattr(featurecache.ops.stats, "cache_stats", broken)
    result = run("stats")
    assert result.code == 70
    assert "internal error (RuntimeError: boom with a second line)" in one_line_error(result)
