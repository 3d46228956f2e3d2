"""What the *data* of an object is, for objects passed to a feature: config objects, ``self``
of a method, and instances of the user's own classes.

* dataclasses, ``NamedTuple``s, attrs classes and pydantic models: their declared fields, in
  declaration order (every field counts, ``compare=False``/``repr=False``/``exclude=True``
  ones too: whether a field takes part in equality says nothing about whether it changes a
  result). pydantic ``extra`` fields count (sorted by name); private attributes
  (``PrivateAttr``, ``_name``) and attributes a dataclass sets outside its fields do not;
* an instance of a class defined in user code (and ``SimpleNamespace`` /
  ``argparse.Namespace``): every instance attribute, from ``__dict__`` and ``__slots__``,
  sorted by name, except ``functools.cached_property`` values (computed from the others by
  code). Its class and every base must be written in Python: a user class built on a C type
  (an ``Exception``, a C extension type) keeps state the attributes do not show, so it is
  refused;
* pydantic URL types: their text.

Class attributes, methods and properties are code, not data: the key covers them through the
class's code identity (``fingerprint.code``), computed for the object's class like for any
class a feature uses. Nothing here imports attrs or pydantic: they are recognised by
duck-typing (``__attrs_attrs__``, ``_fields``) and through ``sys.modules``.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from dataclasses import dataclass
from typing import Any, Final

from featurecache.frames import is_instance


class _Unset:
    """An attribute declared (a slot, an ``init=False`` field) but never assigned."""

    def __repr__(self) -> str:
        return "<unset>"


UNSET: Final = _Unset()
# ``Py_TPFLAGS_HEAPTYPE``: set on classes made by a ``class`` statement, not on C types.
_HEAPTYPE = 1 << 9
# Static (C) bases that hold no instance state of their own.
_STATELESS_BASES: frozenset[type] = frozenset({object, typing.Generic})
_URL_TYPES = (
    ("pydantic.networks", "_BaseUrl"),
    ("pydantic.networks", "_BaseMultiHostUrl"),
    ("pydantic_core", "Url"),
    ("pydantic_core", "MultiHostUrl"),
)
_NAMESPACES = (types.SimpleNamespace,)
_OWN_PACKAGE = "featurecache."
# The frame classes of polars, pandas and pyarrow (exactly those, not user subclasses), learnt
# on first sight: a frame argument skips the config-object probes on every call.
_FRAME_LIBRARIES = frozenset({"polars", "pandas", "pyarrow"})
_FRAME_NAMES = frozenset({"DataFrame", "LazyFrame", "Table"})
_FRAME_TYPES: set[type] = set()

_BUILTIN_TYPES: frozenset[type] = frozenset(
    {type(None), bool, int, float, str, bytes, list, tuple, dict, set, frozenset}
)


@dataclass(frozen=True)
class ObjectFields:
    """The data of one object: which rule found it and its ``(name, value)`` pairs."""

    # "dataclass" | "namedtuple" | "attrs" | "pydantic" | "instance" | "text"
    rule: str
    cls: type
    fields: tuple[tuple[str, object], ...]

    @property
    def qualname(self) -> str:
        return qualified_name(self.cls)


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def config_fields(value: object) -> ObjectFields | None:
    """The fields of a dataclass, NamedTuple, attrs class or pydantic model instance (or the
    text of a pydantic URL); None for anything else. Checked before the built-in rules, as a
    NamedTuple is also a tuple."""
    cls = type(value)
    if cls in _BUILTIN_TYPES or cls in _FRAME_TYPES or isinstance(value, type | enum.Enum):
        # Fast path for the common values and frames; a class is code; an Enum member (even
        # of a dataclass mixin) is a value.
        return None
    if cls.__module__.split(".", 1)[0] in _FRAME_LIBRARIES and cls.__name__ in _FRAME_NAMES:
        _FRAME_TYPES.add(cls)  # polars/pandas/pyarrow's own frame classes are never configs
        return None
    if cls.__module__.startswith(_OWN_PACKAGE):
        return None  # featurecache's own input types (S3Path, DvcPath) have their own rules
    if isinstance(value, tuple):
        names = getattr(cls, "_fields", None)
        if isinstance(names, tuple) and all(isinstance(n, str) for n in names):
            items = [tuple.__getitem__(value, i) for i in range(tuple.__len__(value))]
            return ObjectFields("namedtuple", cls, tuple(zip(names, items, strict=False)))
        return None
    # Only a class decorated itself: an undecorated subclass of a dataclass (or attrs class)
    # inherits the base's field list but may set attributes of its own, so it is an instance.
    if dataclasses.is_dataclass(cls) and "__dataclass_fields__" in vars(cls):
        names = tuple(f.name for f in dataclasses.fields(cls))
        return ObjectFields("dataclass", cls, _read(value, names))
    declared = vars(cls).get("__attrs_attrs__")
    if isinstance(declared, tuple):
        names = tuple(str(a.name) for a in declared)
        return ObjectFields("attrs", cls, _read(value, names))
    if is_instance(value, "pydantic.main", "BaseModel"):
        return ObjectFields("pydantic", cls, _pydantic_fields(value))
    if is_instance(value, "pydantic.v1.main", "BaseModel"):
        return ObjectFields("pydantic", cls, _read(value, tuple(getattr(cls, "__fields__", {}))))
    if any(is_instance(value, module, name) for module, name in _URL_TYPES):
        return ObjectFields("text", cls, (("text", str(value)),))
    return None


def _read(value: object, names: tuple[str, ...]) -> tuple[tuple[str, object], ...]:
    return tuple((name, getattr(value, name, UNSET)) for name in names)


def _pydantic_fields(value: Any) -> tuple[tuple[str, object], ...]:
    declared = tuple(type(value).model_fields)  # on the class: instance access is deprecated
    fields = _read(value, declared)
    extra = getattr(value, "__pydantic_extra__", None) or {}
    return fields + tuple((f"extra:{name}", extra[name]) for name in sorted(extra))


def instance_fields(value: object) -> ObjectFields | None:
    """The attributes of an instance of a user class (or a namespace); None when ``value`` is
    not such an instance or its state is not all in its attributes."""
    cls = type(value)
    if isinstance(value, _NAMESPACES) or (cls.__module__, cls.__name__) == (
        "argparse",
        "Namespace",
    ):
        return ObjectFields("instance", cls, tuple(sorted(vars(value).items())))
    if not is_user_class(cls) or not python_defined(cls):
        return None
    return ObjectFields("instance", cls, _attributes(value, cls))


def is_user_class(cls: type) -> bool:
    from featurecache.fingerprint.code.libraries import origin_of_module

    if isinstance(cls, type) and issubclass(cls, type):
        return False  # a metaclass instance is a class: code, not data
    return origin_of_module(cls.__module__) == "user"


def python_defined(cls: type) -> bool:
    """Every class of the MRO is made by a ``class`` statement (or holds no state)."""
    return all(_python_or_stateless(k) for k in cls.__mro__)


def _python_or_stateless(klass: type) -> bool:
    return klass in _STATELESS_BASES or bool(klass.__flags__ & _HEAPTYPE)


def _attributes(value: object, cls: type) -> tuple[tuple[str, object], ...]:
    found: dict[str, object] = {}
    for name, item in (getattr(value, "__dict__", None) or {}).items():
        if not _cached_property(cls, name):
            found[name] = item
    for klass in cls.__mro__:
        for slot in _slots(klass):
            if slot not in ("__dict__", "__weakref__"):
                name = _mangled(klass, slot)
                found[name] = getattr(value, name, UNSET)
    return tuple(sorted(found.items()))


def _cached_property(cls: type, name: str) -> bool:
    return any(isinstance(vars(k).get(name), functools.cached_property) for k in cls.__mro__)


def _slots(klass: type) -> tuple[str, ...]:
    slots = vars(klass).get("__slots__", ())
    return (slots,) if isinstance(slots, str) else tuple(slots)


def _mangled(klass: type, name: str) -> str:
    if name.startswith("__") and not name.endswith("__"):
        return f"_{klass.__name__.lstrip('_')}{name}"
    return name


def class_code_digest(cls: type) -> str:
    """The code identity of the object's class (methods, properties, class attributes, bases):
    a method a feature calls on its argument changes the result as much as a field does.
    Memoised and re-validated by ``code_identity`` (tens of microseconds per call)."""
    from featurecache.fingerprint.code.identity import code_identity

    return code_identity(cls).digest


def refusal_hint(value: object) -> str:
    """What to do about a value no rule accepts, said first in its ``UnsupportedInputError``."""
    cls = type(value)
    short = cls.__qualname__
    register = (
        f"teach featurecache the type with featurecache.register_fingerprint({short}, fn), "
        "fn returning the plain values that determine the result"
    )
    if is_user_class(cls) and not python_defined(cls):
        base = next(k for k in cls.__mro__ if not _python_or_stateless(k))
        return (
            f"Make {short} a dataclass, or {register}: it inherits from "
            f"{base.__module__}.{base.__qualname__}, whose state its attributes do not show."
        )
    if cls is object:
        return "Pass plain values, frames or paths instead (or convert the object to one)."
    if hasattr(value, "__dict__") or hasattr(cls, "__slots__"):
        return (
            f"Pass the plain values, frames or paths it holds, or {register}: {short} comes "
            "from a library, and library objects can hold state their attributes do not show."
        )
    return f"Pass plain values, frames or paths instead, or {register}."
