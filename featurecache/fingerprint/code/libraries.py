"""Where a module's code comes from (user code, the standard library, an installed library) and
which distribution version an installed library has.

Code identity hashes *user* code by source and records installed libraries by version only, so
this module draws that line:

* **stdlib**: builtin/frozen modules and files under the interpreter's ``stdlib`` /
  ``platstdlib`` directories (outside any ``site-packages``), or a top-level name in
  ``sys.stdlib_module_names`` when the module has no file.
* **library**: files under a ``site-packages`` / ``dist-packages`` directory, and featurecache
  itself (its own behaviour is versioned by ``KEY_SCHEME_VERSION``).
* **user**: everything else: ``__main__``, notebook cells, the current project, and packages
  installed in *editable* mode (their files live in the project, so they are being edited and
  must be hashed by source: tracking only their version would serve stale results).

Every version lookup goes through ``distribution_version`` so tests can simulate an upgrade by
replacing that one function.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import re
import sys
import sysconfig
from types import ModuleType
from typing import Literal

Origin = Literal["user", "stdlib", "library"]

_SITE_DIR_NAMES = frozenset({"site-packages", "dist-packages"})
_SELF_PACKAGE = "featurecache"


def distribution_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None when it has no metadata."""
    return _metadata_version(name)


# Versions read from a distribution's metadata already parsed for its name (the same-name
# fast path of ``distributions_of``): asking ``importlib.metadata`` again would find the same
# distribution on ``sys.path`` and parse the same file a second time (a few ms per process).
_READ_VERSIONS: dict[str, str | None] = {}


@functools.cache
def _metadata_version(name: str) -> str | None:
    if name in _READ_VERSIONS:
        return _READ_VERSIONS[name]
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, tuple[str, ...]]:
    # Slow-ish (reads every installed RECORD/top_level.txt), so computed once per process and
    # only when a library is actually referenced.
    return {
        top: tuple(sorted(set(dists)))
        for top, dists in importlib.metadata.packages_distributions().items()
    }


@functools.cache
def distributions_of(module_name: str) -> tuple[str, ...]:
    """Distribution names that provide the top-level package of ``module_name``."""
    top = module_name.partition(".")[0]
    found = _same_name_distribution(top) or _packages_distributions().get(top, ())
    return _narrow(found, module_name) if len(found) > 1 else found


def _narrow(dists: tuple[str, ...], module_name: str) -> tuple[str, ...]:
    # A namespace package (google.*) is shared by many distributions: keep those that ship
    # the module's own subpackage.
    parts = module_name.split(".")[:2]
    if len(parts) < 2:
        return dists
    shipping = []
    for name in dists:
        try:
            files = importlib.metadata.distribution(name).files or ()
        except importlib.metadata.PackageNotFoundError:
            continue
        if any(
            f.parts[:2] == tuple(parts) or f.parts[:2] == (parts[0], f"{parts[1]}.py")
            for f in files
        ):
            shipping.append(name)
    return tuple(shipping) or dists


def _same_name_distribution(top: str) -> tuple[str, ...]:
    # Fast path: most packages are installed by a distribution of the same name (polars,
    # numpy, pandas). Scanning every installed distribution takes about a second in a big
    # environment; one lookup takes milliseconds. Only trusted if the distribution really
    # ships that top-level package.
    try:
        dist = importlib.metadata.distribution(top)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return ()
    top_level = dist.read_text("top_level.txt")
    if top_level is not None:
        ships = top in top_level.split()
    else:
        ships = any(f.parts and f.parts[0] in (top, f"{top}.py") for f in (dist.files or ()))
    if not ships:
        return ()
    metadata = dist.metadata
    name = metadata["Name"]
    if not name:
        return ()
    # ``importlib.metadata.version(name)`` finds this same distribution: the first on sys.path
    # whose normalised name matches (``top`` found it, and ``name`` normalises alike).
    if _normalised(str(name)) == _normalised(top):
        _READ_VERSIONS.setdefault(str(name), metadata["Version"])
    return (str(name),)


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@functools.lru_cache(maxsize=1)
def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib") if paths.get(k)}
    return tuple(sorted(dirs))


def _is_site_path(path: str) -> bool:
    return any(part in _SITE_DIR_NAMES for part in path.split(os.sep))


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


@functools.lru_cache(maxsize=8192)
def origin_of_path(path: str) -> Origin:
    """Classify a source file path."""
    real = os.path.realpath(path)
    if _is_site_path(real):
        return "library"
    if any(_under(real, d) for d in _stdlib_dirs()):
        return "stdlib"
    return "user"


def origin_of_code(module_name: str | None, filename: str) -> Origin:
    """Classify a function by its module name and the file its code came from."""
    if (module_name or "").partition(".")[0] == _SELF_PACKAGE:
        return "library"
    if filename and not filename.startswith("<"):
        return origin_of_path(filename)
    return origin_of_module(module_name)


def origin_of_module(module_name: str | None) -> Origin:
    """Classify a module by name (looked up in ``sys.modules``)."""
    if not module_name:
        return "user"
    top = module_name.partition(".")[0]
    if top == _SELF_PACKAGE:
        return "library"
    if module_name == "__main__":
        return "user"
    module = sys.modules.get(module_name) or sys.modules.get(top)
    return _origin_of_loaded(module, top)


def _origin_of_loaded(module: ModuleType | None, top: str) -> Origin:
    file = getattr(module, "__file__", None) if module is not None else None
    if isinstance(file, str) and file:
        return origin_of_path(file)
    # Namespace packages have a __path__ but no __file__.
    paths = list(getattr(module, "__path__", []) or []) if module is not None else []
    if paths:
        return origin_of_path(str(paths[0]))
    if top in sys.stdlib_module_names or top in sys.builtin_module_names or top == "builtins":
        return "stdlib"
    if module is None:  # not imported (yet): where would it be imported from?
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        if origin and origin not in ("built-in", "frozen"):
            return origin_of_path(origin)
        if locations:
            return origin_of_path(str(locations[0]))
    # A module without a file that is not stdlib: built at run time (types.ModuleType, exec).
    return "user"


def display_path(filename: str, module_name: str | None) -> str:
    """A short, machine-independent path for messages: ``pipeline/util.py`` for module
    ``pipeline.util``; otherwise relative to the working directory when inside it."""
    if not filename or filename.startswith("<"):
        return filename or "?"
    parts = module_name.split(".") if module_name and module_name != "__main__" else []
    path = os.path.normpath(filename)
    stem, suffix = os.path.splitext(path)
    if parts:
        tail = [*parts, "__init__"] if os.path.basename(stem) == "__init__" else parts
        if stem.split(os.sep)[-len(tail) :] == tail:
            return "/".join(tail) + suffix
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if rel.startswith("..") else rel.replace(os.sep, "/")


def module_of(obj: object) -> str | None:
    """The module an object (a function, a builtin, a ufunc…) says it comes from."""
    module = getattr(obj, "__module__", None)
    if isinstance(module, str):
        return module
    owner = getattr(obj, "__self__", None)
    if isinstance(owner, ModuleType):
        return owner.__name__
    return type(obj).__module__


def library_versions(module_name: str) -> dict[str, str | None]:
    """``{distribution: version}`` for the library that provides ``module_name``.

    A library module with no distribution metadata (vendored onto ``sys.path``) is reported
    under its top-level module name with version None.
    """
    top = module_name.partition(".")[0]
    dists = distributions_of(module_name)
    if not dists:
        return {top: distribution_version(top)}
    return {dist: distribution_version(dist) for dist in dists}
