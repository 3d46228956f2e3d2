"""The input-mutation guard: warn when a feature's body changes one of its arguments in place.

A body that does ``df["new"] = 1`` on its input gives the caller a changed frame on a miss and
an unchanged one on a hit, where the body does not run: code after the call works on the cold
run and silently breaks on the warm one. The engine wraps each miss's body in ``watch_inputs``
(before) and ``InputWatch.check`` (after), which warns ``InputMutatedWarning`` naming the feature
and the argument. A hit runs nothing, so it costs nothing there.

Two levels:

* **Always on, metadata only** (no value is read; microseconds per frame, whatever its size):
  pandas DataFrame: column labels, shape, index, index and column names, dtypes; pandas Series:
  length, name, index, dtype; polars DataFrame: column names, dtypes, shape; polars Series:
  name, dtype, length; numpy array: shape, dtype. An index or a column index is compared by
  identity first (any in-place change replaces it, indexes are immutable) and by ``equals``
  only when it was replaced, so a no-op such as ``reset_index(drop=True, inplace=True)`` on a
  RangeIndex does not warn.
* **Full** (``check_input_mutation``, ``FEATURECACHE_CHECK_INPUT_MUTATION=1``): after the body,
  every frame, Series and array argument is fingerprinted again (``fingerprint_input``, the
  key's own function) and compared with the fingerprint the key was built from; this sees a
  value edited in place with the same shape (``df.loc[0, "x"] = 5``, ``x -= x.mean()``,
  ``df.fillna(0, inplace=True)``), at the cost of a second hash of those inputs per miss.

What is not watched, and why: pyarrow tables and polars LazyFrames are immutable. numpy
arrays change in place through their values (``x /= x.std()``), which only a content hash
sees: the metadata check catches the rare ``x.resize(...)`` / ``x.shape = ...``, the full check
the rest; a sampled hash was rejected, because a guard that catches some value edits and not
others teaches users to trust it. polars frames change in place only through a few methods
(``insert_column``, ``replace_column``, ``drop_in_place``, ``extend``, ``vstack(in_place=True)``,
``df.columns = …``, ``df[i, "c"] = v``): each changes the schema or the shape, which the
metadata check sees, except ``df[i, "c"] = v`` and a ``replace_column`` that keeps the dtype;
the full check sees every one. (Comparing the
Arrow buffer addresses instead, as ``carry`` does, was measured at 25 ms on 1,000,000 x 20 and
changes when the body only reads: ``to_numpy``, ``to_pandas`` and ``iter_rows`` realign chunks.)

Arguments are searched for frames and arrays inside lists, tuples, dicts and config objects
(dataclasses, attrs classes, pydantic models, ``NamedTuple``s), up to ``WALK_LIMIT`` objects
per call so that a list of a million numbers is not walked to its end.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol

from featurecache.errors import InputMutatedWarning, UnsupportedInputError
from featurecache.fingerprint.arguments import bound_arguments
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.inputs import fingerprint_input
from featurecache.fingerprint.types import InputFingerprint
from featurecache.frames import is_instance

__all__ = ["WALK_LIMIT", "InputWatch", "Mutation", "watch_inputs"]

# Objects visited per call while looking for frames inside containers and config objects.
WALK_LIMIT = 10_000
# InputFingerprint kinds of a frame, Series or array argument (a Series' kind is its library).
_FRAME_KINDS = frozenset({"pandas", "polars", "numpy"})
# What a content change kept, by noun: the metadata check compared all of it.
_SAME = {
    "frame": "same shape, columns, dtypes and index",
    "Series": "same length, name, dtype and index",
    "array": "same shape and dtype",
}
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class _FeatureLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def signature(self) -> inspect.Signature: ...


class WatchedCall(Protocol):
    """What the guard needs of the engine's ``Call`` (the engine is above this package)."""

    @property
    def feature(self) -> _FeatureLike: ...
    @property
    def args(self) -> tuple[Any, ...]: ...
    @property
    def kwargs(self) -> dict[str, Any]: ...
    @property
    def inputs(self) -> Mapping[str, InputFingerprint]: ...


@dataclass(frozen=True)
class _Layout:
    """An object's metadata at one moment. ``index`` and ``columns`` hold pandas Index objects
    themselves (immutable: a change in place replaces them), their names are copied because an
    Index's ``name`` can be set in place."""

    shape: tuple[int, ...]
    columns: Any = None
    index: Any = None
    names: tuple[Any, ...] = ()
    dtypes: tuple[Any, ...] = ()


