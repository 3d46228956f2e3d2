"""``register_fingerprint``: users teach the cache how to fingerprint their own types.

A registered function turns a value into something plain (str, bytes, numbers, containers,
frames, arrays, paths, config objects) that the input fingerprinter already knows; the key
then covers the value's class (module + qualified name) and the fingerprint of what the
function returned. Like ``functools.singledispatch``, a registration applies to subclasses
too, the nearest class in the MRO winning, and it takes precedence over every built-in rule
for those types. Unlike ``singledispatch``, virtual subclasses (``ABC.register``) do not
match: a registration for an ABC must not silently capture built-in types.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar, overload

from featurecache.errors import ConfigError

T = TypeVar("T")
FingerprintFn = Callable[[Any], object]

# Types whose fingerprint is fixed by featurecache: letting a registration replace it would
# change every key that holds such a value (and a function returning, say, a str for a str
# would recurse forever).
_FIXED_TYPES: frozenset[type] = frozenset(
    [
        *(object, type(None), bool, int, float, complex, str, bytes, bytearray),
        *(list, tuple, dict, set, frozenset, type),
    ]
)

_REGISTRY: dict[type, FingerprintFn] = {}
# class -> (registered class, fn) or None, resolved once per class through its MRO; cleared
# on every registration. Weak keys: classes redefined in a notebook must be able to go away.
_RESOLVED: weakref.WeakKeyDictionary[type, tuple[type, FingerprintFn] | None] = (
    weakref.WeakKeyDictionary()
)
_LOCK = threading.Lock()
_GENERATION = [0]  # bumped by each registration: a resolution raced by one is not cached


@overload
def register_fingerprint(cls: type[T], fn: Callable[[T], object]) -> Callable[[T], object]: ...


@overload
def register_fingerprint(
    cls: type[T], fn: None = None
) -> Callable[[Callable[[T], object]], Callable[[T], object]]: ...


def register_fingerprint(
    cls: type[T], fn: Callable[[T], object] | None = None
) -> Callable[[T], object] | Callable[[Callable[[T], object]], Callable[[T], object]]:
    """Fingerprint arguments of type ``cls`` (and its subclasses) by ``fn(value)``.

    ``fn`` returns a plain value the cache can fingerprint: it should contain everything about
    the value that can change a feature's result, and nothing that varies between equal values
    (ids, timestamps, caches). Register at import time of the module that defines or uses the
    type, so every process (workers included) sees the registration; an unregistered type is
    refused with an error, never hashed wrongly. Usable as a decorator:
    ``@register_fingerprint(MyModel)``. Registering a type again replaces its function.
    """
    if not isinstance(cls, type):
        raise ConfigError(
            "register_fingerprint(cls=...)",
            f"expected a class, got {type(cls).__name__} {cls!r}",
            "Pass the class itself, e.g. register_fingerprint(MyModel, fn).",
        )
    if cls in _FIXED_TYPES:
        raise ConfigError(
            "register_fingerprint(cls=...)",
            f"{cls.__qualname__} has a fixed fingerprint that every key relies on",
            "Register a subclass of your own instead.",
        )
    if fn is None:

        def decorator(func: Callable[[T], object]) -> Callable[[T], object]:
            return register_fingerprint(cls, func)

        return decorator
    if not callable(fn):
        raise ConfigError(
            "register_fingerprint(fn=...)",
            f"expected a function of one argument, got {type(fn).__name__}",
            f"Pass a function that returns the plain values of a {cls.__qualname__}.",
        )
    with _LOCK:
        _REGISTRY[cls] = fn
        _RESOLVED.clear()
        _GENERATION[0] += 1
    return fn


def registered_fingerprint(cls: type) -> tuple[type, FingerprintFn] | None:
    """``(registered class, fn)`` for values of type ``cls``, or None (the common case, which
    costs one dict check while nothing is registered)."""
    if not _REGISTRY:
        return None
    try:
        return _RESOLVED[cls]
    except KeyError:
        pass
    except TypeError:  # not weak-referenceable (some extension types): resolve every time
        return _resolve(cls)
    generation = _GENERATION[0]
    found = _resolve(cls)
    with _LOCK:
        if generation == _GENERATION[0]:
            _RESOLVED[cls] = found
    return found


def _resolve(cls: type) -> tuple[type, FingerprintFn] | None:
    for klass in cls.__mro__:
        fn = _REGISTRY.get(klass)
        if fn is not None:
            return klass, fn
    return None
