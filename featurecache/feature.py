"""``@cached_feature``, ``Feature`` and ``FeatureCache``: bind a function to a cache.

Decorating does no I/O and imports nothing heavy: the catalog and the store are opened on the
first call, so ``import featurecache`` and module imports that define features stay fast.
``cached_feature`` returns a ``Feature[P, R]``: calling it type-checks like the function.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import os
import threading
import types
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypedDict, TypeVar, Unpack, overload

from featurecache import background  # noqa: F401 - registers the at-fork hook early
from featurecache.errors import ConfigError
from featurecache.results.annotations import check_return_annotation

if TYPE_CHECKING:
    from featurecache.catalog import Catalog
    from featurecache.engine import CacheEngine
    from featurecache.fingerprint.types import CodeIdentity
    from featurecache.partitions.result import PartitionedResult
    from featurecache.settings import Settings
    from featurecache.store.base import ArtifactStore

P = ParamSpec("P")
R = TypeVar("R")


class FeatureOptionArgs(TypedDict, total=False):
    """The decorator's keyword arguments (see ``cached_feature``)."""

    name: str | None
    version: str | None
    depends_on: Sequence[object]
    ignore: Sequence[str]
    values: Sequence[str]
    strict: bool
    lazy: bool
    wait: bool


@dataclass(frozen=True)
class FeatureOptions:
    """The decorator's arguments, validated."""

    name: str | None = None
    version: str | None = None
    depends_on: tuple[object, ...] = ()
    ignore: tuple[str, ...] = ()
    # Arguments whose strings are hashed as text even when they name a file, folder, glob or
    # s3:// object (an output folder, a column name that happens to be a file name).
    values: tuple[str, ...] = ()
    strict: bool = False
    lazy: bool = False
    wait: bool = True

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> FeatureOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(
                "cached_feature",
                f"unknown option {unknown[0]!r}",
                f"Use one of {', '.join(sorted(known))}.",
            )
        name = options.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ConfigError(
                "name", f"{name!r} is not a valid feature name", "Give a non-empty str."
            )
        version = options.get("version")
        if version is not None and not isinstance(version, str):
            raise ConfigError("version", f"{version!r} is not a str", 'Give a string like "3".')
        for flag in ("strict", "lazy", "wait"):
            if flag in options and not isinstance(options[flag], bool):
                raise ConfigError(flag, f"{options[flag]!r} is not a bool", "Give True or False.")
        ignore = options.get("ignore", ())
        if isinstance(ignore, str) or not all(isinstance(item, str) for item in ignore):
            raise ConfigError("ignore", f"{ignore!r} is not a list of names", 'Give ["name", …].')
        values_option = options.get("values", ())
        if isinstance(values_option, str) or not all(
            isinstance(item, str) for item in values_option
        ):
            raise ConfigError(
                "values", f"{values_option!r} is not a list of argument names", 'Give ["name", …].'
            )
        values = {
            **options,
            "depends_on": tuple(options.get("depends_on", ())),
            "ignore": tuple(ignore),
            "values": tuple(values_option),
        }
        return cls(**values)

    def values_of(self, signature: inspect.Signature) -> tuple[str, ...]:
        """``values``, checked against the function's parameters: a misspelt name would
        silently leave the argument fingerprinted as a path."""
        unknown = [name for name in self.values if name not in signature.parameters]
        if unknown:
            raise ConfigError(
                "values",
                f"{unknown[0]!r} is not an argument of the function",
                f"Name arguments among: {', '.join(signature.parameters) or '(none)'}.",
            )
        return self.values


