"""Run one remote operation against a black-hole endpoint in a child process and report how
it ended and how long it took.

A child process with an outer timeout, so that code without a deadline (which would wait for
minutes) fails the test instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fixtures_s3 import aws_test_environment

# Far above any deadline the tests set (2 s), far below the 15 minutes of a hanging endpoint.
OUTER_TIMEOUT = 90.0
DEADLINE_SLACK = 60.0  # a 2 s deadline must end within this, on a loaded machine

_SCRIPT = r"""
import json, sys, time
op, target = sys.argv[1], sys.argv[2]
start = time.monotonic()
outcome, message, store_error = "returned", "", False
try:
    if op == "catalog":
        from sqlalchemy import text
        from featurecache.catalog.database import create_catalog_engine
        engine = create_catalog_engine(target, connect_timeout_seconds=2)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    else:
        from featurecache.settings import load_settings
        from featurecache.store.factory import open_store
        artifact_id = "ab" * 16
        settings = load_settings()
        if op == "probe":
            open_store(target, settings)
        else:
            store = open_store(target, settings, check=False)
            if op == "read":
                store.read_bytes(artifact_id)
            elif op == "exists":
                store.exists(artifact_id)
            elif op in ("publish", "multipart"):
                if op == "multipart":
                    store.multipart_threshold = 1
                store.publish(artifact_id, lambda path: path.write_bytes(b"x" * 1000))
            else:
                raise SystemExit(f"unknown operation {op}")
except Exception as exc:
    from featurecache.errors import CatalogError, StoreError
    outcome = type(exc).__name__
    message = str(exc)
    store_error = isinstance(exc, (StoreError, CatalogError))
    if not store_error:
        import sqlalchemy.exc
        store_error = isinstance(exc, sqlalchemy.exc.OperationalError)
print(json.dumps({"outcome": outcome, "message": message[:500], "handled": store_error,
                  "elapsed": time.monotonic() - start}))
"""


@dataclass
class Ending:
    outcome: str  # "timeout" when the outer timeout expired, else the exception's type name
    message: str
    handled: bool  # a StoreError/CatalogError (or SQLAlchemy OperationalError for a raw engine)
    elapsed: float


def child_environment(home: Path, endpoint_url: str, remote_timeout: float) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "FEATURECACHE_", "PG"))
    }
    env.update(aws_test_environment(endpoint_url, home))
    env["FEATURECACHE_REMOTE_TIMEOUT"] = str(remote_timeout)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path.cwd()), env.get("PYTHONPATH")]))
    return env


def run_operation(
    operation: str, target: str, *, home: Path, endpoint_url: str, remote_timeout: float = 2.0
) -> Ending:
    """Run ``operation`` on ``target`` (an s3:// store URL or a catalog URL) in a child."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SCRIPT, operation, target],
            env=child_environment(home, endpoint_url, remote_timeout),
            cwd=home,
            capture_output=True,
            text=True,
            timeout=OUTER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Ending("timeout", f"still waiting after {OUTER_TIMEOUT:.0f} s", False, OUTER_TIMEOUT)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise AssertionError(f"the child failed ({done.returncode}): {done.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(lines[-1])
    return Ending(data["outcome"], data["message"], data["handled"], data["elapsed"])
