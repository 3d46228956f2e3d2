"""The return-annotation check at decoration time: a feature whose annotation says it returns
what the cache cannot store is refused when it is decorated, not after its first (maybe long)
run.

The check refuses only what it can prove: an annotation that resolves, completely or in part,
to a type no storable value can have. ``Any``, ``object``, a ``TypeVar``, no annotation and
every name it cannot resolve (a forward reference to a module imported only under
``TYPE_CHECKING``) are accepted, and the value is checked when the function returns.

Storable (what ``results.codec`` stores): polars DataFrame / LazyFrame / Series, pandas
DataFrame / Series, pyarrow Table, numpy ndarray and numpy scalars, Python scalars of exactly
these types (None, bool, int, float, str, bytes, date, datetime, time, timedelta, Decimal: a
subclass such as an ``IntEnum`` would come back as its base class), and tuples (NamedTuples
too), lists and ``dict[str, …]`` of these, nested; unions and ``Optional`` of storable types.
Library types are recognised by package and class name, so pandas and polars are never
imported to check an annotation.
"""

from __future__ import annotations

import ast
import builtins
import collections.abc
import datetime
import decimal
import sys
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from featurecache.errors import UnsupportedOutputError

STORABLE_RESULTS = (
    "polars DataFrame / LazyFrame / Series",
    "pandas DataFrame / Series",
    "pyarrow Table",
    "numpy ndarray and numpy scalars",
    "None, bool, int, float, str, bytes, date, datetime, time, timedelta, Decimal",
    "tuples (NamedTuples too), lists and dicts with str keys of these",
)

# (top-level package, class qualname) of the library result types; a subclass counts too.
_LIBRARY_LEAVES = frozenset(
    {
        ("polars", "DataFrame"),
        ("polars", "LazyFrame"),
        ("polars", "Series"),
        ("pandas", "DataFrame"),
        ("pandas", "Series"),
        ("pyarrow", "Table"),
        ("numpy", "ndarray"),
        ("numpy", "generic"),  # numpy scalars: np.float64, np.int64, np.datetime64, …
    }
)
_SCALARS: tuple[type, ...] = (
    type(None),
    bool,
    int,
    float,
    str,
    bytes,
    datetime.date,
    datetime.datetime,
    datetime.time,
    datetime.timedelta,
    decimal.Decimal,
)
_CONTAINERS: tuple[type, ...] = (tuple, list, dict)
_UNCHECKED = (Any, object, typing.NoReturn, typing.Never, typing.Self, typing.LiteralString)


class UnsupportedReturnAnnotationError(UnsupportedOutputError):
    """A feature's return annotation names a type featurecache cannot store (raised by
    ``@cached_feature`` when it decorates the function)."""

    def __init__(self, feature: str, annotation: str, culprit: str, fix: str) -> None:
        self.feature = feature
        self.annotation = annotation
        self.type_name = culprit
        self.supported = STORABLE_RESULTS
        self.fix = fix
        where = "" if culprit == annotation else f" {culprit} in it"
        # Not the parent's message: nothing has run yet, the annotation is the culprit.
        TypeError.__init__(
            self,
            f"feature {feature!r} is annotated to return {annotation}, but featurecache "
            f"cannot store{where or ' it'}. {fix} Storable results: "
            f"{'; '.join(STORABLE_RESULTS)}.",
        )


class _Unresolved:
    """Stands for a name an annotation uses that cannot be resolved: always accepted."""


def check_return_annotation(func: Callable[..., Any]) -> None:
    """Raise ``UnsupportedReturnAnnotationError`` when ``func``'s return annotation names a
    type no storable value can have; accept everything else (see the module docstring)."""
    raw = getattr(func, "__annotations__", {}).get("return", _Unresolved)
    if raw is _Unresolved:
        return
    annotation = _resolve(func, raw)
    problem = _problem(annotation)
    if problem is not None:
        culprit, fix = problem
        name = getattr(func, "__qualname__", repr(func))
        # A string annotation is shown as written (``pd.DataFrame``, names it could not resolve).
        shown = raw if isinstance(raw, str) else _describe(annotation)
        raise UnsupportedReturnAnnotationError(name, shown, culprit, fix)


# -- resolving ------------------------------------------------------------------------------


def _resolve(func: Callable[..., Any], raw: object) -> object:
    """The return annotation as typing objects: ``typing.get_type_hints`` where it can
    evaluate it, else a lenient evaluation of the string in which unknown names are
    ``_Unresolved`` (so ``dict[int, "pd.DataFrame"]`` still shows its ``int`` keys)."""
    try:
        return typing.get_type_hints(func).get("return", _Unresolved)
    except Exception:  # noqa: BLE001 - any failure to evaluate means "cannot resolve all of it"
        pass
    namespace = getattr(_innermost(func), "__globals__", {})
    return _lenient(raw, namespace)


def _innermost(func: Callable[..., Any]) -> Callable[..., Any]:
    """The innermost function of a ``functools.wraps`` chain (whose globals the names of
    the annotation refer to)."""
    for _ in range(32):
        inner = getattr(func, "__wrapped__", None)
        if not callable(inner):
            break
        func = inner
    return func


