"""Imports made inside a function body (``import pipeline.util as u``, ``from .m import f``):
the imported objects are dependencies like globals, followed through their attribute chains.

Such modules are imported here if the function has not run yet (the function would import them
anyway when called); a module that cannot be imported is reported.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

from featurecache.fingerprint.code.guards import lookup_guard
from featurecache.fingerprint.code.normalise import FunctionNode
from featurecache.fingerprint.code.refs import (
    LocalImport,
    constant_imports,
    local_imports,
    name_chains,
)
from featurecache.fingerprint.code.walking import WalkerApi as Walker


def local_import_bindings(
    walker: Walker, func: types.FunctionType, node: FunctionNode, file: str
) -> dict[str, str]:
    imports = local_imports(node)
    constant = constant_imports(node)
    if not imports and not constant:
        return {}
    owner = str(func.__globals__.get("__name__", func.__module__))
    package = _package_of(func)
    namespaces: dict[str, dict[str, Any]] = {}
    for imp in imports:
        if walker.is_ignored(owner, (imp.alias,)):
            continue
        try:
            obj, module_name = _import(imp, package)
        except ImportError as exc:
            walker.finding(
                f"`import {imp.module}` in {file}:{imp.line} (in `{func.__qualname__}`) cannot "
                f"be imported to hash it ({exc})",
                True,
            )
            continue
        namespaces[imp.alias] = {"__name__": module_name, imp.alias: obj, "__builtins__": {}}
        source = sys.modules.get(module_name)
        if imp.attr is not None and source is not None:
            walker.guards.append(lookup_guard(vars(source), imp.attr, obj))
    bindings: dict[str, str] = {}
    for chain, line in name_chains(node, set(namespaces)):
        token = walker.resolve_chain(namespaces[chain[0]], chain, f"{file}:{line}")
        bindings["<import>." + ".".join(chain)] = token
    for name, line in constant:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            walker.finding(f"`import_module({name!r})` in {file}:{line} fails ({exc})", True)
            continue
        bindings[f"<import_module>.{name}"] = walker.token(module) or name
    return bindings


def _package_of(func: types.FunctionType) -> str:
    package = func.__globals__.get("__package__")
    if isinstance(package, str) and package:
        return package
    module = str(func.__globals__.get("__name__", ""))
    return module.rpartition(".")[0]


def _import(imp: LocalImport, package: str) -> tuple[object, str]:
    """The object an import statement binds, and the module it was found in."""
    if imp.level:
        base = importlib.util.resolve_name("." * imp.level + imp.module, package)
    else:
        base = imp.module
    module = sys.modules.get(base) or importlib.import_module(base)
    if imp.attr is None:
        if imp.bind_top:
            top = base.partition(".")[0]
            return sys.modules[top], top
        return module, base
    if hasattr(module, imp.attr):
        return getattr(module, imp.attr), base
    submodule = importlib.import_module(f"{base}.{imp.attr}")
    return submodule, base
