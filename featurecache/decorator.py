"""``@cached_feature`` and ``FeatureCache``: bind a function to a cache.

Decorating does no I/O and imports nothing heavy: the catalog and the store are opened on the
first call, so ``import featurecache`` and module imports that define features stay fast.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from featurecache import forking  # noqa: F401 - registers the at-fork hook early
from featurecache.errors import ConfigError

if TYPE_CHECKING:
    from featurecache.cache import CacheEngine
    from featurecache.catalog.catalog import Catalog
    from featurecache.fingerprint.types import CodeIdentity
    from featurecache.settings import Settings
    from featurecache.store.base import ArtifactStore

F = TypeVar("F", bound=Callable[..., Any])


class FeatureCache:
    """A cache: a catalog and an artifact store, with settings.

    ``FeatureCache()`` follows the environment / pyproject / defaults;
    ``FeatureCache(catalog="postgresql+psycopg://…", store="s3://bucket/prefix")`` is explicit.
    ``cache.cached_feature`` is the decorator bound to this cache.
    """

    def __init__(
        self,
        catalog: str | Catalog | None = None,
        store: str | Path | ArtifactStore | None = None,
        *,
        settings: Settings | None = None,
        **overrides: Any,
    ) -> None:
        self._catalog_arg = catalog
        self._store_arg = store
        self._settings_arg = settings
        self._overrides = overrides
        self._engine: CacheEngine | None = None
        self._pid = os.getpid()  # the process that opened _engine
        self._lock = threading.Lock()

    @property
    def engine(self) -> CacheEngine:
        """The opened cache (catalog + store); opened on first use, and again in a forked
        child (a fork-started worker), which must not share its parent's connections."""
        if self._engine is None or self._pid != os.getpid():
            with self._lock:
                self._forget_inherited()
                if self._engine is None:
                    from featurecache.cache import CacheEngine

                    self._engine = CacheEngine.open(
                        catalog=self._catalog_arg,
                        store=self._store_arg,
                        settings=self._settings_arg,
                        overrides=self._overrides,
                    )
                    self._pid = os.getpid()
        return self._engine

    def _forget_inherited(self) -> None:
        """After a fork, drop the parent's engine without closing anything: its connections,
        threads and pending publishes belong to the parent. The catalog's pool is replaced
        without closing its connections (SQLAlchemy's recipe for forked processes), which
        also makes an explicitly given ``Catalog`` usable again in this process."""
        if self._engine is not None and self._pid != os.getpid():
            self._engine.catalog.engine.dispose(close=False)
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
    def cached_feature(self, func: F) -> F: ...

    @overload
    def cached_feature(
        self,
        func: None = None,
        *,
        name: str | None = None,
        version: str | None = None,
        depends_on: Sequence[object] = (),
        ignore: Sequence[str] = (),
        strict: bool = False,
        lazy: bool = False,
        wait: bool = True,
    ) -> Callable[[F], F]: ...

    def cached_feature(
        self,
        func: F | None = None,
        *,
        name: str | None = None,
        version: str | None = None,
        depends_on: Sequence[object] = (),
        ignore: Sequence[str] = (),
        strict: bool = False,
        lazy: bool = False,
        wait: bool = True,
    ) -> F | Callable[[F], F]:
        """Cache a feature function: bare (``@cache.cached_feature``) or with options."""
        return _decorate(
            func,
            lambda: self,
            name=name,
            version=version,
            depends_on=depends_on,
            ignore=ignore,
            strict=strict,
            lazy=lazy,
            wait=wait,
        )


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


def reset_default_cache() -> None:
    """Close and forget the default cache (the next call re-reads the configuration)."""
    global _default
    with _default_lock:
        if _default is not None:
            _default.close()
        _default = None


