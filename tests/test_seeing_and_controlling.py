"""A user's project in fresh processes, on SQLite and on PostgreSQL (README "Seeing and
controlling the cache"): FEATURECACHE_LOG prints one line per call with its reason and a summary
at exit (once, even when the program configured logging too), session_stats(), is_cached,
recompute, clear and ``featurecache clear``, FEATURECACHE_REFRESH and FEATURECACHE_DISABLE."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from featurecache.catalog import Catalog
from tests.e2e import Project

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

FEATURES = """
import polars as pl
from featurecache import cached_feature

def clean_ts(df):
    return df.with_columns(pl.col("ts") * 1)

@cached_feature
def sessionize(clicks: pl.DataFrame, gap_minutes: int = 30) -> pl.DataFrame:
    return clean_ts(clicks).with_columns(pl.lit(gap_minutes).alias("gap"))

@cached_feature(name="user_features")
def user_features(sessions: pl.DataFrame) -> pl.DataFrame:
    return sessions.group_by("user").agg(pl.col("ts").sum()).sort("user")
"""

RUN = """
import json, logging, sys
import polars as pl
import featurecache
from feats import sessionize, user_features

logging.basicConfig(level=logging.WARNING)  # the program's own logging: no line twice
clicks = pl.DataFrame({"user": [1, 1, 2], "ts": [1, 2, 3]})
user_features(sessionize(clicks, *[int(a) for a in sys.argv[1:]]))
featurecache.default_cache().close()
print(json.dumps(featurecache.session_stats().to_json()))
"""

CONTROL = """
import json
import polars as pl
import featurecache
from feats import sessionize

