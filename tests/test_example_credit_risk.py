"""Issue 12's end-to-end example (``examples/credit_risk``): features written as public
notebooks write them (str paths, a literal path read in the body, a Series feature, a split
tuple) run in fresh processes; editing a data file in place (same size and mtime) recomputes
exactly what reads it and what depends on it, never a stale result."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import REPO

pytestmark = pytest.mark.slow  # five fresh processes importing pandas and scikit-learn


def test_the_credit_risk_example_recomputes_exactly_what_each_edit_touches(
    tmp_path: Path,
) -> None:
    example = tmp_path / "credit_risk"
    shutil.copytree(
        REPO / "examples" / "credit_risk",
        example,
        ignore=shutil.ignore_patterns("data", ".featurecache", "__pycache__"),
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
    assert "no stale result" in proc.stdout
    assert "Traceback" not in proc.stderr