class Feature:
    """A decorated feature function. Calling it resolves through the cache."""

    def __init__(
        self,
        func: Callable[..., Any],
        cache: Callable[[], FeatureCache],
        *,
        name: str,
        version: str | None,
        depends_on: Sequence[object],
        ignore: Sequence[str],
        strict: bool,
        lazy: bool,
        wait: bool,
    ) -> None:
        self.func = func
        self._cache = cache
        self.name = name
        self.version = version
        self.depends_on = tuple(depends_on)
        self.ignore = tuple(ignore)
        self.strict = strict
        self.lazy = lazy
        self.wait = wait
        self.signature = inspect.signature(func)
        functools.update_wrapper(self, func)

    @property
    def options(self) -> Mapping[str, Any]:
        """The decorator's arguments that can change the output (hashed into the code identity)."""
        return {"name": self.name, "version": self.version, "lazy": self.lazy}

    def code_identity(self, track_library_versions: bool = True) -> CodeIdentity:
        """The function's transitive code identity. Called on every call: ``code_identity``
        memoises per process but re-checks what it read (a helper redefined in a notebook, a
        mutated module constant), so a cached identity is never stale."""
        from featurecache.fingerprint.code import code_identity

        return code_identity(
            self.func,
            version=self.version,
            options=self.options,
            depends_on=self.depends_on,
            ignore=self.ignore,
            strict=self.strict,
            track_library_versions=track_library_versions,
        )

    @property
    def cache(self) -> FeatureCache:
        return self._cache()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.cache.engine.call(self, args, kwargs)

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return functools.partial(self.__call__, instance)

    def __reduce__(self) -> str | tuple[Any, ...]:
        # Worker processes (ProcessPoolExecutor, Dask, Ray) pickle functions by reference:
        # the decorated object is found again by its module and qualified name.
        return self.func.__qualname__

    def __repr__(self) -> str:
        return f"<cached feature {self.name!r} of {self.func.__module__}.{self.func.__qualname__}>"


def _decorate(
    func: F | None, cache: Callable[[], FeatureCache], **options: Any
) -> F | Callable[[F], F]:
    """The bare form (``func`` given) or the decorator with options (``func`` is None)."""

    def wrap(target: F) -> F:
        return _make_feature(target, cache, **options)

    return wrap(func) if func is not None else wrap


def _make_feature(
    func: F,
    cache: Callable[[], FeatureCache],
    *,
    name: str | None,
    version: str | None,
    depends_on: Sequence[object],
    ignore: Sequence[str],
    strict: bool,
    lazy: bool,
    wait: bool,
) -> F:
    if not callable(func):
        raise ConfigError(
            "cached_feature", f"expected a function, got {type(func).__name__}", "Decorate a def."
        )
    if inspect.iscoroutinefunction(func) or inspect.isgeneratorfunction(func):
        raise ConfigError(
            "cached_feature",
            f"{func.__qualname__} is a coroutine or generator function",
            "Decorate a plain function that returns a frame.",
        )
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ConfigError("name", f"{name!r} is not a valid feature name", "Give a non-empty str.")
    if version is not None and not isinstance(version, str):
        raise ConfigError("version", f"{version!r} is not a str", 'Give a string like "3".')
    feature = Feature(
        func,
        cache,
        name=name or func.__qualname__,
        version=version,
        depends_on=depends_on,
        ignore=ignore,
        strict=strict,
        lazy=lazy,
        wait=wait,
    )
    return feature  # type: ignore[return-value]


@overload
def cached_feature(func: F) -> F: ...


@overload
def cached_feature(
    func: None = None,
    *,
    name: str | None = None,
    version: str | None = None,
    depends_on: Sequence[object] = (),
    ignore: Sequence[str] = (),
    strict: bool = False,
    lazy: bool = False,
    wait: bool = True,
) -> Callable[[F], F]: ...


def cached_feature(
    func: F | None = None,
    *,
    name: str | None = None,
    version: str | None = None,
    depends_on: Sequence[object] = (),
    ignore: Sequence[str] = (),
    strict: bool = False,
    lazy: bool = False,
    wait: bool = True,
) -> F | Callable[[F], F]:
    """Cache a feature function in the default cache.

    ``name`` names the feature in the catalog (default: the function's qualified name);
    ``version`` salts the key by hand; ``depends_on`` adds values or objects to the key;
    ``ignore`` leaves named globals out of the code identity; ``strict`` turns what cannot
    be followed into an error; ``lazy`` hands every result back as a ``LazyFrame`` scan of the
    artifact; ``wait=False`` computes instead of waiting for another process's lease.
    """

    return _decorate(
        func,
        default_cache,
        name=name,
        version=version,
        depends_on=depends_on,
        ignore=ignore,
        strict=strict,
        lazy=lazy,
        wait=wait,
    )
