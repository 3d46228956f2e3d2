"""Guards: cheap checks that the names, cells, attributes and mutable values a memoised code
identity read are still what they were, so a memoised identity is never reused stale."""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MISSING: Any = object()
Guard = Callable[[], bool]


class StaleMemo(Exception):
    """Raised while re-checking a memoised identity: an object it refers to has changed."""


@dataclass(frozen=True)
class Finding:
    message: str
    fatal: bool  # strict=True turns fatal findings into CodeIdentityError


def lookup_guard(ns: Mapping[str, Any], name: str, expected: object) -> Guard:
    return lambda: ns.get(name, MISSING) is expected


def attr_guard(obj: object, name: str, expected: object) -> Guard:
    return lambda: getattr(obj, name, MISSING) is expected


def cell_guard(cell: types.CellType, expected: object) -> Guard:
    def check() -> bool:
        try:
            return cell.cell_contents is expected
        except ValueError:
            return expected is MISSING

    return check
