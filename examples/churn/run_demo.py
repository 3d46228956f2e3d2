"""`make demo`: generate the data, then train the churn model twice in two fresh processes
against a cold cache and print what the cache saved."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(step: str) -> tuple[dict[str, float], float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(HERE / "train.py"), "--run-name", f"train-{step}"],
        cwd=HERE,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("FEATURECACHE_")},
        check=False,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{step} run failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall


def main() -> None:
    sys.path.insert(0, str(HERE))
    from data import generate

    data = HERE / "data"
    if not (data / "clicks.parquet").exists():
        print("generating 5 M click events and 200 k users …", flush=True)
        generate(data)
    shutil.rmtree(HERE / ".featurecache", ignore_errors=True)

    print("cold run (empty cache) …", flush=True)
    cold, cold_wall = run("cold")
    print("warm run (fresh process, same cache) …", flush=True)
    warm, warm_wall = run("warm")

    from rich.console import Console
    from rich.table import Table

    table = Table(title="churn demo: two training runs in fresh processes")
    for column in (
        "run",
        "process wall s",
        "preprocessing s",
        "training s",
        "hits",
        "misses",
        "preprocessing s avoided",
        "test AUC",
    ):
        table.add_column(column, justify="right")
    for name, result, wall in (("cold", cold, cold_wall), ("warm", warm, warm_wall)):
        table.add_row(
            name,
            f"{wall:.2f}",
            f"{result['preprocessing_seconds']:.2f}",
            f"{result['training_seconds']:.2f}",
            str(result["hits"]),
            str(result["misses"]),
            f"{result['seconds_avoided']:.2f}",
            f"{result['test_auc']:.3f}",
        )
    Console(width=140).print(table)
    speedup = cold["preprocessing_seconds"] / max(warm["preprocessing_seconds"], 1e-9)
    print(
        f"preprocessing: {cold['preprocessing_seconds']:.2f} s cold → {warm['preprocessing_seconds']:.2f} s warm ({speedup:.0f}× faster)"
    )
    print(
        "inspect the cache: cd examples/churn && ../../.venv/bin/featurecache ls   (also: stats, why, show, lineage)"
    )
    if warm["misses"] != 0 or warm["hits"] < 4:
        raise SystemExit(f"the warm run did not skip all preprocessing: {warm}")
    if cold["test_auc"] != warm["test_auc"]:
        raise SystemExit("the warm run trained on different data than the cold run")


if __name__ == "__main__":
    main()
