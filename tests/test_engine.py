"""Engine bookkeeping that must stay bounded in long-running processes."""

from __future__ import annotations

from pathlib import Path

from featurecache import FeatureCache
from featurecache import engine as engine_module


def test_seen_artifacts_keep_the_most_recent_and_stay_bounded(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(engine_module, "_SEEN_LIMIT", 3)
    fc = FeatureCache(catalog=f"sqlite:///{tmp_path / 'c.db'}", store=tmp_path / "a")
    try:
        engine = fc.engine
        for artifact_id in ["a", "b", "c", "a", "d"]:
            engine._saw(artifact_id)
        assert list(engine.seen_artifacts) == ["c", "a", "d"]
    finally:
        fc.close()
