"""Recording the files a feature's body reads while it runs (a miss): *observed inputs*.

Two sources, both gated per thread so that they cost next to nothing outside a miss:

* Python's audit hook (``sys.addaudithook``, installed once per process, never removable):
  every ``open`` event (``open()``, ``io.open``, ``os.open``, what pandas' and numpy's readers
  use underneath) of the observing thread is recorded, as a read or, for any writing mode, as
  a file the body wrote (never an input).
* Wrappers around the common readers that open files natively, out of the hook's sight
  (polars, pyarrow; pandas and numpy too, for the path as given): their path argument is
  recorded. They are installed when observation starts, on modules already imported, once;
  outside an observing thread they only pass the call through.

What the thread reads is kept with the stat it had when first opened, so that a file changed
between the read and its fingerprint is caught (``observed_inputs.settle``). Nested features
(a cached feature called inside another's body) record into their own ``Reads``, which are
added to the outer one when they end: the outer result depends on them too.

Not seen (documented limits): files opened natively by other C extensions, by subprocesses or
by threads the body starts, and readers bound before the wrappers were installed
(``from polars import read_csv`` at import time).
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import stat as statmod
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

StatKey = tuple[int, int, int, int, int]  # dev, ino, size, mtime_ns, ctime_ns

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_GLOB_CHARS = frozenset("*?[")

# Module -> reader functions whose first argument (or the named keyword) is a path.
READERS: dict[str, tuple[str, ...]] = {
    "polars": (
        "read_csv",
        "read_csv_batched",
        "read_parquet",
        "read_parquet_schema",
        "read_ipc",
        "read_ipc_stream",
        "read_json",
        "read_ndjson",
        "read_avro",
        "read_excel",
        "read_ods",
        "read_delta",
        "scan_csv",
        "scan_parquet",
        "scan_ipc",
        "scan_ndjson",
        "scan_delta",
    ),
    "pandas": (
        "read_csv",
        "read_table",
        "read_fwf",
        "read_parquet",
        "read_feather",
        "read_orc",
        "read_json",
        "read_excel",
        "read_pickle",
        "read_hdf",
        "read_stata",
        "read_sas",
        "read_spss",
        "read_xml",
    ),
    "pyarrow.parquet": ("read_table", "read_pandas", "read_schema", "read_metadata"),
    "pyarrow.csv": ("read_csv", "open_csv"),
    "pyarrow.feather": ("read_table", "read_feather"),
    "pyarrow.dataset": ("dataset",),
    "numpy": ("load", "loadtxt", "genfromtxt", "fromfile"),
}
# Writers that write natively (out of the audit hook's sight): module -> (class or None, names).
# (numpy's and pandas' text writers go through Python's open(): the hook sees them.)
# Their target is a file the body wrote, never an input. The path is the argument after the
# frame (``df.write_parquet(path)``, ``pq.write_table(table, path)``).
WRITERS: dict[str, tuple[tuple[str | None, tuple[str, ...]], ...]] = {
    "polars": (
        (
            "DataFrame",
            (
                "write_parquet",
                "write_csv",
                "write_ipc",
                "write_ipc_stream",
                "write_json",
                "write_ndjson",
                "write_avro",
                "write_excel",
                "write_delta",
            ),
        ),
        ("LazyFrame", ("sink_parquet", "sink_csv", "sink_ipc", "sink_ndjson")),
    ),
    "pandas": (("DataFrame", ("to_parquet", "to_feather", "to_orc", "to_excel", "to_hdf")),),
    "pyarrow.parquet": ((None, ("write_table",)),),
    "pyarrow.feather": ((None, ("write_feather",)),),
    "pyarrow.csv": ((None, ("write_csv",)),),
}
_WRITE_KEYWORDS = (
    "file",
    "path",
    "where",
    "output_file",
    "sink",
    "target",
    "excel_writer",
    "fname",
)
_PATH_KEYWORDS = (
    "source",
    "path",
    "filepath_or_buffer",
    "path_or_buf",
    "path_or_paths",
    "file",
    "fname",
    "io",
    "where",
)


@dataclass
class Reads:
    """What one thread's body opened: absolute path -> stat at first read (None when it
    could not be stat'ed then), what it wrote, globs it expanded, and sources it could only
    partially see (remote URLs given to a reader)."""

    read: dict[str, StatKey | None] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)
    globs: dict[str, None] = field(default_factory=dict)
    unseen: dict[str, str] = field(default_factory=dict)  # source -> why

    def note_read(self, path: str, *, folders: bool = True) -> None:
        if path in self.read:
            return
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return  # the open will fail, or it is not a path we can follow
        if not folders and statmod.S_ISDIR(st.st_mode):
            return  # os.open() of a folder (rmtree, fwalk): a listing, not a read of data
        self.read[path] = stat_key(st)

    def note_source(self, source: object) -> None:
        """A reader's path argument: a path, a glob, or a list of them."""
        if isinstance(source, list | tuple):
            for item in source:
                self.note_source(item)
            return
        if isinstance(source, bytes):
            source = os.fsdecode(source)
        elif isinstance(source, os.PathLike):
            source = os.fspath(source)
        if not isinstance(source, str):
            return  # a buffer or an open file: its open() was recorded by the hook
        if "://" in source:
            if not source.startswith("file://"):
                self.unseen.setdefault(source, "a remote location read inside the body")
                return
            source = source.removeprefix("file://")
        path = os.path.abspath(os.path.expanduser(source))
        if _GLOB_CHARS.isdisjoint(source) or os.path.exists(path):
            self.note_read(path)
            return
        self.globs.setdefault(path, None)
        for match in glob.glob(path, recursive=True):
            self.note_read(match)

    def note_written(self, target: object) -> None:
        """A writer's target: a file the body wrote (never one of its inputs)."""
        if isinstance(target, bytes):
            target = os.fsdecode(target)
        elif isinstance(target, os.PathLike):
            target = os.fspath(target)
        if isinstance(target, str) and "://" not in target:
            self.written.add(os.path.abspath(os.path.expanduser(target)))

    def merge(self, inner: Reads) -> None:
        """A nested feature's reads are reads of this body too."""
        for path, key in inner.read.items():
            self.read.setdefault(path, key)
        self.written |= inner.written
        self.globs.update(inner.globs)
        for source, why in inner.unseen.items():
            self.unseen.setdefault(source, why)


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class _Observation(threading.local):
    # A class default: reading ``reads`` in a thread that never observed costs an attribute
    # lookup, not the AttributeError that ``getattr(local, name, None)`` raises and catches
    # (about 0.4 µs, paid on every open() of every thread and on every cached call).
    reads: Reads | None = None


