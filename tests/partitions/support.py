"""A user project for partitioned-feature tests: daily hive folders, a feature module that
counts its executions, and a driver script that maps it over the folders on an executor and
prints what came back (as JSON): hits, misses, the union's rows and a pushed-down filter."""

from __future__ import annotations

import json
from typing import Any

from tests.team_support import COUNTER, TeamBackend

FEATURES = (
    COUNTER
    + """
import os
import time
from pathlib import Path

import polars as pl
from featurecache import cached_feature

SCALE = 2  # edited by tests: a code change
# Cluster workers may run in another folder: every side file is in the project's. The side
# files' names have no extension: a path literal of the code is an input of every entry
# (README "Files the body reads"), and creating killed_flag must not make entries stale.
HERE = os.path.dirname(os.path.abspath(__file__))
CALLS = os.path.join(HERE, "calls.log")

@cached_feature
def sessionize(day: str, path: Path, gap: int = 30) -> pl.DataFrame:
    _count("sessionize")
    _count(f"day={day}")
    block = os.environ.get("BLOCK_DAY")
    if block == day and not os.path.exists(os.path.join(HERE, "killed_flag")):
        # The worker-killed test: say which process runs this task, then wait to be killed.
        with open(os.path.join(HERE, "started_tmp"), "w") as handle:
            handle.write(str(os.getpid()))
        os.replace(os.path.join(HERE, "started_tmp"), os.path.join(HERE, "started_pid"))
        while True:
            time.sleep(0.05)
    clicks = pl.read_parquet(path / "clicks.parquet")
    return clicks.with_columns(
        pl.lit(day).alias("day"), (pl.col("x") * SCALE + gap).alias("session")
    )
"""
)

GENERATE = """
import sys
from pathlib import Path
import polars as pl

start, stop = int(sys.argv[1]), int(sys.argv[2])
for i in range(start, stop):
    folder = Path("data") / f"day=2026-01-{i + 1:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"x": list(range(i * 10, i * 10 + 10))}).write_parquet(folder / "clicks.parquet")
"""

# argv: executor ("none", "threads", "processes", "dask", "ray")
DRIVER = """
import json, os, signal, sys, threading, time
import polars as pl
from featurecache.partitions import hive
from features import sessionize

def kill_when_started():
    # Waits for the file the blocked task writes, then kills that worker process.
    while not os.path.exists("started_pid"):
        time.sleep(0.02)
    pid = int(open("started_pid").read())
    open("killed_flag", "w").close()
    os.kill(pid, signal.SIGKILL)

def run(executor):
    if os.environ.get("BLOCK_DAY"):
        threading.Thread(target=kill_when_started, daemon=True).start()
    return sessionize.map(hive("data", key="day"), executor=executor, gap=1)

def main(name):
    if name == "dask":
        from distributed import Client, LocalCluster
        cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                               host="127.0.0.1", dashboard_address=None)
        client = Client(cluster)
        try:
            result = run(client)
            dask_rows = len(result.to_dask().compute())
        finally:
            client.close()
            cluster.close()
    elif name == "ray":
        import ray
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                 log_to_driver=False)
        try:
            result = run("ray")
            dask_rows = result.to_ray().count()
        finally:
            ray.shutdown()
    else:
        result = run(None if name == "none" else name)
        dask_rows = None
    lazy = result.lazy()
    picked = lazy.filter(pl.col("day") >= "2026-01-03").select("day", "session").collect()
    whole = lazy.collect()
    print(json.dumps({
        "hits": result.hits,
        "misses": result.misses,
        "labels": list(result.labels),
        "rows": whole.height,
        "picked": picked.height,
        "days": sorted(set(picked["day"])),
        "session_sum": int(whole["session"].sum()),
        "ref": result.ref,
        "artifacts": list(result.artifact_ids),
        "reader_rows": dask_rows,
    }))

if __name__ == "__main__":  # spawned workers import this file again
    main(sys.argv[1])
"""


def generate(team: TeamBackend, start: int, stop: int) -> None:
    team.project.write("gen.py", GENERATE)
    team.project.run(
        f"import runpy, sys; sys.argv = ['gen', '{start}', '{stop}']; runpy.run_path('gen.py')"
    )


def drive(team: TeamBackend, executor: str, **env: str) -> dict[str, Any]:
    """Run the driver in a fresh process; its JSON line."""
    team.project.write("driver.py", DRIVER)
    proc = team.run(
        f"import runpy, sys; sys.argv = ['driver', '{executor}']; runpy.run_path('driver.py', "
        "run_name='__main__')",
        RAY_USAGE_STATS_ENABLED="0",
        **env,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def expected_sum(days: int, scale: int = 2, gap: int = 1) -> int:
    """The sum of ``session`` over ``days`` generated days."""
    return sum((x * scale + gap) for i in range(days) for x in range(i * 10, i * 10 + 10))
