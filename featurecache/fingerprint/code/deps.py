"""The dependency walk behind code identity: from a function to every piece of *user* code and
every value it can reach, each hashed once.

A function's record hashes its normalised source (or bytecode) together with what each name
it reads is bound to (``"util.clean_ts" -> "pipeline.util:clean_ts"``); the names' targets are
records of their own. Records refer to each other by key, never by digest, so cycles (mutual
recursion) terminate and a change is reported where it happened, not along the whole chain.
The identity's digest is taken over the flat set of records.

Third-party and standard-library objects are not followed: a third-party object records the
version of its distribution, a standard-library object only its name.
"""

from __future__ import annotations

import builtins
import functools
import sys
import types
from collections.abc import Callable, Collection, Mapping
from typing import Any

from featurecache.fingerprint.code import libraries
from featurecache.fingerprint.code.guards import (
    MISSING,
    Finding,
    Guard,
    StaleMemo,
    attr_guard,
    cell_guard,
    lookup_guard,
)
from featurecache.fingerprint.code.libraries import display_path
from featurecache.fingerprint.code.literals import (
    MAX_LITERALS,
    literals_in_code,
    literals_in_node,
    literals_in_value,
)
from featurecache.fingerprint.code.normalise import (
    DecoratorFilter,
    SourceFile,
    bytecode_digest,
    first_line,
    node_digest,
    source_file,
)
from featurecache.fingerprint.code.refs import (
    Chain,
    dynamic_constructs,
    dynamic_constructs_in_bytecode,
    global_chains,
    name_chains,
)
from featurecache.fingerprint.code.values import short_json, value_digest, wrapped_function
from featurecache.hashing import hash_struct

_CALLABLE_TYPES = (
    types.BuiltinFunctionType,
    types.BuiltinMethodType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
    types.MethodWrapperType,
)