class FeatureCache:
    """A cache: a catalog and an artifact store, with settings.

    ``FeatureCache()`` follows the environment / pyproject / defaults;
    ``FeatureCache(catalog="postgresql+psycopg://…", store="s3://bucket/prefix")`` is explicit.
    Settings given as keywords (``compression="zstd"``) go through the same parser as the
    environment's, so a bad one is a ``ConfigError`` here. ``cache.cached_feature`` is the
    decorator bound to this cache.
    """

    def __init__(
        self,
        catalog: str | Catalog | None = None,
        store: str | Path | ArtifactStore | None = None,
        *,
        settings: Settings | None = None,
        **overrides: Any,
    ) -> None:
        from featurecache.settings import parse_overrides

        self._catalog_arg = catalog
        self._store_arg = store
        self._settings_arg = settings
        self._overrides = parse_overrides(overrides)
        self._engine: CacheEngine | None = None
        self._settings: Settings | None = None
        self._pid = os.getpid()  # the process that opened _engine
        self._lock = threading.Lock()

    @property
    def settings(self) -> Settings:
        """This cache's settings, resolved on first use (nothing is opened): explicit
        arguments, then the environment, pyproject.toml and defaults. Applies
        ``FEATURECACHE_LOG`` (``logs.configure``)."""
        if self._settings is None:
            from featurecache.logs import configure
            from featurecache.settings import load_settings, with_overrides

            extra: dict[str, Any] = dict(self._overrides)
            if isinstance(self._catalog_arg, str):
                extra["catalog_url"] = self._catalog_arg
            if isinstance(self._store_arg, str | Path):
                extra["store_url"] = str(self._store_arg)
            if self._settings_arg is None:
                settings = load_settings(**extra)
            else:
                settings = (
                    with_overrides(self._settings_arg, **extra) if extra else self._settings_arg
                )
            configure(settings.log)
            self._settings = settings
        return self._settings

    @property
    def engine(self) -> CacheEngine:
        """The opened cache (catalog + store); opened on first use, and again in a forked
        child (a fork-started worker), which must not share its parent's connections."""
        if self._engine is None or self._pid != os.getpid():
            with self._lock:
                self._forget_inherited()
                if self._engine is None:
                    from featurecache.engine import CacheEngine

                    self._engine = CacheEngine.open(
                        catalog=self._catalog_arg,
                        store=self._store_arg,
                        settings=self.settings,
                        overrides={},
                    )
                    self._pid = os.getpid()
        return self._engine

    def _forget_inherited(self) -> None:
        """After a fork, drop the parent's engine without closing anything: its connections,
        threads and pending publishes belong to the parent. The catalog's pool is replaced
        without closing its connections (SQLAlchemy's recipe for forked processes), which
        also makes an explicitly given ``Catalog`` usable again in this process."""
        if self._engine is not None and self._pid != os.getpid():
            self._engine.catalog.forget_after_fork()
            self._engine = None

    def close(self) -> None:
        """Wait for pending publishes and release connections."""
        with self._lock:
            self._forget_inherited()
            if self._engine is not None:
                self._engine.close()
                self._engine = None

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @overload
    def cached_feature(self, func: Callable[P, R], /) -> Feature[P, R]: ...

    @overload
    def cached_feature(
        self, func: None = None, /, **options: Unpack[FeatureOptionArgs]
    ) -> Callable[[Callable[P, R]], Feature[P, R]]: ...

    def cached_feature(
        self, func: Callable[P, R] | None = None, /, **options: Unpack[FeatureOptionArgs]
    ) -> Feature[P, R] | Callable[[Callable[P, R]], Feature[P, R]]:
        """Cache a feature function in this cache: bare (``@cache.cached_feature``) or with
        options (see ``featurecache.cached_feature``)."""
        return _decorate(func, lambda: self, FeatureOptions.parse(options))


_default: FeatureCache | None = None
_default_lock = threading.Lock()