def _lenient(value: object, namespace: Mapping[str, Any]) -> object:
    if isinstance(value, typing.ForwardRef):
        value = value.__forward_arg__
    if not isinstance(value, str):
        return value
    try:
        expr = ast.parse(value, mode="eval").body
    except SyntaxError:
        return _Unresolved
    return _evaluate(expr, namespace)


def _evaluate(node: ast.expr, namespace: Mapping[str, Any]) -> object:
    """A type expression's value from its AST; what cannot be looked up is ``_Unresolved``.
    Only names, attributes, subscripts, ``|`` and constants are evaluated: nothing runs."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            return _lenient(node.value, namespace)
        return node.value if node.value is None else _Unresolved
    if isinstance(node, ast.Name):
        if node.id in namespace:
            return namespace[node.id]
        return getattr(builtins, node.id, _Unresolved)
    if isinstance(node, ast.Attribute):
        owner = _evaluate(node.value, namespace)
        if owner is _Unresolved:
            return _Unresolved
        return getattr(owner, node.attr, _Unresolved)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _Union((_evaluate(node.left, namespace), _evaluate(node.right, namespace)))
    if isinstance(node, ast.Subscript):
        origin = _evaluate(node.value, namespace)
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        args = tuple(_evaluate(item, namespace) for item in items)
        return _subscript(origin, args)
    if isinstance(node, ast.List):
        return [_evaluate(item, namespace) for item in node.elts]  # Callable[[...], R]
    return _Unresolved


class _Union(tuple[object, ...]):
    """``A | B`` evaluated leniently (``_Unresolved | int`` is no type Python can build)."""


class _Generic(tuple[object, tuple[object, ...]]):
    """``origin[args]`` evaluated leniently, where typing refuses the arguments (a lenient
    union or ``_Unresolved`` inside ``typing.Dict[…]``): ``(origin, args)``."""


def _subscript(origin: object, args: tuple[object, ...]) -> object:
    if origin is _Unresolved:
        return _Unresolved
    try:
        return origin[args if len(args) > 1 else args[0]]  # type: ignore[index]
    except Exception:  # noqa: BLE001 - an origin that refuses these arguments: keep them
        return _Generic((origin, args))


# -- classifying ----------------------------------------------------------------------------

Problem = tuple[str, str]  # (the type that cannot be stored, what to return instead)


def _problem(annotation: object) -> Problem | None:
    """Why no value of ``annotation`` can be stored, or None when some value can (or when
    the annotation is not known well enough to say)."""
    if _unchecked(annotation):
        return None
    if isinstance(annotation, _Union):
        return _first(_problem(member) for member in annotation)
    if isinstance(annotation, typing.NewType):
        return _problem(annotation.__supertype__)
    alias_value = getattr(annotation, "__value__", None)  # ``type X = …`` (Python 3.12)
    if alias_value is not None and type(annotation).__name__ == "TypeAliasType":
        return _problem(alias_value)
    if isinstance(annotation, _Generic):
        origin, args = annotation
        return _generic_problem(annotation, _plain_origin(origin), args)
    origin = typing.get_origin(annotation)
    if origin is not None:
        return _generic_problem(annotation, origin, typing.get_args(annotation))
    if isinstance(annotation, type):
        return _class_problem(annotation, annotation)
    return None  # some other typing construct (ParamSpec args, a user object): run time


def _unchecked(annotation: object) -> bool:
    """Annotations that say nothing the check could refuse."""
    if annotation is _Unresolved or annotation is None or annotation is Ellipsis:
        return True
    if any(annotation is form for form in _UNCHECKED):
        return True
    return isinstance(annotation, typing.TypeVar | typing.ForwardRef | str)


def _plain_origin(origin: object) -> object:
    """The runtime origin of an unsubscripted typing alias (``typing.Dict`` -> ``dict``)."""
    if origin is typing.Optional:
        return typing.Union
    return getattr(origin, "__origin__", origin)


def _generic_problem(annotation: object, origin: object, args: tuple[Any, ...]) -> Problem | None:
    if origin is typing.Annotated or origin is typing.ClassVar or origin is typing.Final:
        return _problem(args[0]) if args else None
    if origin is typing.Union or origin is types.UnionType:
        return _first(_problem(member) for member in args)
    if origin is typing.Literal:
        if all(isinstance(value, _SCALARS) for value in args):
            return None
        return _describe(annotation), "Literal values must be str, bytes, int, bool or None."
    if not isinstance(origin, type):
        return None
    if origin is tuple or _holds_a(list, origin) or _holds_a(tuple, origin):
        # tuple[A, B], list[A], Sequence[A], Iterable[A]: a list or a tuple can be one.
        return _first(_problem(arg) for arg in args)
    if _holds_a(dict, origin):
        return _mapping_problem(annotation, args)
    # numpy.ndarray[shape, dtype] (numpy.typing.NDArray), a user generic class, Iterator[…]
    return _class_problem(origin, annotation)


def _mapping_problem(annotation: object, args: tuple[Any, ...]) -> Problem | None:
    if not args:
        return None
    key, value = args[0], args[-1]
    if not _str_keys(key):
        return (
            f"dict keys of type {_describe(key)}",
            "Give the dict str keys ({str(k): v for k, v in d.items()}).",
        )
    return _problem(value)


def _str_keys(key: object) -> bool:
    """Whether a dict annotated with key type ``key`` can have str keys."""
    if _unchecked(key) or isinstance(key, _Generic):
        return True
    if isinstance(key, _Union):
        return all(_str_keys(member) for member in key)
    origin = typing.get_origin(key)
    if origin is typing.Union or origin is types.UnionType:
        return all(_str_keys(member) for member in typing.get_args(key))
    if origin is typing.Literal:
        return all(isinstance(value, str) for value in typing.get_args(key))
    if origin is typing.Annotated:
        return _str_keys(typing.get_args(key)[0])
    if isinstance(key, typing.NewType):
        return _str_keys(key.__supertype__)
    if not isinstance(key, type):
        return True
    # str, a str subclass (a str Enum), or a supertype of str (Hashable).
    return issubclass(key, str) or _holds_a(str, key)


def _class_problem(cls: type, annotation: object) -> Problem | None:
    """A plain class is storable when its instances can be: it is (a subclass of) a
    storable type, or a supertype of one (``numbers.Number``, ``Sequence``)."""
    if cls in _SCALARS or any(_is_leaf(base) for base in cls.__mro__):
        return None
    if any(_holds_a(leaf, cls) for leaf in (*_SCALARS, *_CONTAINERS, *_loaded_leaves())):
        return None
    return _describe(annotation), _advice(cls)


def _advice(cls: type) -> str:
    if issubclass(cls, collections.abc.Iterator):
        return "Return a list (or a tuple) instead of an iterator or generator."
    if issubclass(cls, collections.abc.Set):
        return "Return a sorted list instead of a set."
    base = next((scalar for scalar in _SCALARS if issubclass(cls, scalar)), None)
    if base is not None:
        return (
            f"Return a plain {base.__name__} ({base.__name__}(value)): a subclass would come "
            "back as its base class, so only exact scalar types are stored."
        )
    if _library_key(cls) == ("pandas", "Index"):
        return "Return it as a Series (index.to_series()) or an array (index.to_numpy())."
    return (
        "Return the data it holds (a frame, an array, scalars or a dict of them), or drop "
        "the return annotation to have the value checked at run time."
    )


def _is_leaf(cls: type) -> bool:
    """Whether instances of a subclass of ``cls`` can be stored (containers: a NamedTuple,
    an OrderedDict; library types; not scalars, which are stored by exact type)."""
    return cls in _CONTAINERS or _library_key(cls) in _LIBRARY_LEAVES


def _library_key(cls: type) -> tuple[str, str]:
    return (str(getattr(cls, "__module__", "")).split(".")[0], cls.__qualname__)


def _is_library(cls: type) -> bool:
    return _library_key(cls)[0] in {package for package, _ in _LIBRARY_LEAVES}


def _loaded_leaves() -> Iterator[type]:
    """The library result classes whose package is already imported (an annotation that
    names a supertype of one, e.g. pandas' ``NDFrame``, has imported it), never importing."""
    for package, name in sorted(_LIBRARY_LEAVES):
        cls = getattr(sys.modules.get(package), name, None)
        if isinstance(cls, type):
            yield cls


def _holds_a(leaf: type, cls: type) -> bool:
    """Whether an instance of ``leaf`` is an instance of ``cls`` (abstract classes included)."""
    try:
        return cls is not object and issubclass(leaf, cls)
    except TypeError:  # a Protocol that is not runtime-checkable, a special form
        return True


def _first(problems: Iterator[Problem | None]) -> Problem | None:
    return next((p for p in problems if p is not None), None)


def _describe(annotation: object) -> str:
    """The annotation as a user would write it, library classes by their package's name
    (``pandas.DataFrame``, not ``pandas.core.frame.DataFrame``)."""
    if isinstance(annotation, _Union):
        return " | ".join(_describe(member) for member in annotation)
    if isinstance(annotation, _Generic):
        origin, args = annotation
        return f"{_describe(origin)}[{', '.join(_describe(arg) for arg in args)}]"
    if annotation is _Unresolved:
        return "?"
    if annotation is None or annotation is type(None):
        return "None"
    if annotation is Ellipsis:
        return "..."
    origin = typing.get_origin(annotation)
    if isinstance(origin, type) and origin is not type:
        shown = ", ".join(_describe(arg) for arg in typing.get_args(annotation))
        return f"{_describe(origin)}[{shown}]"
    if isinstance(annotation, list):
        return f"[{', '.join(_describe(item) for item in annotation)}]"
    if isinstance(annotation, type):
        module = annotation.__module__
        if module == "builtins":
            return annotation.__qualname__
        if module == "collections.abc" or _is_library(annotation):
            module = module.split(".")[0] if module != "collections.abc" else ""
        return f"{module}.{annotation.__qualname__}" if module else annotation.__qualname__
    return repr(annotation).replace("typing.", "")
