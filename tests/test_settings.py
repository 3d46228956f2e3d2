"""Settings: explicit > environment > [tool.featurecache] > defaults, with typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurecache.errors import ConfigError
from featurecache.settings import find_project_root, load_settings, local_tier_dir


def _project(tmp_path: Path, table: str = "") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "p"\n\n[tool.featurecache]\n{table}'
    )
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    return tmp_path


def test_defaults_live_under_the_project_root(tmp_path: Path) -> None:
    root = _project(tmp_path)
    settings = load_settings(environ={}, cwd=root / "sub" / "deeper")
    assert settings.project_root == root.resolve()
    assert settings.catalog_url == f"sqlite:///{root.resolve() / '.featurecache' / 'catalog.db'}"
    assert settings.store_url == str(root.resolve() / ".featurecache" / "artifacts")
    assert settings.compression == "lz4"
    assert settings.mlflow_tracking_uri is None


def test_precedence_explicit_over_env_over_pyproject(tmp_path: Path) -> None:
    root = _project(
        tmp_path, 'compression = "zstd"\nlease_seconds = 30\nstore = "/from/pyproject"\n'
    )
    from_file = load_settings(environ={}, cwd=root)
    assert (from_file.compression, from_file.lease_seconds, from_file.store_url) == (
        "zstd",
        30.0,
        "/from/pyproject",
    )
    env = {"FEATURECACHE_COMPRESSION": "snappy", "FEATURECACHE_STORE": "s3://bucket/prefix"}
    from_env = load_settings(environ=env, cwd=root)
    assert (from_env.compression, from_env.store_url, from_env.lease_seconds) == (
        "snappy",
        "s3://bucket/prefix",
        30.0,
    )
    explicit = load_settings(environ=env, cwd=root, compression="none")
    assert explicit.compression == "none"


def test_mlflow_tracking_uri_from_env(tmp_path: Path) -> None:
    root = _project(tmp_path, 'mlflow_tracking_uri = "http://from-file:5000"\n')
    assert load_settings(environ={}, cwd=root).mlflow_tracking_uri == "http://from-file:5000"
    env = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}
    assert load_settings(environ=env, cwd=root).mlflow_tracking_uri == "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("FEATURECACHE_COMPRESSION", "brotli", "not a supported codec"),
        ("FEATURECACHE_LEASE_SECONDS", "soon", "not a number"),
        ("FEATURECACHE_LEASE_SECONDS", "-5", "must be positive"),
        ("FEATURECACHE_ROW_GROUP_ROWS", "1.5", "not a whole number"),
        ("FEATURECACHE_BACKGROUND_PUBLISH", "maybe", "not a boolean"),
        ("FEATURECACHE_CATALOG", "  ", "is empty"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={name: value}, cwd=_project(tmp_path))
    assert name in str(info.value) and fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_heartbeat_must_be_shorter_than_the_lease(tmp_path: Path) -> None:
    env = {"FEATURECACHE_LEASE_SECONDS": "5", "FEATURECACHE_HEARTBEAT_SECONDS": "5"}
    with pytest.raises(ConfigError, match="HEARTBEAT"):
        load_settings(environ=env, cwd=_project(tmp_path))


def test_unknown_names_are_warned_about(tmp_path: Path) -> None:
    root = _project(tmp_path, 'compresion = "zstd"\n')
    with pytest.warns(UserWarning, match="compresion"):
        load_settings(environ={}, cwd=root)
    with pytest.warns(UserWarning, match="FEATURECACHE_STOER"):
        load_settings(environ={"FEATURECACHE_STOER": "/x"}, cwd=_project(tmp_path / "two"))


def test_unknown_explicit_setting_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a featurecache setting"):
        load_settings(environ={}, cwd=_project(tmp_path), compresion="zstd")


def test_invalid_pyproject_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.featurecache\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(environ={}, cwd=tmp_path)


def test_project_root_falls_back_to_git_or_cwd(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "a").mkdir()
    assert find_project_root(tmp_path / "repo" / "a") == (tmp_path / "repo").resolve()


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"compression": "brotli"}, "compression"),
        ({"wait_timeout_seconds": "soon"}, "wait_timeout_seconds"),
        ({"lease_seconds": -1}, "lease_seconds"),
        ({"row_group_rows": 2.5}, "row_group_rows"),
        ({"background_publish": "maybe"}, "background_publish"),
        ({"no_such_setting": 1}, "no_such_setting"),
    ],
)
def test_python_overrides_are_parsed_when_the_cache_is_constructed(
    tmp_path: Path, override: dict[str, object], fragment: str
) -> None:
    # The same parser as the environment's: a bad value fails here, not in a background
    # publish ("will be recomputed next time", forever) or deep inside single-flight.
    from featurecache import FeatureCache

    with pytest.raises(ConfigError, match=fragment):
        FeatureCache(catalog=f"sqlite:///{tmp_path / 'c.db'}", store=tmp_path / "a", **override)


def test_python_overrides_take_the_same_spellings_as_the_environment(tmp_path: Path) -> None:
    from featurecache import FeatureCache

    cache = FeatureCache(
        catalog=f"sqlite:///{tmp_path / 'c.db'}",
        store=tmp_path / "a",
        compression="ZSTD",
        wait_timeout_seconds="30",
        background_publish="off",
    )
    try:
        settings = cache.engine.settings
        assert (settings.compression, settings.wait_timeout_seconds) == ("zstd", 30.0)
        assert settings.background_publish is False
    finally:
        cache.close()


@pytest.mark.parametrize(
    ("raw", "level"),
    [("info", "info"), ("DEBUG", "debug"), ("off", "off"), ("1", "info"), ("0", "off")],
)
def test_log_levels(tmp_path: Path, raw: str, level: str) -> None:
    settings = load_settings(environ={"FEATURECACHE_LOG": raw}, cwd=_project(tmp_path))
    assert settings.log == level
    assert load_settings(environ={}, cwd=tmp_path).log == "off"


def test_control_settings_from_the_environment_and_pyproject(tmp_path: Path) -> None:
    root = _project(tmp_path, 'refresh = ["sessionize", "user_features"]\ndisable = true\n')
    from_pyproject = load_settings(environ={}, cwd=root)
    assert from_pyproject.refresh == ("sessionize", "user_features")
    assert from_pyproject.disable is True
    env = {"FEATURECACHE_REFRESH": " a, b ,,a ", "FEATURECACHE_DISABLE": "0"}
    from_env = load_settings(environ=env, cwd=root)
    assert from_env.refresh == ("a", "b") and from_env.disable is False
    assert load_settings(environ={}, cwd=root, refresh="x").refresh == ("x",)


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("FEATURECACHE_LOG", "verbose", "not a log level"),
        ("FEATURECACHE_DISABLE", "please", "not a boolean"),
    ],
)
def test_bad_control_values_name_the_variable(
    tmp_path: Path, name: str, value: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={name: value}, cwd=_project(tmp_path))
    assert name in str(info.value) and fragment in str(info.value)
    assert "off, info, debug" in str(info.value) or name != "FEATURECACHE_LOG"


def test_refresh_in_pyproject_must_hold_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="refresh"):
        load_settings(environ={}, cwd=_project(tmp_path, "refresh = [1, 2]\n"))


def test_outside_any_project_the_default_is_the_shared_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No pyproject.toml or .git at or above: a folder-local default would start a new empty
    # cache in every folder a notebook happens to start in.
    user = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(user))
    (tmp_path / "notebooks" / "deeper").mkdir(parents=True)
    here = load_settings(environ={}, cwd=tmp_path / "notebooks")
    below = load_settings(environ={}, cwd=tmp_path / "notebooks" / "deeper")
    assert here.project is None and here.cache_dir == user / "featurecache"
    assert here.catalog_url == f"sqlite:///{user / 'featurecache' / 'catalog.db'}"
    assert here.store_url == str(user / "featurecache" / "artifacts")
    assert here.state_dir == user / "featurecache" / "state"
    assert (below.catalog_url, below.store_url) == (here.catalog_url, here.store_url)
    # Relative paths still resolve where the command runs.
    assert here.project_root == (tmp_path / "notebooks").resolve()


def test_inside_a_project_the_default_is_its_featurecache_folder(tmp_path: Path) -> None:
    root = _project(tmp_path)
    settings = load_settings(environ={}, cwd=root / "sub")
    assert settings.project == root.resolve()
    assert settings.cache_dir == root.resolve() / ".featurecache"
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    assert load_settings(environ={}, cwd=tmp_path / "repo").project == (tmp_path / "repo").resolve()


def test_every_value_remembers_where_it_came_from(tmp_path: Path) -> None:
    root = _project(tmp_path, 'compression = "zstd"\nlease_seconds = 30\n')
    env = {"FEATURECACHE_STORE": "/from/env", "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}
    settings = load_settings(environ=env, cwd=root, wait_timeout_seconds=5)
    pyproject = f"{root.resolve() / 'pyproject.toml'} [tool.featurecache]"
    assert settings.source("compression") == f"{pyproject} compression"
    assert settings.source("lease_seconds") == f"{pyproject} lease_seconds"
    assert settings.source("store_url") == "FEATURECACHE_STORE"
    assert settings.source("mlflow_tracking_uri") == "MLFLOW_TRACKING_URI"
    assert settings.source("wait_timeout_seconds") == "explicit"
    assert settings.source("catalog_url") == "default"
    # An environment variable wins over the pyproject entry, and says so.
    louder = load_settings(environ={"FEATURECACHE_COMPRESSION": "snappy"}, cwd=root)
    assert louder.source("compression") == "FEATURECACHE_COMPRESSION"
    from featurecache.settings import with_overrides

    assert with_overrides(settings, compression="none").source("compression") == "explicit"


# -- the local tier (issue 14) -------------------------------------------------------------


def test_the_local_tier_is_on_under_the_state_folder_by_default(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    settings = load_settings(environ={}, cwd=tmp_path)
    assert local_tier_dir(settings) == tmp_path / ".featurecache" / "state" / "tier"
    assert settings.local_tier_max_bytes == 20 * 10**9


@pytest.mark.parametrize(
    ("raw", "folder"),
    [("off", None), ("FALSE", None), ("on", "state/tier"), ("tiers/here", "tiers/here")],
)
def test_the_local_tier_setting_turns_it_off_or_moves_it(
    tmp_path: Path, raw: str, folder: str | None
) -> None:
    environ = {"FEATURECACHE_LOCAL_TIER": raw, "FEATURECACHE_STATE_DIR": str(tmp_path / "state")}
    settings = load_settings(environ=environ, cwd=tmp_path)
    assert local_tier_dir(settings) == (None if folder is None else tmp_path / folder)


@pytest.mark.parametrize(
    ("raw", "size"),
    [("20GB", 20 * 10**9), ("500 MB", 500 * 10**6), ("1.5GiB", 3 * 2**29), ("4096", 4096)],
)
def test_the_local_tier_bound_takes_sizes(tmp_path: Path, raw: str, size: int) -> None:
    settings = load_settings(environ={"FEATURECACHE_LOCAL_TIER_MAX": raw}, cwd=tmp_path)
    assert settings.local_tier_max_bytes == size
    assert (
        load_settings(environ={}, cwd=tmp_path, local_tier_max_bytes=raw).local_tier_max_bytes
        == size
    )


@pytest.mark.parametrize("raw", ["20XB", "GB", "-1GB", "0", ""])
def test_a_bad_local_tier_bound_names_the_variable(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ConfigError, match="FEATURECACHE_LOCAL_TIER_MAX"):
        load_settings(environ={"FEATURECACHE_LOCAL_TIER_MAX": raw}, cwd=tmp_path)
