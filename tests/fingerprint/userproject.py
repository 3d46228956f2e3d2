"""A tiny user project written to disk, and a runner that computes code identities in a fresh
Python process (so every run imports the files as they are on disk, as a new session would)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

BASE_FILES: dict[str, str] = {
    "pipeline/__init__.py": "",
    "pipeline/util.py": '''
        """Helpers for the pipeline."""
        import math

        GAP = 30
        UNRELATED = 1


        def _base(x):
            return x + 1


        def clean_ts(x):
            """Clean timestamps."""
            return _base(x) * 2


        def unrelated(x):
            return math.floor(x)


        class Sessionizer:
            scale = 2

            def __init__(self, gap):
                self.gap = gap

            def split(self, x):
                return x // self.gap * self.scale


        def make_feature(gap):
            def feature(x):
                return x + gap

            return feature


        def ping(n):
            return 0 if n <= 0 else pong(n - 1)


        def pong(n):
            return 1 if n <= 0 else ping(n - 1)
        ''',
    "pipeline/other.py": """
        def helper_b(x):
            return x * 3
        """,
    "pipeline/features.py": '''
        """Feature functions."""
        import pipeline.other
        from pipeline import util
        from pipeline.util import Sessionizer, clean_ts

        from featurecache.feature import cached_feature

        LOCAL = 5
        UNUSED_CONSTANT = "x"


        def local_helper(x):
            return x + 10


        def sessions(clicks, gap_minutes=30):
            """Sessions from clicks."""
            # split into sessions
            s = Sessionizer(gap_minutes)
            total = clean_ts(clicks) + util.GAP + pipeline.other.helper_b(clicks) + s.split(clicks)
            scale = lambda v: v * 2  # noqa: E731

            def bump(v):
                return v + LOCAL

            return local_helper(bump(scale(total))) + 1


        def unrelated_in_features(x):
            return x


        by_factory = util.make_feature(45)


        @cached_feature(name="decorated", version="1", lazy=False)
        def decorated(x):
            return x + 1


        def recursive(n):
            return util.ping(n)


        def uses_polars(n):
            import polars as pl

            return pl.DataFrame({"a": [n]})
        ''',
}

RUNNER = """
import importlib, json, os, sys, warnings

warnings.simplefilter("ignore")
fake = json.loads(os.environ.get("FC_FAKE_VERSIONS") or "{}")
from featurecache.fingerprint.code import libraries

if fake:
    real = libraries.distribution_version
    libraries.distribution_version = lambda name: fake[name] if name in fake else real(name)
from featurecache.fingerprint.code.identity import code_identity

out = {}
for target in sys.argv[1:]:
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    kwargs = {}
    if hasattr(obj, "func") and hasattr(obj, "options"):  # a @cached_feature
        kwargs = {"version": obj.version, "options": dict(obj.options)}
    identity = code_identity(obj, **kwargs)
    out[target] = {"digest": identity.digest, "components": identity.components}
print(json.dumps(out))
"""


def write_project(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text()
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1))


def python_env(root: Path, hash_seed: str = "0", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "FC_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(REPO_ROOT)])
    env["PYTHONHASHSEED"] = hash_seed
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # an edit within the same second must not hit a .pyc
    env.update(extra)
    return env


def start_identities(
    root: Path, targets: list[str], *, fake_versions: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    env = python_env(root, FC_FAKE_VERSIONS=json.dumps(dict(fake_versions or {})))
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, *targets],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def identities(
    root: Path, targets: list[str], *, fake_versions: Mapping[str, str] | None = None
) -> dict[str, Any]:
    return finish(start_identities(root, targets, fake_versions=fake_versions))
