"""GC in a loop while several processes call decorated features on the same cache: no reader
ever fails or gets a wrong result (a reader that loses a race recomputes), and the cache ends
consistent."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from featurecache.catalog import Catalog
from featurecache.ops.gc_plan import GcPolicy
from featurecache.ops.gc_run import collect_garbage
from featurecache.ops.verify import verify_cache
from featurecache.store.local import LocalStore
from tests.e2e import Project

pytestmark = pytest.mark.slow  # reader processes racing a GC loop

READERS = 3
CALLS = 40
KEYS = 5

FEATURES = """
import os
import polars as pl
from featurecache import cached_feature

@cached_feature
def feature(i: int) -> pl.DataFrame:
    with open("calls.log", "a") as log:
        log.write(f"{os.getpid()} {i}\\n")
    return pl.DataFrame({"i": [i] * 200, "x": list(range(200))})
"""

READER = f"""
import json, random, sys, time
from featurecache.store.local import LocalStore
from features import feature

# Widen the window between reading the catalog row and reading the file, so that the GC
# often deletes the file in between: the reader must then recompute, never fail.
_read_bytes = LocalStore.read_bytes
def slow_read_bytes(self, artifact_id):
    time.sleep(0.02)
    return _read_bytes(self, artifact_id)
LocalStore.read_bytes = slow_read_bytes

rng = random.Random(int(sys.argv[1]))
for _ in range({CALLS}):
    i = rng.randrange({KEYS})
    frame = feature(i)
    if frame["i"].to_list() != [i] * 200 or frame["x"].to_list() != list(range(200)):
        raise SystemExit(f"wrong result for key {{i}}")
print(json.dumps({{"calls": {CALLS}}}))
"""

# Evict everything that is not protected, again and again, with no grace period at all.
POLICIES = [
    GcPolicy(max_size=0, grace=timedelta(0)),
    GcPolicy(unused_for=timedelta(microseconds=1), grace=timedelta(0)),
    GcPolicy(keep_last=1, grace=timedelta(0)),
]


def test_readers_never_fail_while_gc_runs_in_a_loop(tmp_path: Path, any_catalog_url: str) -> None:
    """On SQLite and on PostgreSQL (where statements of concurrent transactions interleave)."""
    project = Project.create(tmp_path / "proj", catalog_url=any_catalog_url)
    project.write("features.py", FEATURES)
    project.write("reader.py", READER)
    catalog = Catalog.open(project.catalog_url)
    store = LocalStore(project.store_url)
    readers = [
        subprocess.Popen(
            [sys.executable, "reader.py", str(seed)],
            cwd=project.root,
            env=project.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(READERS)
    ]
    deleted = runs = 0
    deadline = time.monotonic() + 180
    try:
        while any(reader.poll() is None for reader in readers):
            assert time.monotonic() < deadline, "readers did not finish"
            result = collect_garbage(catalog, store, POLICIES[runs % len(POLICIES)])
            assert result.failures == {}
            deleted += len(result.deleted)
            runs += 1
            if runs % 10 == 0:  # verify reads every artifact while they are being deleted
                verify_cache(catalog, store, grace=timedelta(hours=1))
            time.sleep(0.005)
        outputs = [reader.communicate(timeout=60) for reader in readers]
        for reader, (out, err) in zip(readers, outputs, strict=True):
            assert reader.returncode == 0, err
            assert "Traceback" not in err and "Error" not in err, err
            assert "could not publish" not in err, err  # a GC must not make publishing fail
            assert json.loads(out.strip().splitlines()[-1]) == {"calls": CALLS}
        assert deleted > 0, "the GC never raced with the readers"
        computed = (project.root / "calls.log").read_text().splitlines()
        assert len(computed) >= KEYS  # every key computed at least once (most several times)
        # Whatever the races left (e.g. a row revived after its file was swept) is repaired
        # by verify, after which the cache is consistent.
        verify_cache(catalog, store, repair=True, grace=timedelta(0))
        assert verify_cache(catalog, store, grace=timedelta(0)).clean
    finally:
        for reader in readers:
            if reader.poll() is None:
                reader.kill()
                reader.wait()
        catalog.close()
