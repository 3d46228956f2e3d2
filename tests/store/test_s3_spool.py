"""Issue 16, item 12a: the S3 store's upload spool files live under the cache's state folder
(never loose in $TMPDIR), and a spool a killed writer left behind is found by ``verify`` and
removed by ``verify --repair``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from featurecache.ops.verify import TEMP, verify_cache
from featurecache.settings import load_settings
from featurecache.store.factory import open_store
from tests.ops.seed import Cache

pytestmark = [pytest.mark.s3]
SPOOL_GLOB = "featurecache-spool-*.parquet"


def test_the_factory_spools_uploads_under_the_state_dir(tmp_path: Path, s3_store_url: str) -> None:
    settings = load_settings(cwd=tmp_path, state_dir=tmp_path / "state")
    store = open_store(s3_store_url, settings, check=False)
    seen: list[Path] = []

    def write(path: Path) -> None:
        seen.append(path)
        path.write_bytes(b"PAR1 not really parquet PAR1")

    store.publish("ab" * 16, write)
    (spool,) = seen
    assert spool.is_relative_to(settings.state_dir), spool
    assert not spool.exists()  # removed once uploaded


KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from featurecache.settings import load_settings
    from featurecache.store.factory import open_store

    settings = load_settings(cwd=Path(sys.argv[2]), state_dir=Path(sys.argv[3]))
    store = open_store(sys.argv[1], settings, check=False)

    def write(path):
        path.write_bytes(b"half a parquet file")
        print(path, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # killed mid-publish: no finally runs

    store.publish("cd" * 16, write)
    """
)


@pytest.mark.slow
def test_a_killed_writers_spool_is_found_and_repaired_by_verify(
    tmp_path: Path, s3_store_url: str
) -> None:
    state = tmp_path / "state"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    child = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, s3_store_url, str(tmp_path), str(state)],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp)},
    )
    assert child.returncode == -9, child.stderr
    spool = Path(child.stdout.strip())
    assert spool.exists() and spool.is_relative_to(state), spool
    assert not list(tmp.glob(SPOOL_GLOB))

    settings = load_settings(cwd=tmp_path, state_dir=state)
    store = open_store(s3_store_url, settings, check=False)
    cache = Cache.create(tmp_path / "cache", store)
    try:
        report = verify_cache(cache.catalog, store)  # default grace: still work in progress
        assert [f.kind for f in report.pending] == [TEMP] and report.clean
        old = verify_cache(cache.catalog, store, grace=timedelta(0))
        assert [(f.kind, f.subject) for f in old.problems] == [(TEMP, str(spool))]
        repaired = verify_cache(cache.catalog, store, repair=True, grace=timedelta(0))
        assert [f.repaired for f in repaired.problems] == [True]
        assert not spool.exists()
        assert verify_cache(cache.catalog, store, grace=timedelta(0)).clean
    finally:
        cache.close()
