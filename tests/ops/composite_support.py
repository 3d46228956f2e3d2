"""A user project whose feature returns a composite result, run in fresh processes, and the
CLI run in-process against its cache: what the composite tests of gc, verify, ls, show and
lineage share.

``split`` returns ``(train_df, test_df, y_train, y_test)`` as real feature code does; ``score``
takes a part of it (``X_train``) as input, so lineage has a downstream edge out of a part.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from featurecache.catalog import Catalog
from featurecache.cli.main import main
from tests.e2e import SESSION, Project

FEATURES = """
import numpy as np
import pandas as pd
from featurecache import cached_feature


@cached_feature
def split(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.integers(0, 100, n), "b": rng.random(n)})
    labels = pd.Series(rng.integers(0, 2, n), name="y")
    cut = n * 3 // 4
    return frame.iloc[:cut], frame.iloc[cut:], labels.iloc[:cut], labels.iloc[cut:]


@cached_feature
def score(train: pd.DataFrame) -> pd.DataFrame:
    return train.assign(total=train["a"] + train["b"])
"""

# Runs split(n) (and score on its first part when asked) in a fresh process; prints the
# session's hits and misses and a digest of the values.
RUN = (
    SESSION
    + """
import sys
import pandas as pd
from feats import score, split
n, with_score = int(sys.argv[1]), sys.argv[2] == "1"
train, test, y_train, y_test = split(n)
digest = [int(pd.util.hash_pandas_object(v).sum()) for v in (train, test, y_train, y_test)]
if with_score:
    digest.append(int(score(train)["total"].sum() * 1000))
print(json.dumps({**_session(), "digest": digest}))
"""
)


@dataclass
class CompositeProject:
    project: Project

    def run(self, n: int, *, with_score: bool = False) -> dict[str, Any]:
        """split(n) (and score) in a fresh process: {"hits", "misses", "digest"}."""
        script = RUN.replace("sys.argv[1]", repr(str(n))).replace(
            "sys.argv[2]", repr("1" if with_score else "0")
        )
        return dict(self.project.run_json(script))

    def catalog(self) -> Catalog:
        return Catalog.open(self.project.catalog_url)

    @property
    def store_root(self) -> Path:
        return Path(self.project.store_url)


# Registered under the names tests use; a test module imports these functions (ruff then sees
# no redefinition of an imported name in its parameters).
@pytest.fixture(name="composite_project")
def composite_project_fixture(tmp_path: Path, any_catalog_url: str) -> CompositeProject:
    """A project on each catalog backend (SQLite, the real PostgreSQL) with a local store."""
    project = Project.create(tmp_path / "proj", catalog_url=any_catalog_url)
    project.write("feats.py", FEATURES)
    return CompositeProject(project)


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)  # stdout holds the JSON and nothing else


@pytest.fixture(name="cli")
def cli_fixture(
    composite_project: CompositeProject,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Callable[..., CliResult]]:
    """``featurecache ARGS`` in this process against the project's cache."""
    project = composite_project.project
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("FEATURECACHE_CATALOG", project.catalog_url)
    monkeypatch.setenv("FEATURECACHE_STORE", project.store_url)
    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*argv: str) -> CliResult:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    yield invoke
