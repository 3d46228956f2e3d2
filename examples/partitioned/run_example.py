"""Run the partitioned example end to end, each step in a fresh process:

    python examples/partitioned/run_example.py [--days 365] [--events 20000]

generates the year of daily partitions, trains cold (every day computed on the Dask
cluster), warm (every day a hit), then after one new day arrives (that day computed alone).
Prints a table of the three runs; exits non-zero on any other outcome.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(*argv: str) -> str:
    proc = subprocess.run(
        [sys.executable, *argv], cwd=HERE, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def train() -> dict[str, object]:
    started = time.perf_counter()
    out: dict[str, object] = json.loads(run("train.py").strip().splitlines()[-1])
    out["wall_seconds"] = round(time.perf_counter() - started, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    run("data.py", "--days", str(args.days), "--events", str(args.events))
    shutil.rmtree(HERE / ".featurecache", ignore_errors=True)
    runs = {"cold": train(), "warm": train()}
    run("data.py", "--days", str(args.days + 1), "--events", str(args.events))
    runs["one new day"] = train()
    print(
        f"{'run':<12} {'days':>5} {'hits':>5} {'misses':>6} {'map s':>7} {'wall s':>7} {'AUC':>6}"
    )
    for name, r in runs.items():
        print(
            f"{name:<12} {r['partitions']:>5} {r['hits']:>5} {r['misses']:>6} "
            f"{r['map_seconds']:>7} {r['wall_seconds']:>7} {r['auc']:>6}"
        )
    expected = {
        "cold": (0, args.days),
        "warm": (args.days, 0),
        "one new day": (args.days, 1),
    }
    wrong = {
        n: (r["hits"], r["misses"])
        for n, r in runs.items()
        if (r["hits"], r["misses"]) != expected[n]
    }
    if wrong:
        sys.exit(f"unexpected hits/misses: {wrong} (expected {expected})")


if __name__ == "__main__":
    main()
