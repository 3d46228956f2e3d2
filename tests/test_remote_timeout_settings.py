"""FEATURECACHE_REMOTE_TIMEOUT: parsed like every other setting, and turned into the per-attempt
timeouts of the S3 client and the connect timeout of a PostgreSQL catalog. (The behaviour
against a silent endpoint: tests/store/test_remote_timeout.py, tests/catalog/
test_connect_timeout.py.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from featurecache.catalog.database import create_catalog_engine
from featurecache.errors import ConfigError
from featurecache.settings import DEFAULT_REMOTE_TIMEOUT_SECONDS, load_settings, with_overrides


def test_the_remote_timeout_defaults_and_comes_from_env_pyproject_or_python(
    tmp_path: Path,
) -> None:
    assert load_settings(environ={}, cwd=tmp_path).remote_timeout_seconds == 30.0
    assert DEFAULT_REMOTE_TIMEOUT_SECONDS == 30.0
    env = {"FEATURECACHE_REMOTE_TIMEOUT": "2.5"}
    assert load_settings(environ=env, cwd=tmp_path).remote_timeout_seconds == 2.5
    (tmp_path / "pyproject.toml").write_text("[tool.featurecache]\nremote_timeout = 12\n")
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.remote_timeout_seconds == 12.0
    assert with_overrides(settings, remote_timeout_seconds="7").remote_timeout_seconds == 7.0


@pytest.mark.parametrize("value", ["soon", "0", "-3"])
def test_a_bad_remote_timeout_names_the_variable(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="FEATURECACHE_REMOTE_TIMEOUT"):
        load_settings(environ={"FEATURECACHE_REMOTE_TIMEOUT": value}, cwd=tmp_path)


def test_each_s3_attempt_gets_a_third_of_the_deadline_capped_at_botocore_defaults() -> None:
    pytest.importorskip("boto3")
    from featurecache.store.s3.client import attempt_timeouts

    assert attempt_timeouts(30.0) == (10.0, 10.0)
    assert attempt_timeouts(3.0) == (1.0, 1.0)
    assert attempt_timeouts(3600.0) == (10.0, 120.0)


def test_the_s3_client_uses_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("boto3")
    from featurecache.store.s3.store import S3Store

    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    store = S3Store("bucket", "p", endpoint_url="http://127.0.0.1:9", remote_timeout=6.0)
    config = store._client().meta.config
    assert (config.connect_timeout, config.read_timeout) == (2.0, 2.0)
    assert config.retries["total_max_attempts"] == 5


def _connect_params(engine: Any) -> dict[str, Any]:
    """What the engine would hand psycopg.connect (without connecting)."""
    seen: dict[str, Any] = {}

    @event.listens_for(engine, "do_connect")
    def capture(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        seen.update(cparams)
        raise RuntimeError("captured")

    with pytest.raises(RuntimeError, match="captured"):
        engine.connect()
    return seen


@pytest.mark.skipif(importlib.util.find_spec("psycopg") is None, reason="needs psycopg")
def test_a_postgresql_catalog_connects_with_the_remote_timeout() -> None:
    url = "postgresql+psycopg://user@127.0.0.1:1/db"
    assert _connect_params(create_catalog_engine(url))["connect_timeout"] == 30
    assert (
        _connect_params(create_catalog_engine(url, connect_timeout_seconds=4.2))["connect_timeout"]
        == 5
    )
    assert (
        _connect_params(create_catalog_engine(url, connect_timeout_seconds=0.5))["connect_timeout"]
        == 2
    )  # libpq's minimum
    # A connect_timeout in the URL wins.
    explicit = _connect_params(create_catalog_engine(url + "?connect_timeout=9"))
    assert str(explicit["connect_timeout"]) == "9"
