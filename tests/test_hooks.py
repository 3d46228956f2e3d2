"""``hooks``: a cache that configures no integration imports none of their modules when it
opens; the built-in DVC resolver is made on its first question; MLflow lineage comes on with a
tracking URI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from featurecache import hooks
from featurecache.settings import load_settings

REPO = Path(__file__).resolve().parents[1]

OPEN = """
import sys
import featurecache
featurecache.FeatureCache().engine
print(sorted(m for m in sys.modules if m.startswith("featurecache.integrations")))
"""


def test_opening_a_cache_imports_no_integration(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEATURECACHE_", "MLFLOW_"))}
    env |= {
        "PYTHONPATH": str(REPO),
        "FEATURECACHE_CATALOG": f"sqlite:///{tmp_path / 'catalog.db'}",
        "FEATURECACHE_STORE": str(tmp_path / "artifacts"),
        "FEATURECACHE_STATE_DIR": str(tmp_path / "state"),
    }
    done = subprocess.run(
        [sys.executable, "-c", OPEN], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_dvc_resolver_is_made_on_its_first_question(tmp_path: Path) -> None:
    (resolver,) = hooks.resolvers_for(None)
    data = tmp_path / "small.csv"
    data.write_text("a,b\n1,2\n")
    # Below the DVC resolver's size threshold: it answers None (we hash the file ourselves).
    assert resolver(data, data.stat()) is None
    assert resolver.stats.files_hashed == 0  # type: ignore[attr-defined]
    assert type(resolver.resolver()).__name__ == "DvcStateResolver"  # type: ignore[attr-defined]


def test_mlflow_lineage_is_on_only_with_a_tracking_uri(tmp_path: Path) -> None:
    off = load_settings(environ={}, cwd=tmp_path)
    assert hooks.listeners_for(off, lambda *args: None) == ()
    assert not hooks._mlflow_configured(off)
    on = load_settings(environ={"MLFLOW_TRACKING_URI": f"file://{tmp_path}/mlruns"}, cwd=tmp_path)
    assert hooks._mlflow_configured(on)


def test_a_listener_gets_copies_of_the_records_json_values() -> None:
    """The catalog may hand the same records to later lookups (``catalog.direct``): what a
    listener changes in its event must not reach them."""
    from featurecache.catalog.records import Hit
    from tests.catalog.factories import publication

    pub = publication(1)
    hit = Hit(pub.entry, pub.artifact)
    event = hooks.resolved_event(hit, "hit", code_source="")
    assert event.inputs == pub.entry.components["inputs"]
    assert event.schema == pub.artifact.schema
    event.inputs["gap"]["value"] = 45
    event.schema.clear()
    assert pub.entry.components["inputs"] == {"gap": {"value": 30}}
    assert pub.artifact.schema
