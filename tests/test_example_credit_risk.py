"""Issue 12's end-to-end example (``examples/credit_risk``): features written as public
notebooks write them (str paths, a literal path read in the body, a Series feature, a split
tuple) run in fresh processes; editing a data file in place (same size and mtime) recomputes
exactly what reads it and what depends on it, never a stale result."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import run_example

pytestmark = pytest.mark.slow  # five fresh processes importing pandas and scikit-learn


def test_the_credit_risk_example_recomputes_exactly_what_each_edit_touches(
    tmp_path: Path,
) -> None:
    proc = run_example("credit_risk", tmp_path, "3000")
    assert "no stale result" in proc.stdout
    assert "Traceback" not in proc.stderr
