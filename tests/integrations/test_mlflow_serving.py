"""``check_serving`` where a record cannot be read: MLflow down or not configured, no catalog.
(The workflow against a real server is ``tests/test_example_serving.py``.)"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import featurecache
from featurecache import FeatureCache
from featurecache.errors import NoCacheError

pytest.importorskip("mlflow")


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: nothing listens there


@pytest.fixture
def no_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FeatureCache:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return FeatureCache(f"sqlite:///{tmp_path / 'absent' / 'catalog.db'}", tmp_path / "store")


def test_a_tracking_server_that_does_not_answer_is_a_typed_error(
    no_catalog: FeatureCache, tmp_path: Path
) -> None:
    uri = f"http://127.0.0.1:{_dead_port()}"
    with pytest.raises(featurecache.MlflowUnavailableError, match=r"could not be read"):
        featurecache.check_serving("abc", cache=no_catalog, source="mlflow", tracking_uri=uri)
    assert not (tmp_path / "absent").exists()  # looked for, never created


def test_without_a_catalog_or_mlflow_the_run_is_unknown(no_catalog: FeatureCache) -> None:
    with pytest.raises(featurecache.UnknownRunError, match="MLflow is not configured"):
        featurecache.check_serving("abc", cache=no_catalog)
    with pytest.raises(featurecache.ConfigError, match="MLFLOW_TRACKING_URI"):
        featurecache.check_serving("abc", cache=no_catalog, source="mlflow")
    with pytest.raises(NoCacheError):
        featurecache.check_serving("abc", cache=no_catalog, source="catalog")
