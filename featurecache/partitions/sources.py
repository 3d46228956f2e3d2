"""Where partitions come from: a list of keyword-argument dicts, a hive-style folder
(``day=2026-01-01/``), a glob of files, or an ``s3://`` prefix of hive-style folders.

A partition is the keyword arguments of one ordinary cached call, plus a label that names it
in the partitioned result and in the catalog. A folder or file partition passes its location
as a path argument, so the call's key follows the partition's content (a file rewritten in
one day's folder recomputes that day only), and its hive value as a plain argument.
"""

from __future__ import annotations

import glob as globbing
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featurecache.errors import ConfigError


@dataclass(frozen=True)
class Partition:
    """One call of a partitioned feature: ``kwargs`` for the function, ``label`` its name."""

    label: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)


def label_of(kwargs: Mapping[str, Any]) -> str:
    """A readable, stable label for a dict of arguments: ``day=2026-01-01`` for one plain
    value, else ``a=1,b=x``; other values by their ``str``."""
    return ",".join(f"{name}={_text(kwargs[name])}" for name in sorted(kwargs))


def _text(value: object) -> str:
    if isinstance(value, str | int | float | bool) or value is None:
        return str(value)
    if isinstance(value, Path):
        return value.name
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def as_partitions(partitions: object) -> list[Partition]:
    """``partitions`` given to ``Feature.map`` as a list of ``Partition``: ``Partition``
    objects (from ``hive``/``files``), or dicts of keyword arguments. Labels must be unique."""
    if isinstance(partitions, str | bytes | Mapping) or not isinstance(partitions, Iterable):
        raise ConfigError(
            "partitions",
            f"{type(partitions).__name__} is not a list of partitions",
            "Give a list of keyword-argument dicts ([{'day': '2026-01-01'}, …]) or "
            "featurecache.partitions.hive(...) / files(...)",
        )
    out: list[Partition] = []
    for i, item in enumerate(partitions):
        if isinstance(item, Partition):
            out.append(item)
        elif isinstance(item, Mapping) and all(isinstance(k, str) for k in item):
            out.append(Partition(label_of(item), dict(item)))
        else:
            raise ConfigError(
                "partitions",
                f"item {i} is a {type(item).__name__}, not a dict of keyword arguments",
                "Give each partition as a dict such as {'day': '2026-01-01'}",
            )
    if not out:
        raise ConfigError("partitions", "no partitions were given", "Give at least one.")
    seen: dict[str, int] = {}
    for i, part in enumerate(out):
        if part.label in seen:
            raise ConfigError(
                "partitions",
                f"items {seen[part.label]} and {i} are the same partition ({part.label})",
                "Give each partition once",
            )
        seen[part.label] = i
    return out


def hive(
    location: str | Path, key: str = "day", *, path_arg: str = "path", value_arg: str | None = None
) -> list[Partition]:
    """The ``key=value`` folders directly under ``location`` (a local folder or an
    ``s3://bucket/prefix``), sorted by value. Each partition calls the feature with
    ``value_arg`` (default: ``key``) = the value as text and ``path_arg`` = the folder (a
    ``Path``; for S3 the ``s3://…/key=value/`` prefix as a str, fingerprinted by every object
    under it)."""
    _check_name("key", key)
    _check_name("path_arg", path_arg)
    value_name = key if value_arg is None else value_arg
    _check_name("value_arg", value_name)
    text = str(location)
    if text.lower().startswith("s3://"):
        found = _s3_hive(text, key)
    else:
        found = _local_hive(Path(location).expanduser(), key)
    if not found:
        raise ConfigError(
            "location",
            f"{text} holds no {key}=… folder",
            f"Give the folder that holds the {key}=<value>/ folders, or the right key=",
        )
    return [
        Partition(f"{key}={value}", {value_name: value, path_arg: where}) for value, where in found
    ]


def _check_name(setting: str, name: object) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(setting, f"{name!r} is not an argument name", "Give a str like 'day'.")


def _local_hive(root: Path, key: str) -> list[tuple[str, object]]:
    if not root.is_dir():
        raise ConfigError(
            "location", f"{root} is not a folder", "Give an existing folder or s3://bucket/prefix"
        )
    prefix = f"{key}="
    return sorted(
        (child.name[len(prefix) :], child)
        for child in root.iterdir()
        if child.is_dir() and child.name.startswith(prefix) and len(child.name) > len(prefix)
    )


def _s3_hive(url: str, key: str) -> list[tuple[str, object]]:
    from featurecache.fingerprint.s3object import _default_client, _list_objects, parse_s3_url

    bucket, prefix = parse_s3_url(url, require_key=False)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    values: set[str] = set()
    for obj in _list_objects("location", bucket, prefix, _default_client()):
        head = str(obj["Key"])[len(prefix) :].split("/", 1)
        if len(head) == 2 and head[0].startswith(f"{key}=") and len(head[0]) > len(key) + 1:
            values.add(head[0][len(key) + 1 :])
    return [(value, f"s3://{bucket}/{prefix}{key}={value}/") for value in sorted(values)]


def files(pattern: str | Path, *, path_arg: str = "path") -> list[Partition]:
    """One partition per file matching the glob ``pattern`` (``**`` crosses folders), sorted:
    ``path_arg`` = the file as a ``Path``; the label is its path relative to the pattern's
    fixed part (``2026/01/01.parquet``)."""
    _check_name("path_arg", path_arg)
    text = str(Path(str(pattern)).expanduser())
    matches = sorted(Path(m) for m in globbing.glob(text, recursive=True) if Path(m).is_file())
    if not matches:
        raise ConfigError("pattern", f"{pattern} matches no file", "Check the path and pattern")
    base = _fixed_part(text)
    return [Partition(_relative(m, base), {path_arg: m}) for m in matches]


def _fixed_part(pattern: str) -> Path:
    parts = Path(pattern).parts
    fixed = [p for p in _until_magic(parts)]
    return Path(*fixed) if fixed else Path(".")


def _until_magic(parts: tuple[str, ...]) -> Iterable[str]:
    for part in parts:
        if globbing.has_magic(part):
            return
        yield part


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()