def default_cache() -> FeatureCache:
    """The process-wide cache configured from the environment, pyproject.toml and defaults."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = FeatureCache()
    return _default


class Feature(Generic[P, R]):
    """A decorated feature function. Calling it resolves through the cache; ``func`` (also
    ``__wrapped__``) is the undecorated function, ``name`` the feature's name in the catalog.
    ``is_cached``, ``recompute`` and ``clear`` control its entries.

    A Feature passes for the function it wraps: ``inspect.isfunction`` is true (``__class__``
    answers ``types.FunctionType``, the way ``unittest.mock`` specs pass ``isinstance``) and
    the function attributes (``__code__``, ``__globals__``, ``__defaults__``, …) are the
    wrapped function's, so tools that collect plain functions from a module (Hamilton's
    ``driver.Builder().with_modules``) keep it, with its signature and annotations, and call
    it through the cache. ``type(feature)`` stays ``Feature``, so ``isinstance(f, Feature)``,
    pickling by reference and copying are unchanged.

    As a method (``def m(self, …)`` in a class body) it binds like a function: ``self`` is an
    argument fingerprinted like any other, and the class's code is part of the code identity
    (the body reaches the class's other methods through ``self``, which the code walker cannot
    follow). A ``@staticmethod`` never binds.
    """

    def __init__(
        self,
        func: Callable[P, R],
        cache: Callable[[], FeatureCache],
        options: FeatureOptions,
        *,
        static: bool = False,
    ) -> None:
        self.func = func
        self._cache = cache
        self._static = static
        self._owner: type | None = None
        self._attribute = func.__name__  # the class attribute it is bound through, once known
        self.name = options.name or func.__qualname__
        self.version = options.version
        self.depends_on = options.depends_on
        self.ignore = options.ignore
        self.strict = options.strict
        self.lazy = options.lazy
        self.wait = options.wait
        self.signature = inspect.signature(func)
        self.values = options.values_of(self.signature)
        functools.update_wrapper(self, func)
        _DEFINED[next(_DEFINED_ORDER)] = self

    @property
    def options(self) -> Mapping[str, Any]:
        """The decorator's arguments that can change the output (hashed into the code identity)."""
        return {"name": self.name, "version": self.version, "lazy": self.lazy}

    def code_identity(self, track_library_versions: bool = True) -> CodeIdentity:
        """The function's transitive code identity. Called on every call: ``code_identity``
        memoises per process but re-checks what it read (a helper redefined in a notebook, a
        mutated module constant), so a cached identity is never stale."""
        from featurecache.fingerprint.code.identity import code_identity

        return code_identity(
            self.func,
            version=self.version,
            options=self.options,
            depends_on=self.depends_on if self._owner is None else (*self.depends_on, self._owner),
            ignore=self.ignore,
            strict=self.strict,
            track_library_versions=track_library_versions,
        )

    def code_digest(self) -> str:
        """The digest of the code this process would key a call with now: the
        ``code_digest`` the catalog and MLflow record for a fresh call of the same code (library
        versions count as this feature's cache settings say). A service logs it at start-up, or
        compares it with the one recorded for the model's training run
        (``featurecache.check_serving``). Nothing is opened or computed."""
        return self.code_identity(self.cache.settings.track_library_versions).digest

    @property
    def cache(self) -> FeatureCache:
        return self._cache()

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        cache = self.cache
        if cache.settings.disable:
            return _uncached(self, args, kwargs)
        result: R = cache.engine.call(self, args, kwargs)
        return result

    def map(
        self, partitions: object, *, executor: object = None, retries: int = 3, **common: Any
    ) -> PartitionedResult:
        """Call the feature once per partition, each an ordinary cached call, on
        ``executor``: None (here, in turn), ``"threads"``, ``"processes"``, a
        ``concurrent.futures.Executor``, a ``distributed.Client`` or ``"ray"``. ``partitions``
        is a list of keyword-argument dicts, or ``featurecache.partitions.hive(...)`` /
        ``files(...)``; ``common`` keyword arguments go to every call. ``retries``: how often
        Dask or Ray retries a task whose worker died. Workers hand artifact ids back, never
        frames; the result reads the parts lazily (``.lazy()``, ``.to_dask()``,
        ``.to_ray()``)."""
        from featurecache.partitions.mapping import map_feature

        return map_feature(self, partitions, executor=executor, retries=retries, common=common)

    # -- control (README "Seeing and controlling the cache") -----------------------------

    def is_cached(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Whether this call would be a hit, without computing anything: its key is built
        (inputs fingerprinted, code identity taken) and looked up, and the files its body
        read are re-validated, as a real call does. False when caching is disabled."""
        cache = self.cache
        if cache.settings.disable:
            return False
        return cache.engine.is_cached(self, args, kwargs)

    def recompute(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Compute this call even if it is cached, and replace the key's entry with the new
        result (the old artifact is left to GC). Returns the new result."""
        cache = self.cache
        if cache.settings.disable:
            return _uncached(self, args, kwargs)
        result: R = cache.engine.call(self, args, kwargs, recompute=True)
        return result

    def clear(self) -> int:
        """Drop every cache entry of this feature, whatever its code version or arguments;
        returns how many. The artifacts stay until ``featurecache gc`` collects them (other
        features may share them). Waits for this process's pending publishes first."""
        engine = self.cache.engine
        engine.flush()
        return engine.catalog.clear_feature(self.name).entries

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None or self._static:
            return self
        return BoundFeature(self, instance)

    def __set_name__(self, owner: type, name: str) -> None:
        # Called when the class body that defines this method is complete: only now does the
        # class exist, and its code (the other methods ``self.`` reaches) joins the identity.
        self._attribute = name
        if not self._static:
            self._owner = owner

    # -- passing for the wrapped function (see the class docstring) ----------------------

    @property
    def __class__(self) -> type:  # read by isinstance(), as unittest.mock's specs do
        return types.FunctionType

    @__class__.setter
    def __class__(self, value: type) -> None:
        raise TypeError("a Feature's class cannot be changed")

    @property
    def __code__(self) -> types.CodeType:
        return self._plain_function().__code__

    @property
    def __globals__(self) -> dict[str, Any]:
        return self._plain_function().__globals__

    @property
    def __defaults__(self) -> tuple[Any, ...] | None:
        return self._plain_function().__defaults__

    @property
    def __kwdefaults__(self) -> dict[str, Any] | None:
        return self._plain_function().__kwdefaults__

    @property
    def __closure__(self) -> tuple[types.CellType, ...] | None:
        return self._plain_function().__closure__

    def _plain_function(self) -> types.FunctionType:
        """The plain function behind ``func`` (which may itself be a ``functools.wraps``
        wrapper or another callable object)."""
        func = inspect.unwrap(self.func)
        if not isinstance(func, types.FunctionType):
            raise AttributeError(f"{self.func!r} is not a plain Python function")
        return func

    def __reduce__(self) -> str | tuple[Any, ...]:
        # Worker processes (ProcessPoolExecutor, Dask, Ray) pickle functions by reference:
        # the decorated object is found again by its module and qualified name.
        return self.func.__qualname__

    def __repr__(self) -> str:
        return f"<cached feature {self.name!r} of {self.func.__module__}.{self.func.__qualname__}>"


class BoundFeature:
    """A feature reached through an instance (``obj.feature``): a bound method, like a
    function's (``inspect.ismethod`` is true, ``inspect.signature`` drops ``self``, it pickles
    as ``getattr(instance, name)``), whose control calls pass ``self`` too, so
    ``obj.feature.is_cached(df)`` asks about the call ``obj.feature(df)``."""

    __slots__ = ("__func__", "__self__")

    def __init__(self, feature: Feature[..., Any], instance: object) -> None:
        self.__func__ = feature
        self.__self__ = instance

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__func__(self.__self__, *args, **kwargs)

    def is_cached(self, *args: Any, **kwargs: Any) -> bool:
        return self.__func__.is_cached(self.__self__, *args, **kwargs)

    def recompute(self, *args: Any, **kwargs: Any) -> Any:
        return self.__func__.recompute(self.__self__, *args, **kwargs)

    def clear(self) -> int:
        """Every entry of the feature, whatever the instance (as ``Feature.clear``)."""
        return self.__func__.clear()

    @property
    def func(self) -> Callable[..., Any]:
        """The undecorated function, bound to the same instance."""
        return types.MethodType(self.__func__.func, self.__self__)

    __wrapped__ = func

    @property
    def __class__(self) -> type:  # read by isinstance() and inspect.ismethod()
        return types.MethodType

    @__class__.setter
    def __class__(self, value: type) -> None:
        raise TypeError("a bound feature's class cannot be changed")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__func__, name)

    def __eq__(self, other: object) -> bool:
        if type(other) is not BoundFeature:
            return NotImplemented
        return self.__func__ is other.__func__ and self.__self__ is other.__self__

    def __hash__(self) -> int:
        return hash((id(self.__func__), id(self.__self__)))

    def __reduce__(self) -> tuple[Any, ...]:
        return (getattr, (self.__self__, self.__func__._attribute))

    def __repr__(self) -> str:
        return f"<bound cached feature {self.__func__.name!r} of {self.__self__!r}>"


