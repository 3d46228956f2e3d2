"""Frozen Settings, read once at the edge from explicit values, the environment, the nearest
``pyproject.toml``'s ``[tool.featurecache]`` table, then defaults (in that order of precedence).

The environment is injectable (``environ=``) so tests never mutate ``os.environ``; unknown
``FEATURECACHE_*`` names are warned about, since a typo there silently changes nothing.

Where the cache is by default: ``.featurecache/`` in the project root, the nearest folder at or
above the working directory holding ``pyproject.toml`` or ``.git`` (as ruff's ``.ruff_cache``
and pytest's ``.pytest_cache``). Outside any project, one shared user-level cache
(``~/.cache/featurecache`` on Linux, the platform's cache folder elsewhere): a folder-local cache
there would land in whatever folder a notebook happens to start in, and a subfolder would
silently start a new empty one. Keys are content-addressed, so unrelated work sharing that
cache cannot get each other's results. Every resolved value remembers where it came from
(``Settings.sources``), which ``featurecache info`` prints.
"""

from __future__ import annotations

import os
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from featurecache.errors import ConfigError

ENV_PREFIX = "FEATURECACHE_"
PARQUET_COMPRESSIONS = ("lz4", "zstd", "snappy", "none")
# How long one remote operation (an S3 request with its retries, a probe, a PostgreSQL connect)
# may wait on an endpoint that does not answer before it gives up.
DEFAULT_REMOTE_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Settings:
    """Everything that configures a cache. Build with ``load_settings``."""

    catalog_url: str
    store_url: str
    project_root: Path
    # Where host-local state lives (the file stat cache): never shared between machines.
    state_dir: Path
    # Parquet writing.
    compression: str = "lz4"
    compression_level: int | None = None
    row_group_rows: int = 1_000_000
    # Key building.
    track_library_versions: bool = True
    # Team mode: single-flight leases.
    lease_seconds: float = 60.0
    heartbeat_seconds: float = 10.0
    wait_timeout_seconds: float = 3600.0
    # S3 stores that do not honour If-None-Match: refuse unless explicitly allowed.
    allow_unconditional_store: bool = False
    # Publish artifacts from a background thread (the catalog row still follows durability).
    background_publish: bool = True
    # Deadline of each remote operation on the S3 store and of connecting to PostgreSQL.
    remote_timeout_seconds: float = DEFAULT_REMOTE_TIMEOUT_SECONDS
    # A consumer that never writes: hits are served, misses computed and not stored, no leases.
    read_only: bool = False
    # The local tier in front of a remote (S3) store (``store.tier``): "on" (under
    # ``state_dir``), "off", or a folder; and its size bound in bytes (LRU eviction).
    local_tier: str = "on"
    local_tier_max_bytes: int = 20 * 10**9
    # After a miss's body ran, re-fingerprint every frame/array argument and warn if its content
    # changed in place (``fingerprint.mutation``). Off: it costs a second hash of those inputs.
    check_input_mutation: bool = False
    # MLflow lineage: on when a tracking URI is known.
    mlflow_tracking_uri: str | None = None
    mlflow_experiment: str = "featurecache"
    # Seeing and controlling the cache (README "Seeing and controlling the cache").
    # "off", "info" or "debug": a stderr handler on the ``featurecache`` logger (``logs``).
    log: str = "off"
    # Compute every call, read and store nothing (a debugging run).
    disable: bool = False
    # Features whose keys recompute once in this process (replacing their entries); "*": all.
    refresh: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)
    # Where the defaults live (``<project>/.featurecache`` or the user cache folder), the
    # project found (None: outside any project), and the source of each field that was not
    # left at its default: an environment variable, a pyproject entry, or "explicit".
    cache_dir: Path | None = None
    project: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def source(self, attr: str) -> str:
        """Where the value of field ``attr`` came from (``"default"`` when nobody set it)."""
        return self.sources.get(attr, "default")


