"""Code identity of a feature function: a digest that changes whenever anything the function's
result can depend on in *code* changes, and stays put for cosmetic edits.

What goes into the digest:

1. The function's normalised source: its definition is parsed with ``ast`` and encoded
   canonically. Comments, blank lines, formatting (line breaks, indentation, parentheses,
   quote style, trailing commas) and docstrings (of the function and of every function or
   class nested in it) do not count; everything else does, including decorators other than
   ``@cached_feature`` itself, default-argument expressions, annotations, nested functions,
   classes and lambdas. ``@cached_feature``'s arguments count through ``options``.
2. Transitively, every piece of *user* code it refers to: global names and attribute chains
   (``util.clean_ts``, ``pkg.mod.f``), names imported inside the body, decorators, closure
   cells, default argument values, ``functools.partial`` objects, classes (every method,
   property, static/class method, class attribute, user base class, metaclass), and instances
   of user classes (class + state). Functions and classes are hashed by normalised source,
   module-level constants and other values by value. Cycles (mutual recursion) terminate.
   User code is code outside the standard library and ``site-packages`` (``__main__``,
   notebook cells, the project, editable installs).
3. For third-party objects, the version of their distribution (``components["libraries"]``),
   unless ``track_library_versions=False``; standard-library objects count by name only.
4. ``version=`` (a salt), ``options``, ``depends_on=[...]`` (values by value, functions and
   classes by code) and the ``ignore=[...]`` list.

What cannot be followed is reported with its place (``file:line``) as a ``CodeIdentityWarning``
and in ``components["warnings"]``; ``strict=True`` raises ``CodeIdentityError`` instead:
``eval``/``exec``, ``globals()``/``locals()``/``vars()``, ``__import__``, ``getattr(x, name)``
with a non-constant name, ``importlib.import_module(name)`` with a non-constant name, a user
module used as a value, live objects with no canonical value (open files, connections, random
generators), and imports that fail. Names in ``ignore`` are left out and never warned about.

Source is hashed only when it matches the running code; otherwise (edited since import, REPL,
``exec``) the bytecode is hashed, with the Python version, and a warning says so. I/O, the
environment and the clock are inputs, not code: they are not tracked.

Identities are memoised per function object and arguments; a memoised identity is reused only
after re-checking that every name, cell, default and mutable value it read is unchanged.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import json
import threading
import types
import warnings
import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from featurecache.errors import CodeIdentityError, CodeIdentityWarning
from featurecache.fingerprint.code.deps import Walker, function_key
from featurecache.fingerprint.code.guards import Guard, StaleMemo
from featurecache.fingerprint.code.normalise import PYTHON_VERSION, source_file
from featurecache.fingerprint.code.refs import name_chains
from featurecache.fingerprint.code.values import value_digest, wrapped_function
from featurecache.fingerprint.types import CodeIdentity
from featurecache.hashing import UnencodableValueError, canonical_encode, hash_struct

CODE_IDENTITY_SCHEME = "1"
_DECORATOR_NAME = "cached_feature"


@dataclass(frozen=True)
class _Entry:
    identity: CodeIdentity
    guards: tuple[Guard, ...]
    fatal: tuple[str, ...]
    depends_on: tuple[object, ...]


_MEMO: weakref.WeakKeyDictionary[Any, dict[Hashable, _Entry]] = weakref.WeakKeyDictionary()
_MEMO_LOCK = threading.Lock()


def code_identity(
    func: Callable[..., Any],
    *,
    version: str | None = None,
    options: Mapping[str, Any] | None = None,
    depends_on: Sequence[object] = (),
    ignore: Sequence[str] = (),
    strict: bool = False,
    track_library_versions: bool = True,
) -> CodeIdentity:
    """The transitive code identity of ``func`` (see the module docstring for the rules)."""
    depends = tuple(depends_on)
    memo_key = _memo_key(version, options, depends, ignore, track_library_versions)
    entry = _memo_get(func, memo_key, depends)
    if entry is None:
        entry = _compute(func, version, options, depends, ignore, track_library_versions)
        _memo_put(func, memo_key, entry)
        for message in entry.identity.warnings:
            warnings.warn(f"{entry.identity.qualname}: {message}", CodeIdentityWarning, 2)
    if strict and entry.fatal:
        raise CodeIdentityError(entry.identity.qualname, entry.fatal)
    return entry.identity


def clear_memo() -> None:
    """Forget every memoised identity (tests; long-lived processes that reload code)."""
    with _MEMO_LOCK:
        _MEMO.clear()


def _compute(
    func: Callable[..., Any],
    version: str | None,
    options: Mapping[str, Any] | None,
    depends: tuple[object, ...],
    ignore: Sequence[str],
    track: bool,
) -> _Entry:
    walker = Walker(track_libraries=track, ignore=ignore)
    target = _unwrap(func)
    if isinstance(target, types.FunctionType):
        key = walker.reserve(function_key(target), target)
        root = walker.function_record(target, key, _decorator_filter(target))
        module, qualname = target.__module__, target.__qualname__
        source = _source_text(target)
    else:
        digest, _ = value_digest(target, walker, "the feature")
        module = str(getattr(target, "__module__", None) or type(target).__module__)
        qualname = str(getattr(target, "__qualname__", None) or type(target).__qualname__)
        root = {"kind": type(target).__name__, "digest": digest, "file": "", "line": None}
        source = ""
    for index, obj in enumerate(depends):
        label = f"depends_on[{index}]"
        walker.deps[label] = walker.value_record(obj, "constant", label, "", None)
    options_digest = value_digest(dict(options or {}), walker, "options")[0]
    ignored = sorted(set(ignore))
    libs = dict(sorted(walker.libraries.items())) if track else {}
    python = PYTHON_VERSION if walker.bytecode_used else None
    deps = {key: walker.deps[key] for key in sorted(walker.deps)}
    digest = hash_struct(
        [
            "code",
            CODE_IDENTITY_SCHEME,
            f"{module}:{qualname}",
            root["digest"],
            [[k, d["kind"], d["digest"]] for k, d in deps.items()],
            [[name, ver] for name, ver in libs.items()],
            version,
            options_digest,
            ignored,
            python,
        ]
    )
    findings = walker.findings
    components: dict[str, Any] = {
        "scheme": CODE_IDENTITY_SCHEME,
        "function": {"qualname": qualname, "module": module, **root},
        "dependencies": deps,
        "libraries": libs,
        "version": version,
        "options": _jsonable(dict(options or {})),
        "ignored": ignored,
        "python": python,
        "warnings": [f.message for f in findings],
    }
    identity = CodeIdentity(
        digest=digest,
        qualname=f"{module}.{qualname}",
        source=source,
        components=components,
        warnings=tuple(f.message for f in findings),
        path_literals=tuple(walker.path_literals),
    )
    fatal = tuple(f.message for f in findings if f.fatal)
    return _Entry(identity, tuple(walker.guards), fatal, depends)


def _unwrap(func: Any) -> Any:
    """The plain function behind a Feature object or a ``functools.wraps`` wrapper."""
    for _ in range(16):
        if isinstance(func, types.FunctionType | functools.partial):
            return func
        inner = wrapped_function(func)
        if inner is None:
            return func
        func = inner
    return func


def _decorator_filter(func: types.FunctionType) -> Callable[[ast.expr], bool]:
    """Matches the ``@cached_feature`` / ``@cache.cached_feature(...)`` decorator line."""

    def is_cached_feature(expr: ast.expr) -> bool:
        target = expr.func if isinstance(expr, ast.Call) else expr
        chains = name_chains(target)
        if not chains:
            return False
        chain = chains[0][0]
        if chain[-1] == _DECORATOR_NAME:
            return True
        obj: object = func.__globals__.get(chain[0])
        for attr in chain[1:]:
            obj = getattr(obj, attr, None)
        return getattr(obj, "__name__", None) == _DECORATOR_NAME and str(
            getattr(obj, "__module__", "")
        ).startswith("featurecache")

    return is_cached_feature


def _source_text(func: types.FunctionType) -> str:
    sf = source_file(func.__code__.co_filename, func.__globals__)
    node = sf.function_node(func.__code__) if sf is not None else None
    return sf.segment(node) if sf is not None and node is not None else ""


def _jsonable(value: object) -> Any:
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        pass
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    name = getattr(value, "__qualname__", None) or type(value).__qualname__
    return f"<{name}>"


# -- memo -------------------------------------------------------------------------------


# Types whose values are equal only when they are the same value of the same type (once the
# type is part of the comparison: 1, 1.0 and True are equal in Python).
_PLAIN_TYPES = frozenset({str, int, bool, type(None)})


def _memo_key(
    version: str | None,
    options: Mapping[str, Any] | None,
    depends: tuple[object, ...],
    ignore: Sequence[str],
    track: bool,
) -> Hashable | None:
    """What tells the memoised identities of one function apart. Usually (a ``version``, the
    options and ``ignore`` of plain values: what ``Feature`` passes) a tuple of the values
    tagged with their types, a fraction of the cost of their canonical encoding, which every
    call used to pay; otherwise that encoding, or None (options holding objects)."""
    opts = options or {}
    if (
        type(version) in _PLAIN_TYPES
        and all(type(k) is str and type(v) in _PLAIN_TYPES for k, v in opts.items())
        and all(type(name) is str for name in ignore)
    ):
        return (
            type(version),
            version,
            tuple(sorted([(k, type(v), v) for k, v in opts.items()])),  # keys are unique
            tuple([id(obj) for obj in depends]),
            tuple(sorted(set(ignore))),
            track,
        )
    try:
        encoded = canonical_encode(dict(opts))
    except UnencodableValueError:
        return None  # options holding objects: recompute every time
    return canonical_encode(
        [version, encoded, [id(obj) for obj in depends], sorted(set(ignore)), track]
    )


def _memo_get(func: object, key: Hashable | None, depends: tuple[object, ...]) -> _Entry | None:
    if key is None:
        return None
    with _MEMO_LOCK:
        try:
            entry = _MEMO.get(func, {}).get(key)
        except TypeError:  # not weak-referenceable or not hashable
            return None
    if entry is None or len(entry.depends_on) != len(depends):
        return None
    if any(a is not b for a, b in zip(entry.depends_on, depends, strict=True)):
        return None
    try:
        if all(guard() for guard in entry.guards):
            return entry
    except (StaleMemo, TypeError, ValueError, AttributeError, LookupError):
        pass
    return None


def _memo_put(func: object, key: Hashable | None, entry: _Entry) -> None:
    if key is None:
        return
    with _MEMO_LOCK, contextlib.suppress(TypeError):  # not weak-referenceable or not hashable
        _MEMO.setdefault(func, {})[key] = entry