# Every Feature this process has defined, held weakly (a redefined notebook cell lets the old
# one go), oldest first: how ``featurecache.check_serving`` finds a feature by the name a run
# recorded.
_DEFINED: weakref.WeakValueDictionary[int, Feature[..., Any]] = weakref.WeakValueDictionary()
_DEFINED_ORDER = itertools.count()


def defined_features(name: str | None = None) -> list[Feature[..., Any]]:
    """The live features defined (decorated) in this process, oldest first: all of them, or
    those named ``name``."""
    return [f for f in list(_DEFINED.values()) if name is None or f.name == name]


def _uncached(feature: Feature[P, R], args: Any, kwargs: Any) -> R:
    """A call with caching disabled (``FEATURECACHE_DISABLE``): the body runs, nothing is
    fingerprinted, read or stored. A ``lazy=True`` feature still hands back a ``LazyFrame``."""
    import time

    from featurecache import logs
    from featurecache.usage import PROCESS

    started = time.perf_counter()
    out = feature.func(*args, **kwargs)
    seconds = time.perf_counter() - started
    PROCESS.add("miss", seconds, feature.name)
    if logs.enabled():
        logs.miss(feature.name, None, "caching is disabled (FEATURECACHE_DISABLE)", seconds)
    if feature.lazy:
        from featurecache.frames import frame_kind, to_arrow

        if frame_kind(out) != "lazy":
            import polars as pl

            table, _kind = to_arrow(out, feature.name)
            frame = pl.from_arrow(table)
            assert isinstance(frame, pl.DataFrame)
            lazy: Any = frame.lazy()
            return lazy  # type: ignore[no-any-return]
    return out


