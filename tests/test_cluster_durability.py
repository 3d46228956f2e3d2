"""Results computed on a real Dask or Ray cluster are durable once the task returns (issue 16,
item 4): a worker there may be ended without waiting for a background publish (Ray workers
"quick exit" at ``ray.shutdown()`` without joining threads), so a call in such a worker
publishes before it returns (``background.may_be_terminated``). The multiprocessing.Pool
version is tests/test_pool_durability.py.

The driver runs as a script in a user project, so that workers can import the feature
module; workers find the cache through ``FEATURECACHE_CATALOG`` and ``FEATURECACHE_STORE``.
Tasks return a row count, never the frame: only the cache can carry the result to the next
process.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.e2e import Project
from tests.test_pool_durability import check_script, lease_rows, temp_files

pytestmark = pytest.mark.slow  # starts a Dask cluster or a local Ray

FEATURE = """
import polars as pl
from featurecache import cached_feature

@cached_feature
def numbers(n: int) -> pl.DataFrame:
    return pl.select(x=pl.int_range(n), y=pl.int_range(n).hash(7))
"""

# Frames of about 32 MB that hardly compress: a background publish of the last ones would still
# be writing when the cluster shuts down. With the worker check switched off (background
# publishes in Ray workers), 13 of 13 runs lost 1 to 7 of the 8 results with frames this
# large; that run is timing-dependent, so it is not part of the suite.
ITEMS = [2_000_000 + i for i in range(8)]

DRIVER = f"""
import sys
from feat import numbers

def rows(n):
    return numbers(n).height  # a small summary: the frame stays in the worker

def with_dask():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
    )
    client = Client(cluster)
    got = client.gather(client.map(rows, {ITEMS!r}))
    client.close()
    cluster.close()
    return got

def with_ray():
    import ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
    )
    task = ray.remote(rows)
    got = ray.get([task.remote(n) for n in {ITEMS!r}])
    ray.shutdown()  # workers exit without waiting for their threads
    return got

if __name__ == "__main__":
    got = {{"dask": with_dask, "ray": with_ray}}[sys.argv[1]]()
    assert got == {ITEMS!r}, got
"""

CHECK = check_script(ITEMS)

# The module each cluster is imported as, and what is installed for it (the dev extra).
PACKAGES = {"dask": ("distributed", "dask[distributed]"), "ray": ("ray", "ray")}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'proj' / 'cache' / 'catalog.db'}"
    url: str = request.getfixturevalue("pg_catalog_url")
    return url


def run_cluster_map(cluster: str, catalog_url: str, root: Path, **env: str) -> Project:
    """Map ``numbers`` over ``ITEMS`` on ``cluster`` in a fresh project, then shut it down."""
    module, requirement = PACKAGES[cluster]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed: pip install '{requirement}' (in the dev extra)")
    project = Project.create(root, catalog_url=catalog_url)
    project.write("feat.py", FEATURE)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DRIVER), cluster],
        cwd=project.root,
        env=project.env(RAY_USAGE_STATS_ENABLED="0", **env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    return project


@pytest.mark.parametrize("cluster", ["dask", "ray"])
def test_a_cluster_map_stores_every_result(cluster: str, catalog_url: str, tmp_path: Path) -> None:
    project = run_cluster_map(cluster, catalog_url, tmp_path / "proj")
    # Checked before the fresh run: a stale lease would make it wait (or take it over).
    assert lease_rows(catalog_url) == []
    assert temp_files(project) == []
    assert project.run_json(CHECK) == {"hits": len(ITEMS), "misses": 0}
