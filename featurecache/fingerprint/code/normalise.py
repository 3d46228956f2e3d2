"""Normalised code digests: the AST canonical walk, locating a function's or class's source, and
the bytecode fallback.

What is normalised (a function's or class's digest is computed from its definition node, found
in its source file):

* The source is parsed with ``ast.parse``; comments, blank lines, line breaks, indentation,
  parentheses, quote style and trailing commas are not in the AST, so they never count.
* Docstrings are dropped: the first statement of a module, class or function body (nested ones
  included) when it is a string literal. Other string statements are kept.
* Positions (line and column numbers), ``ctx`` (Load/Store) markers, ``type_comment`` and the
  ``u`` string prefix are left out; fields that are None or empty lists are left out, so the
  digest does not change when a newer Python adds an empty field to a node.
* The feature's own ``@cached_feature(...)`` decorator is dropped (its arguments are hashed as
  options); every other decorator, default expression, annotation, and nested function, class or
  lambda is kept: anything that can change behaviour counts.
* The node is encoded as nested lists ``[NodeType, [field, value], …]`` and hashed with
  ``hash_struct(["code-ast", …])``.

Source is trusted only when it matches the code that is running: the file is compiled again
and the code object at the same qualified name and first line must be identical (bytecode,
names, constants) to the live one. Otherwise (file edited since import, source unavailable:
REPL, ``exec``, ``python -c``) the live bytecode is hashed instead, with names and constants,
and the Python ``major.minor`` version, since bytecode differs between Python versions.
"""

from __future__ import annotations
import __future__

import ast
import functools
import linecache
import operator
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

from featurecache.hashing import canonical_encode, digest_bytes, hash_struct

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
_DOC_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
_SKIPPED_FIELDS = frozenset({"ctx", "type_comment", "kind"})
_FUTURE_FLAGS = functools.reduce(
    operator.or_, (getattr(__future__, name).compiler_flag for name in __future__.all_feature_names)
)
PYTHON_VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"


@dataclass
class SourceFile:
    """One parsed and compiled source file (cached per file content)."""

    filename: str
    lines: list[str]
    tree: ast.Module
    _by_line: dict[int, list[ast.AST]] = field(default_factory=dict)
    # future flags -> (qualname, first line) -> code objects compiled from this source
    _codes: dict[int, dict[tuple[str, int], list[CodeType]]] = field(default_factory=dict)
    _classes: dict[str, list[ast.ClassDef]] = field(default_factory=dict)
    _assigned: dict[str, int] = field(default_factory=dict)
    _digests: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for qualname, node in _scoped_nodes(self.tree, ""):
            if isinstance(node, ast.ClassDef):
                self._classes.setdefault(qualname, []).append(node)
            else:
                self._by_line.setdefault(first_line(node), []).append(node)
        for stmt in self.tree.body:
            targets = _assigned_names(stmt)
            for name in targets:
                self._assigned.setdefault(name, stmt.lineno)
        for lam in ast.walk(self.tree):
            if isinstance(lam, ast.Lambda):
                self._by_line.setdefault(lam.lineno, []).append(lam)

    def function_node(self, code: CodeType) -> FunctionNode | None:
        """The definition node of ``code``, if the source on disk is what is running."""
        candidates = [
            node
            for node in self._by_line.get(code.co_firstlineno, [])
            if isinstance(node, ast.Lambda) == (code.co_name == "<lambda>")
            and (isinstance(node, ast.Lambda) or getattr(node, "name", None) == code.co_name)
        ]
        compiled = self._compiled(code.co_flags & _FUTURE_FLAGS).get(
            (code.co_qualname, code.co_firstlineno), []
        )
        if len(candidates) != 1 or not any(same_code(code, c) for c in compiled):
            return None
        node = candidates[0]
        assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        return node

    def _compiled(self, flags: int) -> dict[tuple[str, int], list[CodeType]]:
        # Code run by exec() or a notebook can carry __future__ flags its text does not state.
        if flags not in self._codes:
            index: dict[tuple[str, int], list[CodeType]] = {}
            try:
                module = compile(self.tree, self.filename, "exec", flags, dont_inherit=True)
            except (SyntaxError, ValueError):
                module = None
            for code in _walk_codes(module) if module is not None else ():
                index.setdefault((code.co_qualname, code.co_firstlineno), []).append(code)
            self._codes[flags] = index
        return self._codes[flags]

    def digest(self, node: ast.AST) -> str:
        """``node_digest`` of a node of this file, memoised."""
        if id(node) not in self._digests:
            self._digests[id(node)] = node_digest(node)
        return self._digests[id(node)]

    def assignment_line(self, name: str) -> int | None:
        """The line of the first module-level statement that binds ``name``."""
        return self._assigned.get(name)

    def class_nodes(self, qualname: str) -> list[ast.ClassDef]:
        return list(self._classes.get(qualname, []))

    def segment(self, node: ast.AST) -> str:
        start = first_line(node)
        end = getattr(node, "end_lineno", None) or start
        return "".join(self.lines[start - 1 : end])


def first_line(node: ast.AST) -> int:
    """The first line of a definition, decorators included (as ``co_firstlineno``)."""
    decorators = getattr(node, "decorator_list", None) or []
    lines: list[int] = [d.lineno for d in decorators] + [getattr(node, "lineno", 0)]
    return min(lines)