@dataclass(frozen=True)
class _Watched:
    argument: str  # the top-level argument
    where: str  # where the object sits in it: "df", "cfg.train", "dfs[0]", "data['x']"
    obj: Any
    noun: str  # "frame", "Series", "array": what the fix tells the user to return
    layout: _Layout
    fingerprint: str | None  # content before the body (full check only)


@dataclass(frozen=True)
class Mutation:
    """One argument (or object inside one) that the body changed in place."""

    argument: str
    where: str
    change: str
    noun: str

    def warning(self, feature: str) -> InputMutatedWarning:
        copy = "x = x.copy()" if self.noun == "array" else "df = df.copy(), or df.assign(...)"
        return InputMutatedWarning(
            feature,
            self.where,
            self.change,
            f"return the new {self.noun} instead (work on a copy: {copy})",
        )


def _layout(obj: Any) -> tuple[str, _Layout] | None:
    """(noun, metadata) of a mutable frame, Series or array; None for anything else."""
    if is_instance(obj, "pandas", "DataFrame"):
        return "frame", _Layout(
            shape=obj.shape,
            columns=obj.columns,
            index=obj.index,
            names=(tuple(obj.index.names), tuple(obj.columns.names)),
            dtypes=tuple(obj.dtypes),
        )
    if is_instance(obj, "pandas", "Series"):
        names = (obj.name, tuple(obj.index.names))
        return "Series", _Layout(obj.shape, index=obj.index, names=names, dtypes=(obj.dtype,))
    if is_instance(obj, "polars", "DataFrame"):
        return "frame", _Layout(
            shape=obj.shape, columns=tuple(obj.columns), dtypes=tuple(obj.dtypes)
        )
    if is_instance(obj, "polars", "Series"):
        return "Series", _Layout(shape=obj.shape, names=(obj.name,), dtypes=(obj.dtype,))
    if is_instance(obj, "numpy", "ndarray"):
        return "array", _Layout(shape=obj.shape, dtypes=(obj.dtype,))
    return None


def _same(a: Any, b: Any) -> bool:
    """Equality that never raises and never trusts a non-bool ``==`` (arrays, pd.NA)."""
    if a is b:
        return True
    try:
        return bool(type(a) is type(b) and a == b)
    except (TypeError, ValueError):
        return False


