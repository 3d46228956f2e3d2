"""Small artifacts decoded in this process: a repeated hit on a tiny result costs a ``stat`` and
a copy instead of a Parquet decode (about 0.3-0.8 ms for a few rows, more than everything else
a hit does).

An entry is keyed by the identity of the local file it was decoded from, taken before the file
was verified (path, device, inode, size, mtime_ns, ctime_ns: any write to the file changes its
ctime, a replacement its inode), by what the catalog record says the file holds (file hash,
rows, columns) and by the kind of object handed out. It is stored only when the file's identity
after the decode is the one verified. A hit is served from it only when a fresh ``stat`` of
the artifact's path gives the same identity and the record the catalog returned for this call
matches, so the bytes it was decoded from are still the verified ones; a file deleted by a GC
fails the ``stat`` and the call recomputes, as without the memo.

Every hit gets its own object, never the stored one: a polars ``clone()`` (columns are shared
copy-on-write, so an in-place change of the copy never reaches the stored frame), a pyarrow
``Table`` as it is (immutable), a pandas frame as a deep copy. A pandas frame with an
``object`` column of anything but strings, bytes and missing values is not kept: its cells may
be mutable Python objects (Arrow lists become numpy arrays) that a deep copy shares. (Index
labels are hashable, hence immutable.)

Bounded: artifacts up to ``MAX_FILE_BYTES`` on disk and ``MAX_VALUE_BYTES`` decoded, at most
``MAX_TOTAL_BYTES`` in all, least recently used dropped first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from featurecache.frames import frame_kind

MAX_FILE_BYTES = 256 * 1024
MAX_VALUE_BYTES = 4 * 1024 * 1024
MAX_TOTAL_BYTES = 64 * 1024 * 1024

FileIdentity = tuple[str, int, int, int, int, int]
_Key = tuple[FileIdentity, str, int, int, str]

# What ``pandas.api.types.infer_dtype`` calls an object column of immutable cells.
_IMMUTABLE = frozenset({"string", "bytes", "empty"})

_lock = threading.Lock()
_entries: OrderedDict[_Key, tuple[Any, int]] = OrderedDict()
_total = 0


def _copy(value: Any) -> Any:
    kind = frame_kind(value)
    if kind == "polars":
        return value.clone()
    if kind == "pandas":
        return value.copy(deep=True)
    return value  # a pyarrow Table: immutable


def _size(value: Any) -> int | None:
    """Decoded bytes of a value the memo may keep; None for one it must not keep."""
    kind = frame_kind(value)
    if kind == "polars":
        return int(value.estimated_size())
    if kind == "arrow":
        return int(value.nbytes)
    if kind == "pandas":
        from pandas.api.types import infer_dtype

        for _, column in value.items():
            if column.dtype == object and infer_dtype(column, skipna=True) not in _IMMUTABLE:
                return None
        return int(value.memory_usage(deep=True, index=True).sum())
    return None


def get(identity: FileIdentity, record: tuple[str, int, int], kind: str) -> Any | None:
    """A fresh copy of the value decoded from the file with this identity, or None."""
    served = get_with_original(identity, record, kind)
    return None if served is None else served[0]


def get_with_original(
    identity: FileIdentity, record: tuple[str, int, int], kind: str
) -> tuple[Any, Any] | None:
    """``get``, plus the kept value the copy was made from (for ``carry.remember(like=…)``;
    never to be handed out or changed)."""
    key = (identity, *record, kind)
    with _lock:
        entry = _entries.get(key)
        if entry is None:
            return None
        _entries.move_to_end(key)
    return _copy(entry[0]), entry[0]


def put(identity: FileIdentity, record: tuple[str, int, int], kind: str, value: Any) -> Any:
    """Keep ``value`` (decoded from the verified file ``identity``) when it is small enough;
    returns what the caller hands out (a copy when it was kept)."""
    global _total
    if identity[3] > MAX_FILE_BYTES:
        return value
    size = _size(value)
    if size is None or size > MAX_VALUE_BYTES:
        return value
    key = (identity, *record, kind)
    with _lock:
        old = _entries.pop(key, None)
        if old is not None:
            _total -= old[1]
        _entries[key] = (value, size)
        _total += size
        while _total > MAX_TOTAL_BYTES and _entries:
            _, (_, dropped) = _entries.popitem(last=False)
            _total -= dropped
    return _copy(value)


def clear() -> None:
    """Forget every decoded value (tests; a process that wants its memory back)."""
    global _total
    with _lock:
        _entries.clear()
        _total = 0
