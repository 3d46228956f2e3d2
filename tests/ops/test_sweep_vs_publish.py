"""GC's sweep racing a publish of the same artifact: a row is never live while its file is
being deleted (issue 16, item 6). The interleaving is forced: the sweep's delete waits until
the publish has reached the catalog."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from featurecache import FeatureCache
from featurecache.ops.gc_run import sweep


def _numbers(n: int) -> pl.DataFrame:
    return pl.DataFrame({"x": list(range(n))})


@pytest.fixture(params=["local", pytest.param("s3", marks=[pytest.mark.s3, pytest.mark.slow])])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "a")
    url: str = request.getfixturevalue("s3_store_url")
    return url


def test_a_publish_during_a_sweep_never_leaves_a_live_row_without_its_file(
    tmp_path: Path, store_url: str
) -> None:
    fc = FeatureCache(
        catalog=f"sqlite:///{tmp_path / 'c.db'}", store=store_url, background_publish=False
    )
    feature = fc.cached_feature(_numbers)
    try:
        engine = fc.engine
        feature(3)
        key_id = engine.key_for(feature, (3,), {})[0].key_id
        hit = engine.catalog.lookup(key_id)
        assert hit is not None
        artifact_id = hit.artifact.artifact_id
        engine.catalog.forget_artifact(artifact_id)  # tombstoned: what the sweep deletes

        reached_catalog = threading.Event()
        real_publish = engine.catalog.publish
        real_delete = engine.store.delete

        def publish_then_signal(*args: Any, **kwargs: Any) -> Any:
            try:
                return real_publish(*args, **kwargs)
            finally:
                reached_catalog.set()

        def delete_after_the_publish(artifact: str) -> bool:
            reached_catalog.wait(60)
            return real_delete(artifact)

        errors: list[BaseException] = []

        def run_sweep() -> None:
            try:
                sweep(engine.catalog, engine.store, [artifact_id])
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(engine.catalog, "publish", publish_then_signal)
            patch.setattr(engine.store, "delete", delete_after_the_publish)
            sweeper = threading.Thread(target=run_sweep)
            sweeper.start()
            value = feature(3)  # the same artifact again, while the sweep holds it
            sweeper.join(120)
        assert not sweeper.is_alive() and errors == []
        assert value.equals(_numbers(3))
        live = engine.catalog.lookup(key_id)
        if live is not None:
            assert engine.store.exists(live.artifact.artifact_id), "a live row without its file"
        assert feature(3).equals(_numbers(3))
    finally:
        fc.close()
