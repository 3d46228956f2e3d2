"""Partitioned features (issue 14): a feature mapped over daily partitions on a 2-worker Dask
cluster, against the same feature over the union of the days in one process.

    python benchmarks/partitioned.py [--days 60] [--events 20000] [--repeat 2]

Each round, in fresh processes and interleaved: ``union`` (read every day, sessionize the
union in one process, no cache), ``cold`` (an empty cache: every day computed on the
cluster), ``warm`` (every day a hit), ``new day`` (one more day: it computes alone). The
map's seconds exclude starting the cluster (reported apart); the ratios are medians over the
rounds. A program, not a test: it prints and never fails on a number.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLE = REPO / "examples" / "partitioned"
WORK = HERE / "work" / "partitioned"

RUN = """
import json, sys, time
from pathlib import Path
import polars as pl

mode, clicks = sys.argv[1], Path(sys.argv[2])
started = time.perf_counter()
from pipeline import sessions_of, sessionize
if mode == "union":
    t0 = time.perf_counter()
    out = sessions_of(pl.read_parquet(clicks / "*" / "clicks.parquet"), 30)
    print(json.dumps({"seconds": time.perf_counter() - t0, "rows": out.height}))
else:
    from distributed import Client, LocalCluster
    from featurecache.partitions import hive
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        t0 = time.perf_counter()
        result = sessionize.map(hive(clicks, key="day"), executor=client)
        seconds = time.perf_counter() - t0
    rows = result.lazy().select(pl.len()).collect().item()
    print(json.dumps({"seconds": seconds, "cluster": t0 - started, "rows": rows,
                      "hits": result.hits, "misses": result.misses}))
"""


def run(mode: str, clicks: Path, cache: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURECACHE_")}
    env["FEATURECACHE_CATALOG"] = f"sqlite:///{cache / 'catalog.db'}"
    env["FEATURECACHE_STORE"] = str(cache / "artifacts")
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLE), str(REPO)])
    proc = subprocess.run(
        [sys.executable, "-c", RUN, mode, str(clicks)],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"{mode} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(EXAMPLE))
    from data import day_name, generate

    clicks, cache = WORK / "clicks", WORK / "cache"
    generate(args.days, args.events, clicks)
    rows: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.repeat):
        shutil.rmtree(clicks / f"day={day_name(args.days)}", ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
        rows.setdefault("union", []).append(run("union", clicks, cache))
        rows.setdefault("cold", []).append(run("map", clicks, cache))
        rows.setdefault("warm", []).append(run("map", clicks, cache))
        generate(args.days + 1, args.events, clicks)
        rows.setdefault("new day", []).append(run("map", clicks, cache))
    median = {name: statistics.median(r["seconds"] for r in runs) for name, runs in rows.items()}
    cluster = statistics.median(r["cluster"] for name in ("cold", "warm") for r in rows[name])
    print(f"{args.days} days x {args.events} events, {args.repeat} rounds (medians, seconds)")
    for name, runs in rows.items():
        extra = (
            ""
            if name == "union"
            else f"  hits {runs[-1]['hits']:.0f} misses {runs[-1]['misses']:.0f}"
        )
        each = ", ".join(f"{r['seconds']:.2f}" for r in runs)
        print(f"  {name:<8} {median[name]:7.2f}  ({each}){extra}")
    print(f"  cluster start {cluster:.2f} (not in the map's seconds)")
    print(
        f"  cold on 2 Dask workers / union in one process: {median['cold'] / median['union']:.2f}"
    )
    print(f"  warm (all hits) / cold:                        {median['warm'] / median['cold']:.3f}")
    print(
        f"  one new day / full recompute (cold):           {median['new day'] / median['cold']:.3f}"
    )


if __name__ == "__main__":
    main()