_local = _Observation()
_install_lock = threading.Lock()
_hook_installed = False


def current() -> Reads | None:
    """The calling thread's observation, if it is running a body on a miss."""
    reads: Reads | None = _local.reads
    return reads


@contextlib.contextmanager
def observing() -> Iterator[Reads]:
    """Record what this thread reads inside the ``with`` block."""
    install()
    outer = current()
    reads = Reads()
    _local.reads = reads
    try:
        yield reads
    finally:
        _local.reads = outer
        if outer is not None:
            outer.merge(reads)


def note_paths(paths: Iterable[str]) -> None:
    """Paths a nested cached call depends on (its file inputs, its observed inputs): when
    this thread is observing an outer body, they are reads of that body, even when the nested
    call was a hit that read nothing."""
    reads = current()
    if reads is not None:
        for path in paths:
            reads.note_read(path)


def install() -> None:
    """The audit hook (once per process) and the reader wrappers (once per imported module)."""
    global _hook_installed
    with _install_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)
            _hook_installed = True
        for module_name, names in READERS.items():
            module = sys.modules.get(module_name)
            if module is not None:
                _wrap_module(module, names)
        for module_name, groups in WRITERS.items():
            module = sys.modules.get(module_name)
            for owner_name, names in groups if module is not None else ():
                owner = module if owner_name is None else getattr(module, owner_name, None)
                if owner is not None:
                    _wrap_writers(owner, names)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Called for every audit event of every thread: the first test must be the cheapest.
    if event != "open":
        return
    reads: Reads | None = _local.reads
    if reads is None:
        return
    try:
        _record_open(reads, args)
    except Exception:  # noqa: BLE001 - an audit hook that raises would break the body's open()
        return


def _record_open(reads: Reads, args: tuple[Any, ...]) -> None:
    target, mode, flags = (*args, None, None, None)[:3]
    if isinstance(target, int) or target is None:
        return  # a file descriptor: its path was recorded when it was opened, if at all
    path = os.path.abspath(os.fsdecode(os.fspath(target)))
    if isinstance(mode, str):
        writes = any(ch in mode for ch in "wax+")
    else:
        writes = isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
    if writes:
        reads.written.add(path)
    else:
        reads.note_read(path, folders=False)


def _wrap_module(module: Any, names: tuple[str, ...]) -> None:
    for name in names:
        func = getattr(module, name, None)
        if callable(func) and not hasattr(func, "__featurecache_reader__"):
            with contextlib.suppress(AttributeError, TypeError):
                setattr(module, name, _reader(func))


def _wrap_writers(owner: Any, names: tuple[str, ...]) -> None:
    for name in names:
        func = getattr(owner, name, None)
        if callable(func) and not hasattr(func, "__featurecache_writer__"):
            with contextlib.suppress(AttributeError, TypeError):
                setattr(owner, name, _writer(func))


def _writer(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def writer(*args: Any, **kwargs: Any) -> Any:
        reads: Reads | None = _local.reads
        if reads is not None:
            target = (
                args[1]
                if len(args) > 1
                else next((kwargs[k] for k in _WRITE_KEYWORDS if k in kwargs), None)
            )
            with contextlib.suppress(Exception):  # never fail the user's write over bookkeeping
                reads.note_written(target)
        return func(*args, **kwargs)

    writer.__featurecache_writer__ = func  # type: ignore[attr-defined]
    return writer


def _reader(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def reader(*args: Any, **kwargs: Any) -> Any:
        reads: Reads | None = _local.reads
        if reads is not None:
            source = (
                args[0] if args else next((kwargs[k] for k in _PATH_KEYWORDS if k in kwargs), None)
            )
            with contextlib.suppress(Exception):  # never fail the user's read over bookkeeping
                reads.note_source(source)
        return func(*args, **kwargs)

    reader.__featurecache_reader__ = func  # type: ignore[attr-defined]
    return reader
