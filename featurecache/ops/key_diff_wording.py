"""Wording for ``featurecache why``: names of key components and short renderings of values,
fingerprints and schema differences (pure helpers of ``explain``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_KIND_WORDS = {
    "function": "helper",
    "class": "class",
    "constant": "constant",
    "partial": "partial",
    "module": "module",
}
_MAX_VALUE_CHARS = 60
# A `why` line names at most this many changed files of one argument, then counts the rest.
_MAX_FILES_NAMED = 10


def fmt_value(value: object) -> str:
    """``30``, ``'2'``, ``None``, ``[1, 2]``: short and unambiguous."""
    if value is None or isinstance(value, bool | int | float | str):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, sort_keys=True, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"


def short_fingerprint(fingerprint: object) -> str:
    """``xxh3_128:a1b2c3d4…`` → ``a1b2c3d4``."""
    text = str(fingerprint or "")
    return text.rpartition(":")[2][:8]


def dependency_name(key: str) -> str:
    """``pipeline.util:clean_ts`` → ``clean_ts``; ``depends_on[0]`` stays as it is."""
    module, sep, qualname = key.partition(":")
    if not sep:
        return key
    if qualname == "<module>":
        return module
    return qualname


def dependency_label(
    key: str, record: Mapping[str, Any], *, with_kind: bool = True, with_file: bool = True
) -> str:
    """``helper `clean_ts` in `pipeline/util.py```, ``closure value `gap` of `make.<locals>.f```."""
    name = dependency_name(key)
    for marker, word in ((".<closure>.", "closure value"), (".<default>.", "default")):
        if marker in name:
            owner, _, var = name.rpartition(marker)
            return f"{word} `{var}` of `{owner}`"
    if key.startswith("depends_on["):
        return f"`{key}`" if not with_kind else f"depends_on value `{key}`"
    word = _KIND_WORDS.get(str(record.get("kind")), "dependency")
    label = f"{word} `{name}`" if with_kind else f"`{name}`"
    file = record.get("file")
    if with_file and file:
        label += f" in `{file}`"
    return label


def input_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The parts of ``input `x`: …``: fingerprints, kind, rows, schema, source."""
    parts = [
        "content changed (fingerprint "
        f"{short_fingerprint(before.get('fingerprint'))} → "
        f"{short_fingerprint(after.get('fingerprint'))})"
    ]
    if before.get("kind") != after.get("kind"):
        parts.append(f"{before.get('kind')} → {after.get('kind')}")
    elif before.get("kind") == "object":  # a config object: name the fields that changed
        from featurecache.fingerprint.object_inputs import field_changes

        parts.extend(field_changes(before.get("value"), after.get("value")))
    elif before.get("kind") == "model":  # a model object: what changed comes first
        from featurecache.fingerprint.models import model_changes

        parts[:0] = model_changes(before.get("value"), after.get("value"))
    elif before.get("kind") == "mlflow-model":  # "models:/x@champion now version 4 (was 3)"
        from featurecache.fingerprint.modeluri import model_uri_changes

        parts[:0] = model_uri_changes(before.get("value"), after.get("value"))
    rows_a, rows_b = before.get("rows"), after.get("rows")
    if isinstance(rows_a, int) and isinstance(rows_b, int) and rows_a != rows_b:
        parts.append(f"{rows_a:,} → {rows_b:,} rows")
    parts.extend(schema_changes(before.get("schema"), after.get("schema")))
    if before.get("source_uri") != after.get("source_uri") and after.get("source_uri"):
        parts.append(f"source {before.get('source_uri')} → {after.get('source_uri')}")
    up_a, up_b = before.get("upstream_artifact_id"), after.get("upstream_artifact_id")
    if up_a and up_b and up_a != up_b:
        parts.append(f"upstream artifact {str(up_a)[:8]} → {str(up_b)[:8]}")
    return parts


