"""Issue 15's predictions example (``examples/predictions``): a cached prediction function
taking real scikit-learn and LightGBM models, five metrics from one prediction run; in fresh
processes the warm run trains the same models again and does no inference, and a changed
hyperparameter recomputes only that model's predictions, ``why`` naming the parameter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import REPO

pytestmark = pytest.mark.slow  # three fresh processes importing scikit-learn and LightGBM


def test_the_predictions_example_does_no_inference_when_warm(tmp_path: Path) -> None:
    pytest.importorskip("lightgbm")
    example = tmp_path / "predictions"
    shutil.copytree(
        REPO / "examples" / "predictions",
        example,
        ignore=shutil.ignore_patterns(".featurecache", "__pycache__"),
    )
    proc = subprocess.run(
        [sys.executable, str(example / "run_example.py"), "3000"],
        cwd=example,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warm       inferences 0 (0 rows)  hits 4  misses 0" in proc.stdout
    assert "param `logisticregression__C`: 1.0 → 0.5" in proc.stdout
    assert "warm runs did no inference" in proc.stdout
