"""Run the predictions example in fresh processes: cold (each model scores the test set
once, and a second evaluation in the same process scores nothing), warm (a new process trains
the same models again: every prediction is a hit, no inference), then with another
regularisation for the pipeline (only its predictions recompute, and ``why`` names the
parameter). Exits non-zero on any other outcome."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def evaluate(step: str, *args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURECACHE_")}
    proc = subprocess.run(
        [sys.executable, str(HERE / "evaluate.py"), *args],
        cwd=HERE,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"the {step} run failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    auc = {name: m["auc"] for name, m in result["metrics"].items()}
    print(
        f"{step:<10} inferences {result['inferences']} ({result['rows_scored']:,} rows)  "
        f"hits {result['hits']}  misses {result['misses']}  AUC {auc}"
    )
    return result


def main(rows: int = 20_000) -> None:
    shutil.rmtree(HERE / ".featurecache", ignore_errors=True)
    size = ("--rows", str(rows))
    cold = evaluate("cold", *size)
    warm = evaluate("warm", *size)
    retuned = evaluate("C=0.5", *size, "--C", "0.5")
    print("why:", "; ".join(retuned["why"]))

    # Per run: two models, each evaluated twice (the second evaluation always hits).
    expected = [(2, 2, 2), (0, 4, 0), (1, 3, 1)]
    got = [(r["inferences"], r["hits"], r["misses"]) for r in (cold, warm, retuned)]
    if got != expected:
        raise SystemExit(f"expected (inferences, hits, misses) {expected}, got {got}")
    if warm["metrics"] != cold["metrics"]:
        raise SystemExit("the warm run's metrics differ from the cold run's")
    if not any("param `logisticregression__C`: 1.0 → 0.5" in m for m in retuned["why"]):
        raise SystemExit(f"why did not name the changed parameter: {retuned['why']}")
    print("five metrics per model from one prediction run; warm runs did no inference")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
