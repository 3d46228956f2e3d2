"""A real MLflow tracking server for the session: ``mlflow server`` on 127.0.0.1 with a SQLite
backend and proxied artifacts in a temporary folder.

The first start of a new database runs MLflow's migrations (tens of seconds on a small VM), so
a migrated, still empty database is kept in pytest's cache (one per mlflow version) and copied
for later sessions. Without a server the tests skip loudly, unless
FEATURECACHE_REQUIRE_SERVICES=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from pathlib import Path

import pytest

START_TIMEOUT = 120.0  # migrations of a new database take ~40 s on a loaded 2-core VM


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _unavailable(reason: str) -> None:
    if os.environ.get("FEATURECACHE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"MLflow server required (FEATURECACHE_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(f"SKIPPED LOUDLY: no MLflow server for the lineage tests: {reason}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # The server runs in its own session: its uvicorn worker goes with the group.
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


def _template(request: pytest.FixtureRequest) -> Path | None:
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    if cache is None:
        return None
    try:
        from importlib.metadata import version

        mlflow_version = version("mlflow-skinny")
    except Exception:  # noqa: BLE001 - only names the template file
        mlflow_version = "unknown"
    return Path(cache.mkdir("featurecache-mlflow")) / f"mlflow-{mlflow_version}.db"


def start_mlflow(
    root: Path,
    request: pytest.FixtureRequest,
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``mlflow server`` on 127.0.0.1 with its SQLite database and artifacts under
    ``root``, plus ``args`` and ``env``; (the process, its URL) once ``/health`` answers.
    Skips loudly (fails under FEATURECACHE_REQUIRE_SERVICES=1) when it cannot."""
    try:
        import mlflow  # noqa: F401
    except ImportError as exc:
        _unavailable(f"mlflow is not installed ({exc}); pip install 'featurecache[dev]'")
    root.mkdir(parents=True, exist_ok=True)
    db = root / "mlflow.db"
    template = _template(request)
    if template is not None and template.is_file():
        shutil.copyfile(template, db)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = root / "server.log"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    environ["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no job runner + huey workers
    environ.update(env or {})
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "mlflow", "server"),
                *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
                *("--backend-store-uri", f"sqlite:///{db}"),
                *("--artifacts-destination", str(root / "artifacts")),
                *args,
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=root,
            env=environ,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while not _healthy(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            if template is not None:  # in case the cached database was the problem
                template.unlink(missing_ok=True)
            tail = log_path.read_text(errors="replace")[-2000:]
            _unavailable(
                f"`mlflow server` did not answer on {url} within {START_TIMEOUT:.0f} s:\n{tail}"
            )
        time.sleep(0.25)
    if template is not None and not template.is_file():
        # Migrated and still empty: keep a copy (sqlite's backup API is safe while it runs).
        partial = template.with_suffix(".partial")
        with closing(sqlite3.connect(db)) as source, closing(sqlite3.connect(partial)) as target:
            source.backup(target)
        os.replace(partial, template)
    return proc, url


@pytest.fixture(scope="session")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    """The URL of a running MLflow tracking server (http://127.0.0.1:<port>)."""
    proc, url = start_mlflow(tmp_path_factory.mktemp("mlflow-server"), request)
    try:
        yield url
    finally:
        _stop(proc)
