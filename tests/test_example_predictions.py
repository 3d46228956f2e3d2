"""Issue 15's predictions example (``examples/predictions``): a cached prediction function
taking real scikit-learn and LightGBM models, five metrics from one prediction run; in fresh
processes the warm run trains the same models again and does no inference, and a changed
hyperparameter recomputes only that model's predictions, ``why`` naming the parameter."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import run_example

pytestmark = pytest.mark.slow  # three fresh processes importing scikit-learn and LightGBM


def test_the_predictions_example_does_no_inference_when_warm(tmp_path: Path) -> None:
    pytest.importorskip("lightgbm")
    out = run_example("predictions", tmp_path, "3000").stdout
    assert "warm       inferences 0 (0 rows)  hits 4  misses 0" in out
    assert "param `logisticregression__C`: 1.0 → 0.5" in out
    assert "warm runs did no inference" in out
