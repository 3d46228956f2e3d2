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
