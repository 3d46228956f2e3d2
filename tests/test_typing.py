"""User code that decorates with ``@cached_feature`` type-checks under ``mypy --strict``.

``tests/typing_user.py`` is copied into an empty project and checked the way a user would check
it: featurecache is found as an installed package (``py.typed``), so only the user's own module
is reported. A second module with a deliberately wrong call must be reported, so a decorator that
erased the signature (``Any``) would fail this test.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a cold mypy run over polars and featurecache: ~20 s

USER_MODULE = Path(__file__).with_name("typing_user.py")

WRONG_CALLS = """\
import polars as pl

import featurecache
from typing_user import sessions

frame = pl.DataFrame({"user_id": [1], "ts": [0]})
reveal_type(sessions(frame))
reveal_type(featurecache.why)
sessions(frame, gap_minutes="30")
sessions.recompute(frame, gap_minutes="30")
"""


def _mypy(project: Path, *files: str) -> tuple[int, list[str]]:
    """``mypy --strict`` on ``files`` in ``project``, isolated from this repository's config."""
    config = project / "mypy.ini"
    config.write_text("[mypy]\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(config),
            "--cache-dir",
            str(project / ".mypy_cache"),
            "--no-error-summary",
            "--hide-error-context",
            *files,
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr  # 2: mypy crashed or misused
    return proc.returncode, proc.stdout.splitlines()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project (and mypy cache) for the module: the second run reuses the first's cache."""
    path = tmp_path_factory.mktemp("user_project")
    shutil.copy(USER_MODULE, path / "typing_user.py")
    return path


def test_user_module_passes_mypy_strict(project: Path) -> None:
    returncode, lines = _mypy(project, "typing_user.py")
    assert returncode == 0 and lines == [], "\n".join(lines)


def test_wrong_argument_types_are_reported(project: Path) -> None:
    (project / "wrong.py").write_text(WRONG_CALLS)
    returncode, lines = _mypy(project, "wrong.py")
    assert returncode == 1, "\n".join(lines)
    errors = [line for line in lines if ": error:" in line]
    assert len(errors) == 2, "\n".join(lines)
    # The call and .recompute() check their arguments alike.
    for line, error in zip((9, 10), errors, strict=True):
        assert error.startswith(f"wrong.py:{line}: error:"), errors
        assert '"gap_minutes"' in error and '"str"' in error and '"int"' in error
        assert error.endswith("[arg-type]"), errors
    revealed = [line for line in lines if "Revealed type is" in line]
    assert revealed[0].startswith("wrong.py:7:"), revealed
    assert revealed[0].endswith('"polars.dataframe.frame.DataFrame"'), revealed
    assert "-> featurecache.ops.why.WhyReport" in revealed[1], revealed
