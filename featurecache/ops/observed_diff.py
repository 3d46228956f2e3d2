"""Wording for ``featurecache why`` about files a body read: "file data/labels.csv changed".

An entry's ``"observed"`` component holds the files its body opened and the path literals of
its code (``fingerprint.observed_inputs``, ``fingerprint.literals``; a literal that named
nothing is of kind ``absent``), and, when the entry replaced a stale one under the same key,
what that one had recorded (``"replaced"``).

Pure functions over catalog components (JSON), no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_NOUNS = {"file": "file", "directory": "folder", "glob": "glob", "remote": "remote location"}


def _by_path(items: object) -> dict[str, Mapping[str, Any]]:
    if not isinstance(items, list):
        return {}
    return {str(i.get("path")): i for i in items if isinstance(i, Mapping) and i.get("path")}


def _noun(item: Mapping[str, Any]) -> str:
    return _NOUNS.get(str(item.get("kind")), "file")


def compare_observed(before: object, after: object) -> list[str]:
    """What changed between two lists of observed inputs (``[{"path", "kind",
    "fingerprint"}, …]``): "file data/labels.csv changed", "… is no longer read", "… is
    read now"; a file that could not be fingerprinted counts as changed."""
    old, new = _by_path(before), _by_path(after)
    lines: list[str] = []
    for path, item in new.items():
        prior = old.get(path)
        if prior is None:
            lines.append(f"{_noun(item)} {path} is read now")
        elif prior.get("kind") == "absent" and item.get("kind") != "absent":
            lines.append(f"{_noun(item)} {path} exists now")
        elif item.get("kind") == "absent" and prior.get("kind") != "absent":
            lines.append(f"{_noun(prior)} {path} is gone")
        elif item.get("fingerprint") is None or item.get("fingerprint") != prior.get("fingerprint"):
            lines.append(f"{_noun(item)} {path} changed")
    lines.extend(
        f"{_noun(item)} {path} is no longer read" for path, item in old.items() if path not in new
    )
    return lines


def observed_changes(components: Mapping[str, Any]) -> list[str]:
    """Why this entry replaced the stale one under its key ([] when it replaced none)."""
    block = components.get("observed")
    if not isinstance(block, Mapping) or "replaced" not in block:
        return []
    return compare_observed(block.get("replaced"), block.get("files"))