def _assigned_names(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [stmt.name]
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        return [a.asname or a.name.partition(".")[0] for a in stmt.names]
    if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return []


def _scoped_nodes(node: ast.AST, prefix: str) -> Iterator[tuple[str, ast.AST]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + child.name, child
            yield from _scoped_nodes(child, f"{prefix}{child.name}.<locals>.")
        elif isinstance(child, ast.ClassDef):
            yield prefix + child.name, child
            yield from _scoped_nodes(child, f"{prefix}{child.name}.")
        else:
            yield from _scoped_nodes(child, prefix)


def _walk_codes(code: CodeType) -> Iterator[CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _walk_codes(const)


# filename -> (content digest, parsed file): only the latest content of each file is kept.
_FILES: dict[str, tuple[str, SourceFile | None]] = {}


def source_file(
    filename: str, module_globals: Mapping[str, Any] | None = None
) -> SourceFile | None:
    """The parsed source of ``filename`` as it is now. Notebook cells (``<ipython-input-…>``,
    ``/tmp/ipykernel_…/….py``) are found through linecache, where IPython registers them;
    ``<string>`` / ``<stdin>`` code has no source."""
    if not filename:
        return None
    linecache.checkcache(filename)
    lines = linecache.getlines(filename, dict(module_globals) if module_globals else None)
    if not lines:
        return None
    text = "".join(lines)
    content = digest_bytes(text.encode("utf-8", "surrogatepass"))
    cached = _FILES.get(filename)
    if cached is None or cached[0] != content:
        cached = (content, _parse(filename, lines, text))
        _FILES[filename] = cached
    return cached[1]


def _parse(filename: str, lines: list[str], text: str) -> SourceFile | None:
    try:
        tree = ast.parse(text, filename=filename)
    except (SyntaxError, ValueError):
        return None
    return SourceFile(filename=filename, lines=list(lines), tree=tree)


def same_code(live: CodeType, compiled: CodeType) -> bool:
    """Whether two code objects were compiled from the same source (positions ignored)."""
    if (
        live.co_code != compiled.co_code
        or live.co_names != compiled.co_names
        or live.co_varnames != compiled.co_varnames
        or live.co_freevars != compiled.co_freevars
        or live.co_cellvars != compiled.co_cellvars
        or live.co_argcount != compiled.co_argcount
        or live.co_posonlyargcount != compiled.co_posonlyargcount
        or live.co_kwonlyargcount != compiled.co_kwonlyargcount
        or live.co_flags != compiled.co_flags
        or len(live.co_consts) != len(compiled.co_consts)
    ):
        return False
    for a, b in zip(live.co_consts, compiled.co_consts, strict=True):
        if isinstance(a, CodeType) or isinstance(b, CodeType):
            if not (isinstance(a, CodeType) and isinstance(b, CodeType) and same_code(a, b)):
                return False
        elif _const_key(a) != _const_key(b):
            return False
    return True


def _const_key(value: object) -> object:
    if isinstance(value, tuple):
        return ("tuple", tuple(_const_key(v) for v in value))
    if isinstance(value, frozenset):
        return ("frozenset", tuple(sorted(repr(_const_key(v)) for v in value)))
    if isinstance(value, float | complex):
        return (type(value).__name__, repr(value))
    return (type(value).__name__, value)


# -- the canonical AST walk -------------------------------------------------------------

DecoratorFilter = Callable[[ast.expr], bool]


def node_digest(node: ast.AST, drop_decorator: DecoratorFilter | None = None) -> str:
    """Digest of a definition node, normalised as the module docstring says."""
    return hash_struct(["code-ast", encode_node(node, drop_decorator)])


def encode_node(node: ast.AST, drop_decorator: DecoratorFilter | None = None) -> list[Any]:
    out: list[Any] = [type(node).__name__]
    for name in node._fields:
        if name in _SKIPPED_FIELDS:
            continue
        value: Any = getattr(node, name, None)
        if name == "body" and isinstance(node, _DOC_OWNERS):
            value = strip_docstring(value)
        elif name == "decorator_list" and drop_decorator is not None:
            value = [d for d in value if not drop_decorator(d)]
        if value is None or (isinstance(value, list) and not value):
            continue
        out.append([name, _encode_field(value)])
    return out


def _encode_field(value: object) -> object:
    # Nested nodes keep their own docstring stripping; only the root drops a decorator.
    if isinstance(value, ast.AST):
        return encode_node(value)
    if isinstance(value, list):
        return [_encode_field(item) for item in value]
    if isinstance(value, complex):
        return ["complex", value.real, value.imag]
    if value is Ellipsis:
        return ["Ellipsis"]
    return value


def strip_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        return body[1:]
    return body


def source_digest(source: str) -> str:
    """Digest of a module's source text, normalised (comments, docstrings, formatting out)."""
    return node_digest(ast.parse(source))


# -- bytecode fallback ------------------------------------------------------------------


def bytecode_digest(code: CodeType) -> str:
    """Digest of a live code object: bytecode, names, constants (Python version included)."""
    return hash_struct(["code-bytecode", PYTHON_VERSION, _encode_code(code)])


def _encode_code(code: CodeType) -> list[object]:
    return [
        code.co_name,
        code.co_code,
        list(code.co_names),
        list(code.co_varnames),
        list(code.co_freevars),
        list(code.co_cellvars),
        [code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags],
        [_encode_const(c) for c in code.co_consts],
    ]


def _encode_const(value: object) -> object:
    if isinstance(value, CodeType):
        return ["code", _encode_code(value)]
    if isinstance(value, tuple):
        return ["tuple", [_encode_const(v) for v in value]]
    if isinstance(value, frozenset):
        return ["frozenset", sorted(canonical_encode(_encode_const(v)) for v in value)]
    if isinstance(value, complex):
        return ["complex", value.real, value.imag]
    if value is Ellipsis:
        return ["Ellipsis"]
    return value
