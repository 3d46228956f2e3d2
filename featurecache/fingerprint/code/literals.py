"""Path-like string literals in a function's code: candidates for files the body reads.

``pd.read_csv("data/labels.csv")`` inside a feature reads a file the key knows nothing about.
The code walk collects every string literal of the code it already follows that *looks* like
a path; when a miss has run, the candidates are recorded with the entry as observed inputs
and re-validated on every lookup (``fingerprint.literals``). Collecting is pure and cheap
(done once per code identity, from the AST or, without trusted source, from the code
objects' constants).

A literal looks like a path when it is a single line of reasonable length, is not a URL, and
has a path separator or ends in a file extension (``"data/"``, ``"labels.csv"``). A bare word
(``"data"``) does not: column names would otherwise be stat'ed at every call. Docstrings never
count; f-strings and concatenations are not literals (the run-time observation covers them).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from types import CodeType

# Enough for real paths, and it bounds the stat calls a pathological function can cost.
MAX_LITERAL_CHARS = 1024
MAX_LITERALS = 256
_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9_]{0,9}$")
_DOC_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def looks_like_path(text: str) -> bool:
    """Whether ``text`` could name a file or folder (no I/O)."""
    if not text or len(text) > MAX_LITERAL_CHARS or text != text.strip():
        return False
    if any(ch in text for ch in "\n\r\t\x00*?[") or "://" in text or "{" in text:
        return False
    return "/" in text or "\\" in text or _EXTENSION.search(text) is not None


def _docstrings(node: ast.AST) -> set[int]:
    """ids of the docstring nodes below ``node`` (the first string statement of a body)."""
    found: set[int] = set()
    for owner in ast.walk(node):
        if isinstance(owner, _DOC_OWNERS) and owner.body:
            first = owner.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                found.add(id(first.value))
    return found


def literals_in_node(node: ast.AST) -> list[str]:
    """Path-like string constants of ``node`` (docstrings and f-string pieces left out)."""
    skip = _docstrings(node)
    for joined in ast.walk(node):
        if isinstance(joined, ast.JoinedStr):
            skip.update(id(part) for part in joined.values)
    found = (
        sub.value
        for sub in ast.walk(node)
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and id(sub) not in skip
    )
    return _bounded(text for text in found if looks_like_path(text))


def literals_in_code(code: CodeType) -> list[str]:
    """Path-like string constants of a code object and the code nested in it (the fallback
    when the source cannot be trusted; a docstring found this way counts only if it looks
    like a path, which costs a stat, never a wrong answer)."""
    return _bounded(text for text in _constants(code) if looks_like_path(text))


def literals_in_value(value: object) -> list[str]:
    """A module-level constant read by the code: a path-like ``str``, or the path-like
    strings directly inside a list, tuple, set or dict of them (``FILES = ["a.csv"]``)."""
    if isinstance(value, str):
        return [value] if looks_like_path(value) else []
    items: Iterable[object]
    if isinstance(value, dict):
        items = list(value.values())
    elif isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    else:
        return []
    return _bounded(item for item in items if isinstance(item, str) and looks_like_path(item))


def _constants(code: CodeType) -> Iterator[str]:
    for const in code.co_consts:
        if isinstance(const, str):
            yield const
        elif isinstance(const, CodeType):
            yield from _constants(const)
        elif isinstance(const, tuple | frozenset):
            yield from (item for item in const if isinstance(item, str))


def _bounded(texts: Iterable[str]) -> list[str]:
    unique = list(dict.fromkeys(texts))
    return unique[:MAX_LITERALS]
