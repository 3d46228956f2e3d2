"""A one-line summary of the arguments of the call that produced an artifact, for
``featurecache ls``: ``gap_minutes=15 label="hello" path=clicks.parquet``.

Read from a key's components (``inputs``): plain values by their JSON text, files, folders,
globs and S3 objects by their name. Frames and arrays are left out (their content is not an
argument anyone types), and so is every value equal to the function's default, so that what
tells two artifacts of a feature apart stands out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from featurecache.catalog.facade import Catalog

VALUE_WIDTH = 32
_PATH_KINDS = {"file", "directory", "glob", "s3"}
_DEFAULT_MARK = ".<default>."
ALL_DEFAULTS = "(defaults)"


def argument_summary(components: Mapping[str, Any] | None) -> str:
    """``name=value`` for each plain or path argument that is not at its default; ``""`` when
    the key has no such argument, ``(defaults)`` when all of them are at their defaults."""
    inputs = (components or {}).get("inputs") or {}
    defaults = _defaults(components or {})
    parts: list[str] = []
    skipped = 0
    for name, component in inputs.items():
        if ":" in name or not isinstance(component, Mapping):
            continue  # a file the body read, not an argument
        shown = _shown(component)
        if shown is None:
            continue
        at_default = name in defaults and defaults[name] == component.get("value")
        if component.get("kind") == "value" and at_default:
            skipped += 1
            continue
        parts.append(f"{name}={shown}")
    if not parts and skipped:
        return ALL_DEFAULTS
    return " ".join(parts)


def _shown(component: Mapping[str, Any]) -> str | None:
    kind = component.get("kind")
    if kind == "value":
        value = component.get("value")
        text = json.dumps(value, ensure_ascii=False, default=str) if value is not None else "None"
        return _cut(text)
    if kind in _PATH_KINDS:
        value = component.get("value")
        path = value.get("path") if isinstance(value, Mapping) else None
        if isinstance(path, str) and path:
            return _cut(path.rstrip("/").rsplit("/", 1)[-1] or path)
        summary = component.get("summary")
        return _cut(str(summary)) if summary else kind
    return None


def _cut(text: str) -> str:
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def _defaults(components: Mapping[str, Any]) -> dict[str, Any]:
    """Argument name -> its default value, from the code identity's default dependencies."""
    dependencies = (components.get("code") or {}).get("dependencies") or {}
    found: dict[str, Any] = {}
    for qualified, record in dependencies.items():
        if _DEFAULT_MARK in qualified and isinstance(record, Mapping) and "value" in record:
            found[qualified.rsplit(_DEFAULT_MARK, 1)[1]] = record["value"]
    return found


def argument_values(components: Mapping[str, Any] | None) -> dict[str, Any]:
    """For ``ls --json``: every plain or path argument of the key, defaults included, by its
    full value (a plain value's JSON, a path's text, an S3 object's URL); frames and arrays
    are left out, as in the summary."""
    inputs = (components or {}).get("inputs") or {}
    values: dict[str, Any] = {}
    for name, component in inputs.items():
        if ":" in name or not isinstance(component, Mapping):
            continue  # a file the body read, not an argument
        kind = component.get("kind")
        if kind == "value":
            values[name] = component.get("value")
        elif kind in _PATH_KINDS:
            value = component.get("value")
            path = value.get("path") if isinstance(value, Mapping) else None
            values[name] = path if isinstance(path, str) and path else component.get("summary")
    return values


def newest_components(
    catalog: Catalog, artifact_ids: Iterable[str]
) -> dict[str, Mapping[str, Any] | None]:
    """The key components of each artifact's newest entry (batched reads)."""
    wanted = list(artifact_ids)
    entries = catalog.newest_entries_for_artifacts(wanted)
    return {
        artifact_id: (entries[artifact_id].components if artifact_id in entries else None)
        for artifact_id in wanted
    }


def summaries(catalog: Catalog, artifact_ids: Iterable[str]) -> dict[str, str]:
    """The argument summary of the newest key of each artifact."""
    return {
        artifact_id: argument_summary(components)
        for artifact_id, components in newest_components(catalog, artifact_ids).items()
    }
