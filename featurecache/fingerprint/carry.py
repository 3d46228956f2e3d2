"""Carry-over: frames handed out by the cache remember the artifact they are, so passing one to
the next cached feature costs no rehash.

Only objects whose content cannot change behind our back are remembered:

* ``pyarrow.Table``: immutable;
* ``polars.LazyFrame``: an immutable query plan; remember only plain scans of an artifact;
* ``polars.DataFrame``: immutable through its expression API, but a few methods mutate in place
  (``df[0, "a"] = …``, ``df.columns = […]``, ``insert_column``, ``replace_column``,
  ``drop_in_place``, ``extend``, ``vstack/hstack(in_place=True)``…). Each of them swaps, renames
  or resizes a column, so we also record a *layout signature* (schema, height, and the address,
  offset and length of every Arrow buffer, read zero-copy) and trust the entry only while it is
  unchanged. Writes into a buffer are impossible from Python: polars hands out read-only
  views and its Series are copy-on-write.

pandas objects are never remembered: their values can be assigned in place.

Remember only objects the cache built itself from artifact bytes (frames read on a hit, scans
of an artifact). A frame a feature function returned may share memory with a numpy array the
user still holds (``pa.array(ndarray)`` and polars' ``from_numpy`` can be zero-copy), and
writing into that array would change the frame behind the carried id.

Identity is by ``id()`` guarded by a weak reference (all three types support weakrefs, checked
at ``remember`` time): when the object is garbage collected its entry goes with it, so a later
object reusing the address is never mistaken for it. Nothing here keeps an object alive.
Objects of a type without weakref support are simply not remembered.

A polars frame copied from another (``like``: a small artifact's decoded frame that this
process keeps and hands out as ``clone()``s, ``parquet_memo``) shares that frame's buffers, so
its layout signature is the original's: taken once per original, after checking on the first
copy that the two really are the same, instead of an Arrow export of every copy.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any

from featurecache.frames import frame_kind, newest_polars_compat

__all__ = ["forget", "is_remembered", "recall", "remember"]


@dataclass(frozen=True)
class _Entry:
    ref: weakref.ref[Any]
    artifact_id: str
    signature: tuple[Any, ...] | None  # polars DataFrames only


# Re-entrant: a weakref callback may run (garbage collection) while this thread holds the lock.
_lock = threading.RLock()
_entries: dict[int, _Entry] = {}


def _carriable(obj: object) -> str | None:
    """ "arrow", "polars" or "lazy" for an object that may be carried, else None (pandas frames
    are mutable in place)."""
    kind = frame_kind(obj)
    return None if kind == "pandas" else kind


def _signature(frame: Any) -> tuple[Any, ...]:
    """Schema, height and the Arrow buffers (address, size) of every chunk of every column."""
    table = frame.to_arrow(compat_level=newest_polars_compat())  # zero-copy for plain columns
    layout = tuple(
        (
            chunk.offset,
            len(chunk),
            tuple((b.address, b.size) if b else None for b in chunk.buffers()),
        )
        for column in table.columns
        for chunk in column.chunks
    )
    schema = tuple((name, repr(dtype)) for name, dtype in frame.schema.items())
    return (frame.height, schema, layout)


def _weak(obj: object, table: dict[int, Any]) -> weakref.ref[Any] | None:
    """A weak reference to ``obj`` that drops ``table[id(obj)]`` when ``obj`` is collected
    (only that entry: a later object at the same address has its own); None for an object
    without weakref support."""
    key = id(obj)
    # Held by the callback itself: one that runs while the interpreter exits may find this
    # module's globals already cleared.
    lock = _lock

    def on_collected(dead: weakref.ref[Any]) -> None:
        with lock:
            entry = table.get(key)
            if entry is not None and entry.ref is dead:
                del table[key]

    try:
        return weakref.ref(obj, on_collected)
    except TypeError:
        return None


def remember(obj: object, artifact_id: str, *, like: object = None) -> bool:
    """Record that ``obj`` holds exactly the content of ``artifact_id``. Returns False (and
    remembers nothing) for objects that cannot be carried safely, e.g. pandas frames.
    ``like``: a polars frame ``obj`` was just ``clone()``d from and that nothing changes
    (its layout signature is then reused, see the module's docstring)."""
    kind = _carriable(obj)
    if kind is None:
        return False
    ref = _weak(obj, _entries)
    if ref is None:
        return False
    signature = None
    if kind == "polars":
        try:
            signature = _signature(obj) if like is None else _clone_signature(obj, like)
        except Exception:  # noqa: BLE001 - a frame Arrow cannot export is simply not carried
            return False
    with _lock:
        _entries[id(obj)] = _Entry(ref, artifact_id, signature)
    return True


@dataclass(frozen=True)
class _Original:
    ref: weakref.ref[Any]
    signature: tuple[Any, ...]


# Layout signatures of frames that copies are made from (``like``), by id, weakly held.
_originals: dict[int, _Original] = {}


def _clone_signature(copy: Any, original: Any) -> tuple[Any, ...]:
    """``_signature(copy)`` for a fresh ``original.clone()``: the original's signature, taken
    once and kept only if the first copy has exactly the same layout (shared buffers)."""
    with _lock:
        known = _originals.get(id(original))
    if known is not None and known.ref() is original:
        return known.signature
    own = _signature(copy)
    if _signature(original) != own:
        return own  # this polars copies buffers on clone(): nothing to share
    ref = _weak(original, _originals)
    if ref is not None:
        with _lock:
            _originals[id(original)] = _Original(ref, own)
    return own


def is_remembered(obj: object, artifact_id: str) -> bool:
    """Whether ``obj`` itself is remembered as ``artifact_id`` (no layout check: for the
    object just handed out, which nothing could have changed yet)."""
    with _lock:
        entry = _entries.get(id(obj))
    return entry is not None and entry.ref() is obj and entry.artifact_id == artifact_id


def recall(obj: object) -> str | None:
    """The artifact id ``obj`` was remembered with, if it is the same, unchanged object."""
    with _lock:
        entry = _entries.get(id(obj))
    if entry is None or entry.ref() is not obj:
        return None
    if entry.signature is not None:
        try:
            unchanged = _signature(obj) == entry.signature
        except Exception:  # noqa: BLE001 - no longer exportable: it changed; rehash it
            unchanged = False
        if not unchanged:
            forget(obj)  # mutated in place since it left the cache
            return None
    return entry.artifact_id


def forget(obj: object) -> None:
    """Drop what is remembered about ``obj`` (no-op when nothing is)."""
    with _lock:
        entry = _entries.get(id(obj))
        if entry is not None and entry.ref() is obj:
            del _entries[id(obj)]


def remembered_count() -> int:
    """How many live objects are remembered (for tests and diagnostics)."""
    with _lock:
        return len(_entries)