def _same_labels(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if a is None or b is None:
        return False
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(map(_same, a, b))
    # Replaced pandas Index: equal labels (the dtype too) mean an in-place no-op.
    return bool(a.equals(b) and a.dtype == b.dtype)


def _column_change(before: Any, after: Any) -> str:
    old, new = list(before), list(after)
    added = [c for c in new if not any(_same(c, o) for o in old)]
    removed = [c for c in old if not any(_same(c, n) for n in new)]
    parts = []
    if added:
        parts.append(f"added column{'s' if len(added) > 1 else ''} {_show(added)}")
    if removed:
        parts.append(f"removed column{'s' if len(removed) > 1 else ''} {_show(removed)}")
    return ", ".join(parts) or "renamed or reordered columns"


def _show(labels: list[Any]) -> str:
    shown = ", ".join(repr(label) for label in labels[:5])
    return shown + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")


def _changes(before: _Layout, after: _Layout) -> list[str]:
    """What differs between two layouts of one object, in words (empty: unchanged)."""
    out = []
    columns_changed = not _same_labels(before.columns, after.columns)
    if columns_changed:
        out.append(_column_change(before.columns, after.columns))
    elif not _same_labels(before.dtypes, after.dtypes):
        out.append("changed a column's dtype" if before.columns is not None else "changed dtype")
    if columns_changed and before.shape[:1] == after.shape[:1]:
        pass  # a frame's width is said by its column labels
    elif before.shape != after.shape:
        out.append(f"shape {before.shape} -> {after.shape}")
    if not _same_labels(before.index, after.index):
        out.append("changed the index (labels or row order)")
    if not _same_labels(before.names, after.names):
        out.append("renamed the index, the columns' axis or the Series")
    return out


def _fields(obj: Any) -> Iterator[tuple[str, Any]]:
    """(label, value) of the parts of a container or config object that may hold frames."""
    cls = type(obj)
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield f"[{key!r}]", value
    elif isinstance(obj, tuple) and hasattr(cls, "_fields"):  # a NamedTuple
        for name, value in zip(cls._fields, obj, strict=False):
            yield f".{name}", value
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            yield f"[{i}]", value
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for field in dataclasses.fields(obj):
            yield f".{field.name}", getattr(obj, field.name, None)
    elif (attrs := getattr(cls, "__attrs_attrs__", None)) is not None:
        for attribute in attrs:
            yield f".{attribute.name}", getattr(obj, attribute.name, None)
    elif isinstance(fields := getattr(cls, "model_fields", None), dict):  # pydantic v2
        for name in fields:
            yield f".{name}", getattr(obj, name, None)


def _leaves(arguments: Mapping[str, Any]) -> Iterator[tuple[str, str, Any, str, _Layout]]:
    """(argument, where, object, noun, layout) of every mutable frame, Series or array among
    the arguments, each object once, visiting at most ``WALK_LIMIT`` objects."""
    seen: set[int] = set()
    stack = [(name, name, value) for name, value in arguments.items()][::-1]
    visited = 0
    while stack and visited < WALK_LIMIT:
        argument, where, obj = stack.pop()
        visited += 1
        if id(obj) in seen or obj is None or isinstance(obj, str | bytes | int | float):
            continue
        seen.add(id(obj))
        found = _layout(obj)
        if found is not None:
            yield argument, where, obj, *found
            continue
        parts = [(argument, where + label, value) for label, value in _fields(obj)]
        stack.extend(reversed(parts))


def _known_fingerprints(inputs: Mapping[str, InputFingerprint]) -> dict[str, str]:
    """Content fingerprints the key already holds, by place: frame/array arguments, and frame
    parts of containers (``at``). The full check reuses them instead of hashing twice."""
    known = {}
    for name, fp in inputs.items():
        if fp.kind in _FRAME_KINDS:
            known[name] = fp.fingerprint
        elif fp.kind == "container" and isinstance(fp.value, dict):
            for part in fp.value.get("parts", ()):
                if isinstance(part, dict) and part.get("kind") in _FRAME_KINDS:
                    known[str(part.get("at"))] = str(part.get("fingerprint"))
    return known


def _content(where: str, obj: Any, files: FileFingerprinter) -> str | None:
    try:
        return fingerprint_input(where, obj, files=files).fingerprint
    except UnsupportedInputError:
        return None  # not hashable as an input (an object dtype): only its metadata is watched


class InputWatch:
    """The frames and arrays of one call, as they were before its body ran."""

    def __init__(
        self, feature: str, watched: list[_Watched], files: FileFingerprinter | None
    ) -> None:
        self.feature = feature
        self.watched = watched
        self._files = files

    def mutations(self) -> list[Mutation]:
        """What the body changed in place, one entry per changed object."""
        found = []
        for item in self.watched:
            layout = _layout(item.obj)
            changes = [] if layout is None else _changes(item.layout, layout[1])
            if not changes and item.fingerprint is not None and self._files is not None:
                after = _content(item.where, item.obj, self._files)
                if after != item.fingerprint:
                    changes = [f"changed its values; {_SAME[item.noun]}"]
            if changes:
                found.append(Mutation(item.argument, item.where, "; ".join(changes), item.noun))
        return found

    def check(self) -> list[Mutation]:
        """Warn ``InputMutatedWarning`` for each argument the body changed in place, pointing
        at the line that called the feature; return what was found."""
        found = self.mutations()
        for mutation in found:
            warnings.warn(mutation.warning(self.feature), stacklevel=_user_stacklevel())
        return found


def watch_inputs(
    call: WatchedCall, *, full: bool = False, files: FileFingerprinter | None = None
) -> InputWatch:
    """Snapshot the metadata of every frame, Series and array the call's arguments hold (and,
    with ``full``, their content fingerprints: the key's where it has them) before its body
    runs. ``files`` is needed for ``full`` only."""
    # The names the key used, defaults included (a mutable default!).
    arguments = bound_arguments(call.feature.signature, call.args, call.kwargs)
    known = _known_fingerprints(call.inputs) if full else {}
    watched = []
    for argument, where, obj, noun, layout in _leaves(arguments):
        fingerprint = None
        if full and files is not None:
            fingerprint = known.get(where) or _content(where, obj, files)
        watched.append(_Watched(argument, where, obj, noun, layout, fingerprint))
    return InputWatch(call.feature.name, watched, files if full else None)


def _user_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside featurecache, counted from the caller of
    ``warnings.warn``: the warning then names the user's line that called the feature."""
    frame: FrameType | None = sys._getframe(1)  # the caller of warnings.warn: stacklevel 1
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level