def schema_changes(before: object, after: object) -> list[str]:
    """Columns added, removed, retyped, or made (non-)nullable; a changed column order."""
    if not isinstance(before, list) or not isinstance(after, list):
        return []
    cols_a = {str(c.get("name")): c for c in before if isinstance(c, Mapping)}
    cols_b = {str(c.get("name")): c for c in after if isinstance(c, Mapping)}
    parts: list[str] = []
    for name in cols_b:
        if name not in cols_a:
            parts.append(f"column `{name}` added ({cols_b[name].get('type')})")
    for name in cols_a:
        if name not in cols_b:
            parts.append(f"column `{name}` removed")
    for name in cols_a:
        if name not in cols_b:
            continue
        a, b = cols_a[name], cols_b[name]
        if a.get("type") != b.get("type"):
            parts.append(f"column `{name}`: {a.get('type')} → {b.get('type')}")
        if a.get("nullable") != b.get("nullable") and None not in (
            a.get("nullable"),
            b.get("nullable"),
        ):
            state = "nullable" if b.get("nullable") else "non-null"
            parts.append(f"column `{name}` is now {state}")
    common_a = [n for n in cols_a if n in cols_b]
    common_b = [n for n in cols_b if n in cols_a]
    if common_a != common_b:
        parts.append("column order changed")
    return parts


def file_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """``file data/x.csv changed`` / ``added`` / ``removed`` for a file, folder, glob or
    ``s3://`` argument (or a container's parts of those), from the listings stored with its
    fingerprint; ``[]`` when the fingerprints carry none (frames, values, older entries)."""
    if before.get("kind") == "container" and after.get("kind") == "container":
        return _part_file_changes(before.get("value"), after.get("value"))
    a, b = before.get("value"), after.get("value")
    if not isinstance(a, Mapping) or not isinstance(b, Mapping):
        return []
    words: list[str] = []
    if a.get("text") is not None and b.get("text") is not None and a["text"] != b["text"]:
        words.append(f"str {fmt_value(a['text'])} → {fmt_value(b['text'])}")
    listed_a, listed_b = a.get("listing"), b.get("listing")
    if isinstance(listed_a, Mapping) and isinstance(listed_b, Mapping):
        return words + _listing_changes(listed_a, listed_b)
    if before.get("kind") == after.get("kind") == "file" and a.get("content") != b.get("content"):
        path = b.get("path")
        return words + ([f"file {path} changed"] if path == a.get("path") and path else [])
    files_a, files_b = a.get("files"), b.get("files")
    if isinstance(files_a, int) and isinstance(files_b, int) and "listing" in b:
        # Past the listing cap only the count and the digest are stored with the key.
        if files_a != files_b:
            words.append(f"{files_a:,} → {files_b:,} files (too many to name each)")
        elif a.get("content") != b.get("content"):
            words.append(f"a file among {files_b:,} changed (too many to name each)")
    return words


def _listing_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    changes: list[str] = []
    for name in sorted(set(before) | set(after)):
        if name not in before:
            changes.append(f"file {name} added")
        elif name not in after:
            changes.append(f"file {name} removed")
        elif before[name] != after[name]:
            changes.append(f"file {name} changed")
    if len(changes) > _MAX_FILES_NAMED:
        rest = len(changes) - _MAX_FILES_NAMED
        changes = [*changes[:_MAX_FILES_NAMED], f"{rest:,} more files changed, added or removed"]
    return changes


def _part_file_changes(before: object, after: object) -> list[str]:
    """The file changes of the path parts of a list/tuple/dict argument, paired by position."""
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return []
    parts_a = {p.get("at"): p for p in before.get("parts") or [] if isinstance(p, Mapping)}
    parts_b = {p.get("at"): p for p in after.get("parts") or [] if isinstance(p, Mapping)}
    words: list[str] = []
    for at in sorted(set(parts_a) | set(parts_b), key=str):
        a, b = parts_a.get(at), parts_b.get(at)
        if a is None or b is None or a.get("fingerprint") == b.get("fingerprint"):
            continue
        words.extend(f"{at}: {change}" for change in file_changes(a, b))
    return words
