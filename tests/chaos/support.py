"""Helpers for the chaos suite: a user project whose features are pure functions of their key
(so any value read back can be compared with a recomputation), child scripts that report what
they read as JSON, and the ``featurecache`` CLI run against the project."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.e2e import Project

# Uncompressed artifacts: the marker string of a frame is visible in the file's bytes.
CHAOS_ENV = {"FEATURECACHE_COMPRESSION": "none"}

ROWS = 6000

FEATURES = f"""
import os
import time

import polars as pl
from featurecache import cached_feature

ROWS = {ROWS}


def pure(i):
    # Fillers on both sides of the marker, so that the marker is neither the min nor the max
    # of its column (not in the statistics): its bytes in the file are the value itself.
    tags = ["a-filler", "z-filler"] * (ROWS // 2)
    tags[ROWS // 2] = f"m-MARKER-{{i:04d}}"
    return pl.DataFrame(
        {{"i": [i] * ROWS, "x": [(i * 7919 + j * 31) % 100003 for j in range(ROWS)], "tag": tags}}
    )


def _mark(name):
    folder = os.environ.get("CHAOS_MARKS")
    if folder:
        open(os.path.join(folder, f"{{name}}.{{os.getpid()}}"), "w").close()


@cached_feature
def eager(i: int) -> pl.DataFrame:
    _mark("compute")
    time.sleep(float(os.environ.get("CHAOS_COMPUTE_SLEEP", "0")))
    out = pure(i)
    _mark("return")
    return out


@cached_feature(lazy=True)
def lazy(i: int) -> pl.DataFrame:
    return pure(i)
"""

# Disable the hit's protection (size, hash and footer checks) inside a child: broken variants.
NO_VERIFY = """
import featurecache.engine as _e
_e.verify_file = lambda *a, **k: None
_e.verify_footer = lambda *a, **k: None
"""

# A child reading keys back: for each, "ok", "wrong" (a value that is not the pure result) or
# "error: ..." (an exception reached the caller). Keys in CHAOS_EAGER / CHAOS_LAZY (JSON lists).
READ_BACK = """
import json, os
import featurecache
from features import eager, lazy, pure

def _status(fn, i, collect):
    try:
        value = fn(i)
        if collect:
            value = value.collect()
        return "ok" if value.equals(pure(i)) else "wrong"
    except Exception as exc:
        import traceback; return "error: " + traceback.format_exc()[-1500:]

out = {}
for i in json.loads(os.environ.get("CHAOS_EAGER", "[]")):
    out[f"eager:{i}"] = _status(eager, i, False)
for i in json.loads(os.environ.get("CHAOS_LAZY", "[]")):
    out[f"lazy:{i}"] = _status(lazy, i, True)
engine = featurecache.default_cache().engine
engine.flush()
print(json.dumps({"status": out, "hits": engine.session.hits, "misses": engine.session.misses}))
"""


def chaos_project(root: Path, catalog_url: str | None = None) -> Project:
    project = Project.create(root, catalog_url=catalog_url)
    project.write("features.py", FEATURES)
    return project


def read_back(
    project: Project,
    *,
    eager: Sequence[int],
    lazy: Sequence[int] = (),
    broken: bool = False,
    **env: str,
) -> dict[str, Any]:
    script = (NO_VERIFY if broken else "") + READ_BACK
    result: dict[str, Any] = project.run_json(
        script,
        CHAOS_EAGER=json.dumps(list(eager)),
        CHAOS_LAZY=json.dumps(list(lazy)),
        **CHAOS_ENV,
        **env,
    )
    return result


def cli_verify(project: Project, *args: str) -> tuple[int, dict[str, Any]]:
    """``featurecache verify --json --grace 0s [args]``: (exit code, report)."""
    proc = subprocess.run(
        [sys.executable, "-m", "featurecache.cli.main", "verify", "--json", "--grace", "0s", *args],
        cwd=project.root,
        env=project.env(**CHAOS_ENV),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode in (0, 1), f"verify crashed ({proc.returncode}):\n{proc.stderr}"
    return proc.returncode, json.loads(proc.stdout)


def artifact_files(project: Project) -> list[Path]:
    root = Path(project.store_url)
    return sorted(p for p in root.rglob("*.parquet") if "quarantine" not in p.parts)


def quarantined(project: Project) -> list[Path]:
    return sorted((Path(project.store_url) / "quarantine").glob("*.parquet"))
