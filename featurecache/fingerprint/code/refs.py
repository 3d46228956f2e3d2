"""What a piece of code refers to: global names with their attribute chains, imports made inside
a function body, names read by a class body, and constructs that cannot be followed statically.

Global references come from the bytecode (the compiler has already decided which names are
global, so local variables that shadow a global never count); attribute chains are the
``LOAD_ATTR``/``LOAD_METHOD`` instructions right after the global load (``m.sub.f`` →
``("m", "sub", "f")``). Everything else is read from the AST.
"""

from __future__ import annotations

import ast
import dis
from collections.abc import Iterator
from dataclasses import dataclass
from types import CodeType

from featurecache.fingerprint.code.normalise import FunctionNode

Chain = tuple[str, ...]

_GLOBAL_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS"})
_ATTR_LOADS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
# Builtins that read or run code chosen at run time.
_DYNAMIC_BUILTINS = frozenset({"eval", "exec", "globals", "locals", "vars", "__import__"})


def global_chains(code: CodeType) -> list[Chain]:
    """Global names read by ``code`` and the code nested in it, with attribute chains."""
    seen: dict[Chain, None] = {}
    for nested in _walk(code):
        chain: list[str] = []
        for ins in dis.get_instructions(nested):
            if ins.opname in _GLOBAL_LOADS and isinstance(ins.argval, str):
                _flush(chain, seen)
                chain = [ins.argval]
            elif chain and ins.opname in _ATTR_LOADS and isinstance(ins.argval, str):
                chain.append(ins.argval)
            elif ins.opname not in ("CACHE", "EXTENDED_ARG"):
                _flush(chain, seen)
                chain = []
        _flush(chain, seen)
    return list(seen)


def _flush(chain: list[str], seen: dict[Chain, None]) -> None:
    if chain:
        seen.setdefault(tuple(chain), None)


def _walk(code: CodeType) -> Iterator[CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _walk(const)


def global_names_in_bytecode(code: CodeType) -> set[str]:
    return {chain[0] for chain in global_chains(code)}


@dataclass(frozen=True)
class LocalImport:
    """``import a.b as c`` / ``from .m import f as g`` inside a function body."""

    alias: str
    module: str  # absolute or relative ("." prefix kept) module name
    level: int
    attr: str | None  # the imported name for ``from m import attr``; None for ``import m``
    bind_top: bool  # ``import a.b`` (no alias) binds ``a``
    line: int


def local_imports(node: ast.AST) -> list[LocalImport]:
    found: list[LocalImport] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Import):
            for alias in sub.names:
                bind_top = alias.asname is None
                name = alias.asname or alias.name.partition(".")[0]
                found.append(LocalImport(name, alias.name, 0, None, bind_top, sub.lineno))
        elif isinstance(sub, ast.ImportFrom):
            for alias in sub.names:
                if alias.name == "*":
                    continue
                found.append(
                    LocalImport(
                        alias.asname or alias.name,
                        sub.module or "",
                        sub.level,
                        alias.name,
                        False,
                        sub.lineno,
                    )
                )
    return found


def name_chains(node: ast.AST, names: set[str] | None = None) -> list[tuple[Chain, int]]:
    """``(chain, line)`` for every load of a name (restricted to ``names`` when given)."""
    found: dict[Chain, int] = {}

    def visit(sub: ast.AST) -> None:
        chain = _attribute_chain(sub)
        if chain is not None and (names is None or chain[0] in names):
            found.setdefault(chain, getattr(sub, "lineno", 0))
            return
        for child in ast.iter_child_nodes(sub):
            visit(child)

    visit(node)
    return list(found.items())


def _attribute_chain(node: ast.AST) -> Chain | None:
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        return (node.id, *reversed(attrs))
    return None


def class_body_chains(node: ast.ClassDef) -> list[tuple[Chain, int]]:
    """Names the class statement itself evaluates: bases, keywords, decorators, class-level
    expressions, and the decorators and defaults of its methods (not the method bodies, whose
    references come from their bytecode). Names the class body binds are left out."""
    bound: set[str] = set()
    parts: list[ast.AST] = [*node.bases, *node.keywords, *node.decorator_list]
    for stmt in node.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            parts.extend(stmt.decorator_list)
            parts.extend(stmt.args.defaults)
            parts.extend(d for d in stmt.args.kw_defaults if d is not None)
            bound.add(stmt.name)
        elif isinstance(stmt, ast.ClassDef):
            parts.extend(class_body_parts(stmt))
            bound.add(stmt.name)
        else:
            parts.append(stmt)
            for sub in ast.walk(stmt):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    bound.add(sub.id)
    found: dict[Chain, int] = {}
    for part in parts:
        for chain, line in name_chains(part):
            if chain[0] not in bound:
                found.setdefault(chain, line)
    return list(found.items())


def class_body_parts(node: ast.ClassDef) -> list[ast.AST]:
    return [*node.bases, *node.keywords, *node.decorator_list]


@dataclass(frozen=True)
class DynamicConstruct:
    """A construct whose target is chosen at run time (``eval``, ``getattr(x, name)``…)."""

    construct: str
    line: int


def dynamic_constructs(node: FunctionNode | ast.ClassDef) -> list[DynamicConstruct]:
    found: list[DynamicConstruct] = []
    for sub in ast.walk(node):
        if not isinstance(sub, ast.Call):
            continue
        func = sub.func
        name = func.id if isinstance(func, ast.Name) else None
        attr = func.attr if isinstance(func, ast.Attribute) else None
        if name in _DYNAMIC_BUILTINS:
            found.append(DynamicConstruct(f"{name}()", sub.lineno))
        elif name == "getattr" and len(sub.args) >= 2 and not _is_str(sub.args[1]):
            found.append(DynamicConstruct(f"{name}(x, <non-constant name>)", sub.lineno))
        elif "import_module" in (name, attr) and (not sub.args or not _is_str(sub.args[0])):
            found.append(DynamicConstruct("import_module(<non-constant name>)", sub.lineno))
    return found


def dynamic_constructs_in_bytecode(code: CodeType) -> list[DynamicConstruct]:
    line = code.co_firstlineno
    return [
        DynamicConstruct(f"{name}()", line)
        for name in sorted(global_names_in_bytecode(code) & _DYNAMIC_BUILTINS)
    ]


def constant_imports(node: FunctionNode) -> list[tuple[str, int]]:
    """``importlib.import_module("literal")`` calls: the module is a dependency."""
    found: list[tuple[str, int]] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name == "import_module" and sub.args and _is_str(sub.args[0]):
                arg = sub.args[0]
                assert isinstance(arg, ast.Constant)
                found.append((str(arg.value), sub.lineno))
    return found


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)