def _decorate(
    func: Callable[P, R] | None, cache: Callable[[], FeatureCache], options: FeatureOptions
) -> Feature[P, R] | Callable[[Callable[P, R]], Feature[P, R]]:
    """The bare form (``func`` given) or the decorator with options (``func`` is None)."""

    def wrap(target: Callable[P, R]) -> Feature[P, R]:
        if isinstance(target, classmethod):
            raise ConfigError(
                "cached_feature",
                f"{target.__func__.__qualname__} is a classmethod (its class is no input "
                "the cache can fingerprint)",
                "Make it a @staticmethod or a module-level function.",
            )
        # ``@cached_feature`` under ``@staticmethod``: cache the function, never bind it.
        static = isinstance(target, staticmethod)
        if isinstance(target, staticmethod):
            target = target.__func__
        if not callable(target):
            raise ConfigError(
                "cached_feature",
                f"expected a function, got {type(target).__name__}",
                "Decorate a def.",
            )
        if inspect.iscoroutinefunction(target) or inspect.isgeneratorfunction(target):
            raise ConfigError(
                "cached_feature",
                f"{target.__qualname__} is a coroutine or generator function",
                "Decorate a plain function that returns a frame.",
            )
        check_return_annotation(target)
        return Feature(target, cache, options, static=static)

    return wrap(func) if func is not None else wrap


@overload
def cached_feature(func: Callable[P, R], /) -> Feature[P, R]: ...


@overload
def cached_feature(
    func: None = None, /, **options: Unpack[FeatureOptionArgs]
) -> Callable[[Callable[P, R]], Feature[P, R]]: ...


def cached_feature(
    func: Callable[P, R] | None = None, /, **options: Unpack[FeatureOptionArgs]
) -> Feature[P, R] | Callable[[Callable[P, R]], Feature[P, R]]:
    """Cache a feature function in the default cache.

    ``name`` names the feature in the catalog (default: the function's qualified name);
    ``version`` salts the key by hand; ``depends_on`` adds values or objects to the key;
    ``ignore`` leaves named globals out of the code identity; ``values`` names arguments whose
    strings stay plain text even when they name a file, folder, glob or ``s3://`` object (by
    default such a string counts by the content it names); ``strict`` turns what cannot
    be followed into an error; ``lazy`` hands every result back as a ``LazyFrame`` scan of the
    artifact; ``wait=False`` computes instead of waiting for another process's lease.
    """
    return _decorate(func, default_cache, FeatureOptions.parse(options))


# Live objects of these types captured by user code are hashed by their type's name: name
# them by the public API, so that moving them inside the package never changes a key.
for _public in (FeatureCache, Feature):
    _public.__module__ = "featurecache"