class Walker:
    """One code-identity computation (not thread-safe; build one per call)."""

    def __init__(self, *, track_libraries: bool, ignore: Collection[str]) -> None:
        self.track_libraries = track_libraries
        self.ignore = frozenset(ignore)
        self.deps: dict[str, dict[str, Any]] = {}
        self.libraries: dict[str, str | None] = {}
        self.findings: list[Finding] = []
        self.guards: list[Guard] = []
        self.bytecode_used = False
        # Path-like string literals of the code walked (``code.literals``): not part of any
        # digest, checked against the file system at each call.
        self.path_literals: dict[str, None] = {}
        self.frozen = False  # re-checking a memo: nothing new may be followed
        self._tokens: dict[int, str] = {}
        self._keep: list[object] = []  # keeps ids unique while tokens refer to them
        self._reserved: set[str] = set()

    # -- the ValueContext protocol ------------------------------------------------------

    def token(self, obj: object) -> str | None:
        """A reference for functions, classes, modules and library callables; None for values."""
        if isinstance(obj, types.ModuleType):
            return self._module_token(obj)
        if isinstance(obj, type):
            return self._object_token(obj, obj.__module__, self._follow_class)
        if isinstance(obj, types.FunctionType):
            return self._function_token(obj)
        if isinstance(obj, types.MethodType) or wrapped_function(obj) is not None:
            return None
        if isinstance(obj, _CALLABLE_TYPES) or (
            callable(obj) and isinstance(getattr(obj, "__name__", None), str)
        ):
            module = libraries.module_of(obj)
            if libraries.origin_of_module(module) != "user":
                return self._object_token(obj, module, None)
        return None

    def finding(self, message: str, fatal: bool) -> None:
        if not self.frozen and message not in {f.message for f in self.findings}:
            self.findings.append(Finding(message, fatal))

    # -- tokens -------------------------------------------------------------------------

    def _function_token(self, func: types.FunctionType) -> str:
        module = func.__globals__.get("__name__", func.__module__)
        origin = libraries.origin_of_code(module, func.__code__.co_filename)
        if origin == "user":
            return self.follow_function(func)
        return self._named_token(func, func.__module__, origin)

    def _object_token(
        self, obj: Any, module: str | None, follow: Callable[[Any], str] | None
    ) -> str:
        origin = libraries.origin_of_module(module)
        if origin == "user" and follow is not None:
            return follow(obj)
        return self._named_token(obj, module, origin)

    def _named_token(self, obj: Any, module: str | None, origin: str) -> str:
        name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "?")
        if origin == "library" and module:
            self._record_library(module)
            return f"lib:{module}:{name}"
        return f"std:{module}:{name}"

    def _module_token(self, module: types.ModuleType) -> str:
        origin = libraries.origin_of_module(module.__name__)
        if origin == "library":
            self._record_library(module.__name__)
            return f"lib:{module.__name__}"
        if origin == "stdlib":
            return f"std:{module.__name__}"
        return self.follow_module(module)

    def _record_library(self, module: str) -> None:
        if self.track_libraries and not self.frozen:
            self.libraries.update(libraries.library_versions(module))

    def _known(self, obj: object) -> str | None:
        token = self._tokens.get(id(obj))
        if token is None and self.frozen:
            raise StaleMemo(repr(obj)[:80])
        return token

    def reserve(self, base: str, obj: object) -> str:
        key, n = base, 1
        while key in self._reserved:
            n += 1
            key = f"{base}#{n}"
        self._reserved.add(key)
        self._tokens[id(obj)] = key
        self._keep.append(obj)
        return key

    # -- functions ----------------------------------------------------------------------

    def follow_function(self, func: types.FunctionType, kind: str = "function") -> str:
        known = self._known(func)
        if known is not None:
            return known
        key = self.reserve(function_key(func), func)
        record = self.function_record(func, key)
        record["kind"] = kind
        self.deps[key] = record
        return key

    def function_record(
        self, func: types.FunctionType, key: str, drop_decorator: DecoratorFilter | None = None
    ) -> dict[str, Any]:
        """Digest of a function's own code and of what its names are bound to; its closure
        cells and default values become records of their own."""
        code = func.__code__
        self._guard_attrs(func, ("__code__", "__defaults__", "__kwdefaults__"))
        sf = source_file(code.co_filename, func.__globals__)
        node = sf.function_node(code) if sf is not None else None
        ns = func.__globals__
        owner = str(ns.get("__name__", func.__module__))
        file = display_path(code.co_filename, owner)
        if sf is not None and node is not None:
            body = sf.digest(node) if drop_decorator is None else node_digest(node, drop_decorator)
            mode, line = "ast", first_line(node)
            uses = dict(name_chains(node))
        else:
            body, mode, line, uses = bytecode_digest(code), "bytecode", code.co_firstlineno, {}
            self.bytecode_used = True
            self.finding(
                f"source of `{func.__qualname__}` ({file}:{line}) is unavailable or differs from "
                "the code running (edited since import?); hashed its bytecode instead, which "
                "depends on the Python version",
                False,
            )
        self.note_literals(literals_in_node(node) if node is not None else literals_in_code(code))
        bindings: dict[str, str] = {}
        for chain in sorted(global_chains(code)):
            if self.is_ignored(owner, chain):
                continue
            where = f"{file}:{uses.get(chain, line)}"
            bindings[".".join(chain)] = self.resolve_chain(ns, chain, where)
        if node is not None:
            from featurecache.fingerprint.code.imports import local_import_bindings

            bindings.update(local_import_bindings(self, func, node, file))
            constructs = dynamic_constructs(node)
            for dec in getattr(node, "decorator_list", []):
                if drop_decorator is not None and drop_decorator(dec):
                    continue
                for chain, dec_line in name_chains(dec):
                    if not self.is_ignored(owner, chain):
                        token = self.resolve_chain(ns, chain, f"{file}:{dec_line}")
                        bindings["@" + ".".join(chain)] = token
        else:
            constructs = dynamic_constructs_in_bytecode(code)
        for construct in constructs:
            base = construct.construct.partition("(")[0]
            if base in self.ignore or (base in ns and base != "import_module"):
                continue
            self.finding(
                f"`{construct.construct}` in {file}:{construct.line} (in `{func.__qualname__}`) "
                "reads or runs code chosen at run time, which featurecache cannot follow",
                True,
            )
        bindings.update(self._closure_records(func, key, file, line))
        bindings.update(self._default_records(func, key, file, line))
        digest = hash_struct(["function", mode, body, sorted(bindings.items())])
        record: dict[str, Any] = {"kind": "function", "digest": digest, "body": body}
        record.update({"file": file, "line": line, "mode": mode})
        return record

    def _closure_records(
        self, func: types.FunctionType, key: str, file: str, line: int
    ) -> dict[str, str]:
        bindings: dict[str, str] = {}
        for name, cell in zip(func.__code__.co_freevars, func.__closure__ or (), strict=False):
            if name == "__class__" or name in self.ignore:
                continue
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell: the variable is not assigned yet
                value = MISSING
            self.guards.append(cell_guard(cell, value))
            label = f"closure `{name}` of `{func.__qualname__}` ({file}:{line})"
            ckey = f"{key}.<closure>.{name}"
            self.deps[ckey] = self.value_record(value, "closure", label, file, line)
            bindings[f"<closure>.{name}"] = ckey
        return bindings

    def _default_records(
        self, func: types.FunctionType, key: str, file: str, line: int
    ) -> dict[str, str]:
        code = func.__code__
        positional = code.co_varnames[: code.co_argcount]  # positional-only ones included
        defaults = func.__defaults__ or ()
        named = dict(zip(positional[len(positional) - len(defaults) :], defaults, strict=True))
        named.update(func.__kwdefaults__ or {})
        bindings: dict[str, str] = {}
        for name in sorted(named):
            if name in self.ignore:
                continue
            label = f"default `{name}` of `{func.__qualname__}` ({file}:{line})"
            dkey = f"{key}.<default>.{name}"
            self.deps[dkey] = self.value_record(named[name], "default", label, file, line)
            bindings[f"<default>.{name}"] = dkey
        return bindings

    # -- names and values ---------------------------------------------------------------

    def is_ignored(self, owner: str, chain: Chain) -> bool:
        if not self.ignore:
            return False
        dotted = [".".join(chain[: i + 1]) for i in range(len(chain))]
        candidates = {*dotted, f"{owner}:{chain[0]}", f"{owner}.{chain[0]}"}
        return not self.ignore.isdisjoint(candidates)

    def resolve_chain(self, ns: Mapping[str, Any], chain: Chain, where: str) -> str:
        """Follow ``a.b.c`` through user modules, then hash or reference what it reaches."""
        head = chain[0]
        obj = ns.get(head, MISSING)
        self.guards.append(lookup_guard(ns, head, obj))
        if obj is MISSING:
            found = ns.get("__builtins__", builtins)
            names = found if isinstance(found, dict) else vars(found)
            return f"builtin:{head}" if head in names else f"unbound:{head}"
        owner, name = str(ns.get("__name__", "?")), head
        for attr in chain[1:]:
            if not isinstance(obj, types.ModuleType):
                break
            if libraries.origin_of_module(obj.__name__) != "user":
                break
            members = vars(obj)
            nxt = members.get(attr, MISSING)
            self.guards.append(lookup_guard(members, attr, nxt))
            if nxt is MISSING:
                if "__getattr__" in members:
                    self.finding(
                        f"`{obj.__name__}.{attr}` in {where} is looked up by the module's "
                        "__getattr__ at run time, which featurecache cannot follow",
                        True,
                    )
                return f"unbound:{obj.__name__}.{attr}"
            if self.is_ignored(obj.__name__, (attr,)):
                return f"ignored:{obj.__name__}.{attr}"
            owner, name, obj = obj.__name__, attr, nxt
        if isinstance(obj, types.ModuleType) and libraries.origin_of_module(obj.__name__) == "user":
            self.finding(
                f"module `{obj.__name__}` is used as a value in {where}: its whole source is "
                "hashed, but what it imports is not followed",
                True,
            )
        token = self.token(obj)
        if token is not None:
            return token
        return self.named_value(obj, owner, name, where)

    def named_value(self, obj: object, owner: str, name: str, where: str) -> str:
        """A module-level (or class-level) value: a record of kind constant / partial."""
        inner = wrapped_function(obj)
        if inner is not None:
            # A decorated function (lru_cache, a Feature, numba): follow what it wraps; the
            # wrapper's type is part of the binding.
            inner_token = self.token(inner)
            if inner_token is not None:
                return f"wrapped:{self.token(type(obj))}:{inner_token}"
        base = f"{owner}:{name}"
        if base in self.deps:
            return base
        key = self.reserve(base, obj)
        module = sys.modules.get(owner)
        filename = str(getattr(module, "__file__", "") or "")
        sf = source_file(filename, vars(module)) if module is not None and filename else None
        line = sf.assignment_line(name) if sf is not None else None
        kind = "partial" if isinstance(obj, functools.partial) else "constant"
        label = f"`{name}` (read in {where})"
        self.deps[key] = self.value_record(obj, kind, label, display_path(filename, owner), line)
        return key

    def value_record(
        self, value: object, kind: str, label: str, file: str, line: int | None
    ) -> dict[str, Any]:
        if value is MISSING:
            digest, mutable = hash_struct(["value", "<unassigned>"]), False
        else:
            digest, mutable = value_digest(value, self, label)
        if mutable:
            self.guards.append(self._value_guard(value, label, digest))
        record: dict[str, Any] = {"kind": kind, "digest": digest, "file": file, "line": line}
        self.note_literals(literals_in_value(value))
        ok, shown = short_json(value)
        if ok:
            record["value"] = shown
        return record

    def note_literals(self, texts: list[str]) -> None:
        for text in texts:
            if len(self.path_literals) >= MAX_LITERALS:
                return
            if text not in self.ignore:  # ``ignore=["out/result.parquet"]``: an output
                self.path_literals.setdefault(text, None)

    def _value_guard(self, value: object, label: str, digest: str) -> Guard:
        def check() -> bool:
            return value_digest(value, self.frozen_view(), label)[0] == digest

        return check

    def frozen_view(self) -> Walker:
        """A walker that re-hashes values with the tokens already assigned, following nothing."""
        view = Walker(track_libraries=False, ignore=self.ignore)
        view.frozen = True
        view._tokens = self._tokens
        return view

    def _guard_attrs(self, obj: object, names: tuple[str, ...]) -> None:
        for name in names:
            self.guards.append(attr_guard(obj, name, getattr(obj, name, MISSING)))

    # -- classes and modules ------------------------------------------------------------

    def _follow_class(self, cls: type) -> str:
        known = self._known(cls)
        if known is not None:
            return known
        from featurecache.fingerprint.code.classes import class_record

        key = self.reserve(f"{cls.__module__}:{cls.__qualname__}", cls)
        self.deps[key] = class_record(self, cls, key)
        return key

    def follow_module(self, module: types.ModuleType) -> str:
        known = self._known(module)
        if known is not None:
            return known
        key = self.reserve(f"{module.__name__}:<module>", module)
        filename = str(getattr(module, "__file__", "") or "")
        sf: SourceFile | None = source_file(filename, vars(module)) if filename else None
        file = display_path(filename, module.__name__)
        if sf is None:
            self.finding(f"source of module `{module.__name__}` is unavailable", True)
            digest = hash_struct(["module", module.__name__, "<no source>"])
        else:
            digest = hash_struct(["module", sf.digest(sf.tree)])
        self.deps[key] = {"kind": "module", "digest": digest, "file": file, "line": 1}
        return key


def function_key(func: types.FunctionType) -> str:
    """``module:qualname`` where the function's code was written (``functools.wraps`` copies
    ``__module__`` and ``__qualname__`` of the wrapped function onto the wrapper)."""
    module = func.__globals__.get("__name__", func.__module__)
    return f"{module}:{func.__code__.co_qualname}"
