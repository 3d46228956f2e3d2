"""Issue 15's skew-guard workflow (``examples/serving``) against a real ``mlflow server``: train
and log the model with its feature digests, check and serve; edit a real helper in a copy of
the example and see ``check-serving`` and the service refuse, naming the helper, from the
catalog and from MLflow alone; revert and see both pass again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import REPO
from tests.integrations.fixtures_mlflow import mlflow_server  # noqa: F401

pytestmark = [pytest.mark.mlflow, pytest.mark.slow]

REQUEST = json.dumps([{"user_id": 1, "amount": 12.5}, {"user_id": 1, "amount": -3.0}])


def _run(example: Path, tracking: str, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("FEATURECACHE_", "MLFLOW_"))
    }
    environ.update(
        MLFLOW_TRACKING_URI=tracking,
        PYTHONPATH=str(REPO),
        PYTHONDONTWRITEBYTECODE="1",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        **env,
    )
    return subprocess.run(
        [sys.executable, *argv],
        cwd=example,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _check(example: Path, tracking: str, run_id: str, *extra: str, **env: str) -> tuple[int, str]:
    proc = _run(
        example,
        tracking,
        *("-m", "featurecache", "check-serving", run_id, "--module", "shop_features.features"),
        *extra,
        **env,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout + proc.stderr


def test_the_skew_guard_refuses_an_edited_helper_and_passes_once_reverted(
    tmp_path: Path,
    mlflow_server: str,  # noqa: F811
) -> None:
    example = tmp_path / "serving"
    shutil.copytree(
        REPO / "examples" / "serving",
        example,
        ignore=shutil.ignore_patterns(".featurecache", "__pycache__"),
    )
    trained = _run(example, mlflow_server, "train.py")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    run = json.loads(trained.stdout.strip().splitlines()[-1])
    run_id = run["run_id"]
    # No shared catalog on this "serving host": the record is the run's, in MLflow.
    mlflow_only = {"FEATURECACHE_CATALOG": f"sqlite:///{tmp_path / 'none' / 'catalog.db'}"}

    assert _check(example, mlflow_server, run_id)[0] == 0
    code, out = _check(example, mlflow_server, run_id, "--source", "mlflow", **mlflow_only)
    assert code == 0, out
    assert "features read from mlflow" in out
    assert not (tmp_path / "none").exists()  # the check created no cache
    served = _run(example, mlflow_server, "serve.py", run_id, REQUEST)
    assert served.returncode == 0, served.stderr
    assert isinstance(json.loads(served.stdout.strip().splitlines()[-1])["score"], float)

    helpers = example / "shop_features" / "helpers.py"
    original = helpers.read_text()
    helpers.write_text(original.replace("then(0.0)", "then(None)"))
    code, out = _check(example, mlflow_server, run_id)
    assert code == 1, out
    assert "helper `clean_amount` in `shop_features/helpers.py` changed" in out
    code, out = _check(example, mlflow_server, run_id, "--json", **mlflow_only)
    assert code == 1, out
    report = json.loads(out.strip().splitlines()[-1])
    assert report["source"] == "mlflow"
    rows = {row["feature"]: row for row in report["features"]}
    assert rows["clean_orders"]["status"] == "differs"
    assert rows["clean_orders"]["trained_digest"] == run["digests"]["clean_orders"]
    assert "helper `clean_amount`" in rows["clean_orders"]["explanation"]
    assert rows["user_features"]["status"] == "same"
    refused = _run(example, mlflow_server, "serve.py", run_id, REQUEST)
    assert refused.returncode == 1
    assert "helper `clean_amount`" in refused.stderr

    helpers.write_text(original)
    assert _check(example, mlflow_server, run_id)[0] == 0
    assert _check(example, mlflow_server, run_id, "--source", "mlflow", **mlflow_only)[0] == 0
    assert _run(example, mlflow_server, "serve.py", run_id, REQUEST).returncode == 0

    # The catalog forgets which feature made an artifact (cleared here; GC does the same):
    # the run's record in MLflow names it, the catalog's code versions explain the change.
    cleared = _run(example, mlflow_server, "-m", "featurecache", "clear", "clean_orders")
    assert cleared.returncode == 0, cleared.stderr
    code, out = _check(example, mlflow_server, run_id)
    assert code == 0, out
    assert "features read from catalog+mlflow" in out
    helpers.write_text(original.replace("then(0.0)", "then(None)"))
    code, out = _check(example, mlflow_server, run_id)
    assert code == 1, out
    assert "helper `clean_amount` in `shop_features/helpers.py` changed" in out
    helpers.write_text(original)

    code, out = _check(example, mlflow_server, "0" * 32, **mlflow_only)
    assert code == 2
    assert "featurecache: error: no cached feature used by run" in out