# name in env / pyproject  ->  (Settings field, parser)
def _parse_bool(name: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(name, f"{raw!r} is not a boolean", "Use true/false, 1/0, yes/no or on/off.")


def _parse_float(name: str, raw: object) -> float:
    try:
        value = float(str(raw))
    except ValueError:
        raise ConfigError(name, f"{raw!r} is not a number", "Give a number of seconds.") from None
    if value <= 0:
        raise ConfigError(name, f"{raw!r} must be positive", "Give a number above zero.")
    return value


def _parse_int(name: str, raw: object) -> int:
    try:
        value = int(str(raw))
    except ValueError:
        raise ConfigError(name, f"{raw!r} is not a whole number", "Give a whole number.") from None
    if value <= 0:
        raise ConfigError(name, f"{raw!r} must be positive", "Give a number above zero.")
    return value


_SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def _parse_size(name: str, raw: object) -> int:
    """A size in bytes: a whole number, or a number with a unit (``20GB``, ``1.5 GiB``,
    ``500MB``; decimal ``KB/MB/GB/TB``, binary ``KiB/MiB/GiB/TiB``)."""
    if isinstance(raw, bool):
        raise ConfigError(name, f"{raw!r} is not a size", 'Give bytes or a size like "20GB".')
    text = str(raw).strip().replace(" ", "").replace("_", "")
    number = text.rstrip("bBkKmMgGtTiI")
    unit = text[len(number) :].upper()
    try:
        value = float(number) * _SIZE_UNITS[unit]
    except (ValueError, KeyError):
        raise ConfigError(
            name,
            f"{raw!r} is not a size",
            'Give bytes or a number with a unit: "20GB", "500MB", "1.5GiB".',
        ) from None
    if value < 1:
        raise ConfigError(name, f"{raw!r} must be positive", "Give a size above zero.")
    return int(value)


_TIER_OFF = {"off", "0", "false", "no", "none"}
_TIER_ON = {"on", "1", "true", "yes", "auto"}


def _parse_local_tier(name: str, raw: object) -> str:
    """``"on"`` (the default folder), ``"off"``, or a folder (kept as given; relative folders
    resolve from the project root)."""
    if isinstance(raw, bool):
        return "on" if raw else "off"
    text = str(raw).strip()
    if not text:
        raise ConfigError(name, "is empty", 'Give "on", "off" or a folder.')
    if text.lower() in _TIER_OFF:
        return "off"
    if text.lower() in _TIER_ON:
        return "on"
    return str(Path(text).expanduser())


def _parse_compression(name: str, raw: object) -> str:
    text = str(raw).strip().lower()
    if text == "uncompressed":
        text = "none"
    if text not in PARQUET_COMPRESSIONS:
        raise ConfigError(
            name,
            f"{raw!r} is not a supported codec",
            f"Use one of {', '.join(PARQUET_COMPRESSIONS)}.",
        )
    return text


def _parse_str(name: str, raw: object) -> str:
    text = str(raw).strip()
    if not text:
        raise ConfigError(name, "is empty", "Give a value or unset it.")
    return text


LOG_LEVELS = ("off", "info", "debug")
_LOG_WORDS = {
    **{word: "off" for word in ("off", "0", "false", "no", "none", "")},
    **{word: "info" for word in ("info", "1", "true", "yes", "on")},
    "debug": "debug",
}


def _parse_log(name: str, raw: object) -> str:
    text = str(raw).strip().lower() if not isinstance(raw, bool) else str(raw).lower()
    if text not in _LOG_WORDS:
        raise ConfigError(
            name, f"{raw!r} is not a log level", f"Use one of {', '.join(LOG_LEVELS)}."
        )
    return _LOG_WORDS[text]


def _parse_names(name: str, raw: object) -> tuple[str, ...]:
    """Feature names: a comma-separated string (the environment) or a list (pyproject)."""
    if isinstance(raw, str):
        items: list[object] = list(raw.split(","))
    elif isinstance(raw, list | tuple | set | frozenset):
        items = list(raw)
    else:
        raise ConfigError(
            name, f"{raw!r} is not a list of feature names", 'Give "name1,name2" or a list.'
        )
    names = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(name, f"{item!r} is not a feature name", "Give names as strings.")
        if item.strip():
            names.append(item.strip())
    return tuple(dict.fromkeys(names))


_KNOWN: dict[str, tuple[str, Any]] = {
    "CATALOG": ("catalog_url", _parse_str),
    "STORE": ("store_url", _parse_str),
    "STATE_DIR": ("state_dir", _parse_str),
    "COMPRESSION": ("compression", _parse_compression),
    "COMPRESSION_LEVEL": ("compression_level", _parse_int),
    "ROW_GROUP_ROWS": ("row_group_rows", _parse_int),
    "TRACK_LIBRARY_VERSIONS": ("track_library_versions", _parse_bool),
    "LEASE_SECONDS": ("lease_seconds", _parse_float),
    "HEARTBEAT_SECONDS": ("heartbeat_seconds", _parse_float),
    "WAIT_TIMEOUT": ("wait_timeout_seconds", _parse_float),
    "ALLOW_UNCONDITIONAL_STORE": ("allow_unconditional_store", _parse_bool),
    "BACKGROUND_PUBLISH": ("background_publish", _parse_bool),
    "REMOTE_TIMEOUT": ("remote_timeout_seconds", _parse_float),
    "READ_ONLY": ("read_only", _parse_bool),
    "LOCAL_TIER": ("local_tier", _parse_local_tier),
    "LOCAL_TIER_MAX": ("local_tier_max_bytes", _parse_size),
    "CHECK_INPUT_MUTATION": ("check_input_mutation", _parse_bool),
    "MLFLOW_EXPERIMENT": ("mlflow_experiment", _parse_str),
    "MLFLOW_TRACKING_URI": ("mlflow_tracking_uri", _parse_str),
    "LOG": ("log", _parse_log),
    "DISABLE": ("disable", _parse_bool),
    "REFRESH": ("refresh", _parse_names),
}


def setting_keys() -> dict[str, str]:
    """Settings field -> its name in ``[tool.featurecache]`` (``FEATURECACHE_`` + upper case
    in the environment), for ``featurecache info``."""
    return {attr: short.lower() for short, (attr, _) in _KNOWN.items()}


# Variables that belong to featurecache's tests or tooling, not to Settings.
_IGNORED_ENV = {"FEATURECACHE_TEST_PG_URL", "FEATURECACHE_REQUIRE_SERVICES"}


CACHE_DIR_NAME = ".featurecache"
USER_CACHE_APP = "featurecache"


def find_project(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` holding ``pyproject.toml`` or ``.git``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() or (folder / ".git").exists():
            return folder
    return None


def find_project_root(start: Path) -> Path:
    """``find_project``, or ``start`` itself outside any project (relative paths resolve there)."""
    return find_project(start) or start.resolve()


def user_cache_dir() -> Path:
    """The shared user-level cache used outside any project (``$XDG_CACHE_HOME/featurecache``,
    else ``~/.cache/featurecache`` on Linux; ``~/Library/Caches/featurecache`` on macOS;
    ``%LOCALAPPDATA%\\featurecache\\Cache`` on Windows)."""
    from platformdirs import user_cache_path

    return user_cache_path(USER_CACHE_APP, appauthor=False)


def default_cache_dir(project: Path | None) -> Path:
    return project / CACHE_DIR_NAME if project is not None else user_cache_dir()


def _read_pyproject(root: Path) -> dict[str, Any]:
    path = root / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"is not valid TOML ({exc})", "Fix the file.") from None
    table = data.get("tool", {}).get("featurecache", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path} [tool.featurecache]", "is not a table", "Make it a table.")
    return table


def load_settings(
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    **overrides: Any,
) -> Settings:
    """Resolve settings: ``overrides`` > environment > ``[tool.featurecache]`` > defaults."""
    env = os.environ if environ is None else environ
    start = (cwd or Path.cwd()).resolve()
    project = find_project(start)
    root = project or start
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    for key, raw in (_read_pyproject(root) if project is not None else {}).items():
        name = key.upper().replace("-", "_")
        if name not in _KNOWN:
            warnings.warn(
                f"unknown key {key!r} in [tool.featurecache] of {root / 'pyproject.toml'}; "
                f"known keys: {', '.join(sorted(k.lower() for k in _KNOWN))}",
                stacklevel=2,
            )
            continue
        attr, parser = _KNOWN[name]
        values[attr] = parser(f"[tool.featurecache] {key}", raw)
        sources[attr] = f"{root / 'pyproject.toml'} [tool.featurecache] {key}"

    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in _IGNORED_ENV:
            continue
        short = name[len(ENV_PREFIX) :]
        if short not in _KNOWN:
            warnings.warn(
                f"unknown environment variable {name}; known: "
                f"{', '.join(ENV_PREFIX + k for k in sorted(_KNOWN))}",
                stacklevel=2,
            )
            continue
        attr, parser = _KNOWN[short]
        values[attr] = parser(name, raw)
        sources[attr] = name

    if env.get("MLFLOW_TRACKING_URI"):
        values["mlflow_tracking_uri"] = env["MLFLOW_TRACKING_URI"]
        sources["mlflow_tracking_uri"] = "MLFLOW_TRACKING_URI"

    explicit = parse_overrides(overrides)
    values.update(explicit)
    sources.update(dict.fromkeys(explicit, "explicit"))

    cache_dir = default_cache_dir(project)
    store_url = str(values.pop("store_url", cache_dir / "artifacts"))
    catalog_url = str(values.pop("catalog_url", f"sqlite:///{cache_dir / 'catalog.db'}"))
    state_dir = Path(values.pop("state_dir", cache_dir / "state"))
    if values.get("heartbeat_seconds", 10.0) >= values.get("lease_seconds", 60.0):
        raise ConfigError(
            "FEATURECACHE_HEARTBEAT_SECONDS",
            "must be shorter than the lease",
            "Set it to at most a third of FEATURECACHE_LEASE_SECONDS.",
        )
    return Settings(
        catalog_url=catalog_url,
        store_url=store_url,
        project_root=root,
        state_dir=state_dir,
        cache_dir=cache_dir,
        project=project,
        sources=sources,
        **values,
    )


def with_overrides(settings: Settings, **changes: Any) -> Settings:
    """A copy of ``settings`` with some fields changed (parsed like every other source)."""
    parsed = parse_overrides(changes)
    sources = {**settings.sources, **dict.fromkeys(parsed, "explicit")}
    return replace(settings, sources=sources, **parsed)


def local_tier_dir(settings: Settings) -> Path | None:
    """Where the local tier lives: ``<state_dir>/tier`` by default, a folder given in
    ``FEATURECACHE_LOCAL_TIER`` (relative to the project root), or None when it is off."""
    if settings.local_tier == "off":
        return None
    if settings.local_tier == "on":
        return settings.state_dir / "tier"
    folder = Path(settings.local_tier)
    return folder if folder.is_absolute() else settings.project_root / folder


def _parse_path(name: str, raw: object) -> Path:
    return Path(_parse_str(name, raw))


def _parse_level(name: str, raw: object) -> int | None:
    return None if raw is None else _parse_int(name, raw)


# Settings fields given in Python (``FeatureCache(compression="zstd")``), by field name.
_BY_FIELD: dict[str, Any] = {
    **{attr: parser for attr, parser in _KNOWN.values()},
    "state_dir": _parse_path,
    "project_root": _parse_path,
    "compression_level": _parse_level,
}


def parse_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Settings given as Python values, through the same parsers as the environment's: a bad
    one is a ``ConfigError`` naming it, raised where the cache is constructed. ``None`` means
    "not given"."""
    parsed: dict[str, Any] = {}
    for attr, value in overrides.items():
        parser = _BY_FIELD.get(attr)
        if parser is None:
            raise ConfigError(
                attr, "is not a featurecache setting", f"Use one of {', '.join(sorted(_BY_FIELD))}."
            )
        if value is not None:
            parsed[attr] = parser(attr, value)
    return parsed
