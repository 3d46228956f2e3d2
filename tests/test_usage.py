"""Usage events are written off the hit path, in batches, and none is lost at exit."""

from __future__ import annotations

from pathlib import Path

from tests.e2e import Project

FEATURE = """
import polars as pl
from featurecache import cached_feature

@cached_feature
def numbers(n: int) -> pl.DataFrame:
    return pl.DataFrame({"x": list(range(n))})
"""


def test_hits_are_recorded_in_the_catalog_after_the_process_exits(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "proj")
    project.write("feat.py", FEATURE)
    project.run("from feat import numbers\nnumbers(3)\n")
    # 25 hits, and the process exits immediately after the last one.
    project.run("from feat import numbers\nfor _ in range(25):\n    numbers(3)\n")
    stats = project.run_json(
        "import json\nfrom featurecache.catalog.facade import Catalog\nimport os\n"
        "from featurecache.settings import load_settings\n"
        "c = Catalog.open(load_settings().catalog_url)\n"
        "[(a, f)] = c.list_artifacts()\n"
        "print(json.dumps({'hits': a.hits}))\n"
    )
    assert stats == {"hits": 25}