clicks = pl.DataFrame({"user": [1, 1, 2], "ts": [1, 2, 3]})
out = {"before": [sessionize.is_cached(clicks), sessionize.is_cached(clicks, 45)]}
sessionize.recompute(clicks)
out["after_recompute"] = sessionize.is_cached(clicks)
out["plain"] = sessionize.func(clicks, 45).height
out["cleared"] = sessionize.clear()
out["after_clear"] = sessionize.is_cached(clicks)
out["stats"] = featurecache.session_stats().to_json()
print(json.dumps(out))
"""


@pytest.fixture(params=BACKENDS)
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Project:
    if request.param == "sqlite":
        made = Project.create(tmp_path / "proj")
    else:
        url: str = request.getfixturevalue("pg_catalog_url")
        made = Project.create(tmp_path / "proj", catalog_url=url)
    made.write("feats.py", FEATURES)
    return made


def _run(project: Project, *args: str, **env: str) -> tuple[dict[str, Any], list[str]]:
    proc = project.run(RUN.replace("sys.argv[1:]", repr(list(args))), **env)
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    return stats, proc.stderr.strip().splitlines()


def _cli(project: Project, *argv: str) -> str:
    proc = project.run(
        f"import sys\nfrom featurecache.cli.main import main\nsys.exit(main({list(argv)!r}))"
    )
    return proc.stdout


@pytest.mark.slow  # fresh processes
def test_every_call_is_logged_with_its_reason_and_a_summary(project: Project) -> None:
    log = {"FEATURECACHE_LOG": "info"}
    stats, lines = _run(project, **log)
    assert re.fullmatch(r"featurecache: miss sessionize: new key; computed in \d+ ms", lines[0])
    assert lines[1].startswith("featurecache: miss user_features: new key; computed in ")
    assert lines[2].startswith("featurecache: 2 calls this session: 0 hits (saved 0 ms), 2 misses")
    assert len(lines) == 3, lines  # each once: the program's root handler does not repeat it
    assert (stats["hits"], stats["misses"]) == (0, 2)

    stats, lines = _run(project, **log)
    assert re.fullmatch(
        r"featurecache: hit sessionize [0-9a-f]{8} in \d+ ms \(saved \d+ ms\)", lines[0]
    )
    assert lines[1].startswith("featurecache: hit user_features ")
    assert lines[2].startswith("featurecache: 2 calls this session: 2 hits")
    assert stats["features"]["sessionize"]["hits"] == 1

    stats, lines = _run(project, "45", **log)
    assert lines[0].startswith("featurecache: miss sessionize: param `gap_minutes`: 30 → 45;")

    project.write("feats.py", FEATURES.replace('pl.col("ts") * 1', 'pl.col("ts") * 2'))
    stats, lines = _run(project, **log)
    assert lines[0].startswith(
        "featurecache: miss sessionize: helper `clean_ts` in `feats.py` changed; computed in "
    )
    assert lines[1].startswith(
        "featurecache: miss user_features: input `sessions`: content changed"
    )

    stats, lines = _run(project)  # logging off: nothing on stderr
    assert lines == [] and (stats["hits"], stats["misses"]) == (2, 0)


@pytest.mark.slow  # fresh processes
def test_refresh_recomputes_one_feature_once(project: Project) -> None:
    _run(project)
    stats, lines = _run(project, FEATURECACHE_LOG="info", FEATURECACHE_REFRESH="sessionize")
    assert lines[0].startswith(
        "featurecache: miss sessionize: refresh requested (FEATURECACHE_REFRESH); computed in "
    )
    # The same content came out: the downstream feature still hits (early cutoff).
    assert lines[1].startswith("featurecache: hit user_features ")
    assert (stats["hits"], stats["misses"]) == (1, 1)


@pytest.mark.slow  # fresh processes
def test_a_refresh_name_no_feature_has_is_reported_at_exit(project: Project) -> None:
    """A typo in FEATURECACHE_REFRESH refreshed nothing and said nothing: the run looked like a
    refresh and served the old results. Now the process names it at exit, logging on or off."""
    _run(project)
    refresh = {"FEATURECACHE_REFRESH": "sesionize,user_features"}
    stats, lines = _run(project, **refresh)
    assert (stats["hits"], stats["misses"]) == (1, 1)  # user_features was refreshed
    # The program configured logging (RUN's basicConfig): the warning goes through its handler.
    assert lines == [
        "WARNING:featurecache:FEATURECACHE_REFRESH names `sesionize`, which no feature called "
        "in this process has (called: sessionize, user_features); check the name"
    ]
    stats, lines = _run(project, FEATURECACHE_REFRESH="sessionize")
    assert lines == [] and (stats["hits"], stats["misses"]) == (1, 1)
    stats, lines = _run(project, FEATURECACHE_REFRESH="*")
    assert lines == [] and (stats["hits"], stats["misses"]) == (0, 2)


@pytest.mark.slow  # fresh processes
def test_is_cached_recompute_clear_and_the_clear_command(project: Project) -> None:
    _run(project)
    out = project.run_json(CONTROL)
    assert out["before"] == [True, False]
    assert out["after_recompute"] is True and out["plain"] == 3
    assert out["cleared"] == 1 and out["after_clear"] is False
    assert out["stats"]["features"]["sessionize"] == {
        "hits": 0,
        "misses": 1,
        "seconds_avoided": 0.0,
        "compute_seconds": out["stats"]["features"]["sessionize"]["compute_seconds"],
    }
    _run(project)
    dry = _cli(project, "clear", "sessionize", "--dry-run")
    assert dry.startswith("sessionize: would drop 1 entry (1 artifacts")
    assert json.loads(_cli(project, "clear", "user_features", "--json"))["entries"] == 1
    _stats, lines = _run(project, FEATURECACHE_LOG="info")
    assert lines[0].startswith("featurecache: hit sessionize ")
    assert lines[1].startswith("featurecache: miss user_features: new key;")
    with Catalog.open(project.catalog_url) as catalog:
        assert len(catalog.newest_entries("user_features", 10)) == 1


@pytest.mark.slow  # fresh processes
def test_disable_computes_and_creates_no_cache(project: Project) -> None:
    if project.catalog_url.startswith("sqlite"):
        project.catalog_url = f"sqlite:///{project.root / 'never' / 'catalog.db'}"
    project.store_url = str(project.root / "never" / "artifacts")
    stats, lines = _run(project, FEATURECACHE_DISABLE="1", FEATURECACHE_LOG="info")
    assert lines[0].startswith(
        "featurecache: miss sessionize: caching is disabled (FEATURECACHE_DISABLE); computed in "
    )
    assert (stats["hits"], stats["misses"]) == (0, 2)
    assert not (project.root / "never").exists()
    stats, _lines = _run(project, FEATURECACHE_DISABLE="1")
    assert (stats["hits"], stats["misses"]) == (0, 2)


@pytest.mark.slow  # a fresh process that forks
def test_a_forked_child_starts_its_session_stats_from_zero(tmp_path: Path) -> None:
    if sys.platform == "win32":
        pytest.skip("no fork")
    project = Project.create(tmp_path / "proj")
    project.write("feats.py", FEATURES)
    out = project.run_json(
        """
        import json, os
        import polars as pl
        import featurecache
        from feats import sessionize
        sessionize(pl.DataFrame({"user": [1], "ts": [1]}))
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(write, str(featurecache.session_stats().calls).encode())
            os._exit(0)
        os.waitpid(pid, 0)
        print(json.dumps({"child": int(os.read(read, 10)),
                          "parent": featurecache.session_stats().calls}))
        """
    )
    assert out == {"child": 0, "parent": 1}
