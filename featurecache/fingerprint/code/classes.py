"""Code identity of a user class: its normalised ``class`` statement (methods included), what
the class body and every method refer to, its data attributes' values, its bases and its
metaclass.

Methods are hashed one by one as well (``members``), so ``why`` can name the method that
changed. Methods added by a class decorator from generated source (dataclass ``__init__``,
``__eq__``…) are covered by the decorator and the class statement, not hashed separately.
Functions assigned into the class from elsewhere are followed as references.
"""

from __future__ import annotations

import functools
import sys
import types
from typing import TYPE_CHECKING, Any

from featurecache.fingerprint.code.libraries import display_path, origin_of_path
from featurecache.fingerprint.code.normalise import first_line, source_file
from featurecache.fingerprint.code.refs import class_body_chains
from featurecache.fingerprint.code.values import value_digest
from featurecache.hashing import hash_struct

if TYPE_CHECKING:
    from featurecache.fingerprint.code.guards import Guard
    from featurecache.fingerprint.code.walking import WalkerApi as Walker


def class_record(walker: Walker, cls: type, key: str) -> dict[str, Any]:
    module = sys.modules.get(cls.__module__)
    ns: dict[str, Any] = vars(module) if module is not None else {}
    members_in_dict = dict(vars(cls))
    walker.guards.append(_class_dict_guard(cls, members_in_dict))
    own = [f for value in members_in_dict.values() for f in _functions_of(value) if _own(f, cls)]
    filename = str(getattr(module, "__file__", "") or "")
    if not filename and own:
        filename = own[0].__code__.co_filename
    sf = source_file(filename, ns) if filename else None
    nodes = sf.class_nodes(cls.__qualname__) if sf is not None else []
    file = display_path(filename, cls.__module__)
    line = first_line(nodes[-1]) if nodes else None
    source_ok = bool(nodes)
    members: dict[str, str] = {}
    methods: list[str] = []
    bindings: dict[str, str] = {}
    for name in sorted(members_in_dict):
        value = members_in_dict[name]
        functions = _functions_of(value)
        for index, func in enumerate(functions):
            label = name if len(functions) == 1 else f"{name}.{index}"
            if source_ok and _generated(func):
                # Made by a decorator (dataclass) or a library: the class statement, which
                # names the decorator, is hashed, and so is the library's version.
                members[label] = "generated"
            elif not _own(func, cls):
                bindings[label] = walker.token(func) or "?"
            else:
                record = walker.function_record(func, f"{key}.{label}")
                members[label] = record["digest"]
                methods.append(label)
                source_ok = source_ok and record["mode"] == "ast"
        if functions or _is_special(name):
            continue
        label = f"`{cls.__qualname__}.{name}` ({file})"
        digest, mutable = value_digest(value, walker, label)
        members[name] = digest
        if mutable:
            walker.guards.append(_class_value_guard(walker, cls, name, digest, label))
    if source_ok and sf is not None:
        body = hash_struct(["class-ast", [sf.digest(node) for node in nodes]])
        mode = "ast"
        for node in nodes:
            for chain, chain_line in class_body_chains(node):
                if walker.is_ignored(cls.__module__, chain) or chain[0] not in ns:
                    continue  # class-local or enclosing-function names are in the source
                bindings["<class>." + ".".join(chain)] = walker.resolve_chain(
                    ns, chain, f"{file}:{chain_line}"
                )
    else:
        body, mode = "<no source>", "bytecode"
        walker.finding(
            f"source of class `{cls.__qualname__}` ({file}) is unavailable or differs from the "
            "code running; hashed its methods' bytecode and its attributes instead",
            False,
        )
    bases = [walker.token(base) or base.__qualname__ for base in cls.__bases__]
    meta = walker.token(type(cls)) if type(cls) is not type else None
    walker.guards.append(_bases_guard(cls, cls.__bases__))
    digest = hash_struct(
        ["class", mode, body, sorted(members.items()), sorted(bindings.items()), bases, meta]
    )
    return {
        "kind": "class",
        "digest": digest,
        "file": file,
        "line": line,
        "mode": mode,
        "members": members,
        "methods": methods,
    }


def _functions_of(value: object) -> list[types.FunctionType]:
    """The plain functions behind a class member (methods, static/class methods, properties)."""
    if isinstance(value, staticmethod | classmethod):
        value = value.__func__
    if isinstance(value, types.FunctionType):
        return [value]
    if isinstance(value, property):
        parts = (value.fget, value.fset, value.fdel)
        return [p for p in parts if isinstance(p, types.FunctionType)]
    if isinstance(value, functools.cached_property) and isinstance(value.func, types.FunctionType):
        return [value.func]
    return []


def _generated(func: types.FunctionType) -> bool:
    filename = func.__code__.co_filename
    return filename.startswith("<") or origin_of_path(filename) != "user"


def _own(func: types.FunctionType, cls: type) -> bool:
    return func.__module__ == cls.__module__ and func.__qualname__.startswith(
        cls.__qualname__ + "."
    )


def _is_special(name: str) -> bool:
    # Dunder and sunder attributes (__module__, __dict__, _member_map_…) are set by Python,
    # by the metaclass or by a decorator from the class statement, which is hashed.
    return len(name) > 2 and name.startswith("_") and name.endswith("_")


def _class_dict_guard(cls: type, snapshot: dict[str, Any]) -> Guard:
    def check() -> bool:
        current = vars(cls)
        return len(current) == len(snapshot) and all(
            current.get(k) is v for k, v in snapshot.items()
        )

    return check


def _bases_guard(cls: type, bases: tuple[type, ...]) -> Guard:
    return lambda: cls.__bases__ is bases


def _class_value_guard(walker: Walker, cls: type, name: str, digest: str, label: str) -> Guard:
    return lambda: value_digest(vars(cls).get(name), walker.frozen_view(), label)[0] == digest
