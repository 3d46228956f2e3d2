"""Helpers for end-to-end tests: a tiny user project on disk, run in fresh subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Project:
    """A user project in a temp folder with its own cache (SQLite + local directory)."""

    root: Path
    catalog_url: str
    store_url: str

    @classmethod
    def create(cls, root: Path, catalog_url: str | None = None, store_url: str | None = None) -> Project:
        root.mkdir(parents=True, exist_ok=True)
        (root / "pyproject.toml").write_text('[project]\nname = "userproj"\nversion = "0"\n')
        return cls(
            root=root,
            catalog_url=catalog_url or f"sqlite:///{root / 'cache' / 'catalog.db'}",
            store_url=store_url or str(root / "cache" / "artifacts"),
        )

    def write(self, relative: str, source: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        # A rewrite within the same second must still be seen as a change by .pyc caching.
        for cached in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
            cached.unlink()
        return path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURECACHE_")}
        env.update(
            FEATURECACHE_CATALOG=self.catalog_url,
            FEATURECACHE_STORE=self.store_url,
            PYTHONPATH=os.pathsep.join([str(self.root), str(REPO)]),
            PYTHONDONTWRITEBYTECODE="1",
        )
        if "FEATURECACHE_TEST_PG_URL" in os.environ:
            env["FEATURECACHE_TEST_PG_URL"] = os.environ["FEATURECACHE_TEST_PG_URL"]
        env.update(extra)
        return env

    def run(self, script: str, *, check: bool = True, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script)],
            cwd=self.root,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def run_json(self, script: str, **env: str) -> Any:
        """Run a script whose last stdout line is JSON; return it parsed."""
        proc = self.run(script, **env)
        return json.loads(proc.stdout.strip().splitlines()[-1])


SESSION = """
import json, featurecache
def _session():
    engine = featurecache.default_cache().engine
    engine.publisher.flush()
    s = engine.session
    return {"hits": s.hits, "misses": s.misses}
"""
