"""Helpers for end-to-end tests: a tiny user project on disk, run in fresh subprocesses."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Project:
    """A user project in a temp folder with its own cache (SQLite + local directory)."""

    root: Path
    catalog_url: str
    store_url: str
    _started: itertools.count[int] = field(default_factory=itertools.count, repr=False)

    @classmethod
    def create(
        cls, root: Path, catalog_url: str | None = None, store_url: str | None = None
    ) -> Project:
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

    def run(
        self, script: str, *, check: bool = True, timeout: float = 300, **env: str
    ) -> subprocess.CompletedProcess[str]:
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
            raise AssertionError(
                f"subprocess failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def start(self, script: str, **env: str) -> Running:
        """Start a script without waiting for it (for races); its stdout and stderr go to
        files, so that many children never block on a full pipe."""
        logs = self.root / ".runs"
        logs.mkdir(exist_ok=True)
        n = next(self._started)
        stdout, stderr = logs / f"{n}.out", logs / f"{n}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(script)],
                cwd=self.root,
                env=self.env(**env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        return Running(process, stdout, stderr)

    def run_json(self, script: str, **env: str) -> Any:
        """Run a script whose last stdout line is JSON; return it parsed."""
        proc = self.run(script, check=True, timeout=300, **env)
        return json.loads(proc.stdout.strip().splitlines()[-1])


@dataclass
class Running:
    """A script started by ``Project.start``."""

    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def finish(self, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Wait for the script (killing it after ``timeout`` seconds) and return its output."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"subprocess {self.pid} did not finish within {timeout}s:\n"
                f"{self.stderr_path.read_text(errors='replace')[-3000:]}"
            ) from None
        return subprocess.CompletedProcess(
            self.process.args,
            self.process.returncode,
            self.stdout_path.read_text(errors="replace"),
            self.stderr_path.read_text(errors="replace"),
        )


SESSION = """
import json, featurecache
def _session():
    engine = featurecache.default_cache().engine
    engine.flush()
    s = engine.session
    return {"hits": s.hits, "misses": s.misses}
"""


def run_example(name: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Copy ``examples/<name>`` (without data, cache or bytecode) into ``tmp_path`` and run its
    ``run_example.py`` there with ``args``; fails the test unless it exits 0."""
    import shutil

    example = tmp_path / name
    shutil.copytree(
        REPO / "examples" / name,
        example,
        ignore=shutil.ignore_patterns("data", ".featurecache", "__pycache__"),
    )
    proc = subprocess.run(
        [sys.executable, str(example / "run_example.py"), *args],
        cwd=example,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc
