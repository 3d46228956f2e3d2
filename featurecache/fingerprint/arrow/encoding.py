"""How each Arrow type is encoded for fingerprints: the per-type nodes behind ``arrow``.

A node turns consecutive rows of one type (``pieces``: zero-copy slices that may come from
different chunks) into a nested list of xxh3 stream digests. The streams are defined in the
docstring of ``featurecache.fingerprint.arrow.content``; everything here must produce the same bytes
for the same logical values whatever the pieces' offsets, padding or bytes under null slots.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from featurecache.hashing import (
    canonical_encode,
    digest_bytes,
    encoded_digest,
    encoded_list,
    new_hasher,
)

_ONES = np.ones(1 << 16, np.uint8)

Pieces = Sequence[pa.Array]


def _update(hasher: Any, data: np.ndarray | pa.Buffer) -> None:
    hasher.update(data.data if isinstance(data, np.ndarray) else data)


def _bits(buffer: pa.Buffer | None, offset: int, length: int) -> np.ndarray:
    """A bit-packed Arrow buffer as one uint8 (0/1) per row."""
    if buffer is None:
        return np.zeros(length, np.uint8)
    first, stop = offset // 8, (offset + length + 7) // 8
    packed = np.frombuffer(buffer, np.uint8, count=stop - first, offset=first)
    shift = offset % 8
    return np.unpackbits(packed, bitorder="little")[shift : shift + length]


def _masks(pieces: Pieces) -> tuple[str | None, list[np.ndarray | None]]:
    """The validity stream's digest (None when nothing is null) and each piece's mask."""
    if not any(piece.null_count for piece in pieces):
        return None, [None] * len(pieces)
    hasher = new_hasher()
    masks: list[np.ndarray | None] = []
    for piece in pieces:
        if piece.null_count:
            mask = _bits(piece.buffers()[0], piece.offset, len(piece))
            _update(hasher, mask)
            masks.append(mask)
            continue
        remaining = len(piece)
        while remaining:
            step = min(remaining, len(_ONES))
            _update(hasher, _ONES[:step])
            remaining -= step
        masks.append(None)
    return hasher.hexdigest(), masks


def _zero_rows(rows: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of a 2-D byte array with the rows of null slots zeroed (faster than a
    broadcast multiply)."""
    out = rows.copy()
    out[np.flatnonzero(mask == 0)] = 0
    return out


class Node:
    """How one Arrow type is encoded; ``digest(pieces)`` covers consecutive rows."""

    kind = "node"

    def digest(self, pieces: Pieces) -> list[Any]:
        pieces = [piece for piece in pieces if len(piece)]
        validity, masks = _masks(pieces)
        return [self.kind, sum(len(p) for p in pieces), validity, *self._values(pieces, masks)]

    def _values(self, pieces: Pieces, masks: list[np.ndarray | None]) -> list[Any]:
        return []


class _NullNode(Node):
    kind = "null"

    def digest(self, pieces: Pieces) -> list[Any]:
        return [self.kind, sum(len(p) for p in pieces)]  # null by type: nothing else to say


class _FixedNode(Node):
    kind = "fixed"

    def __init__(self, width: int) -> None:
        self.width = width

    def _values(self, pieces: Pieces, masks: list[np.ndarray | None]) -> list[Any]:
        width, hasher = self.width, new_hasher()
        for piece, mask in zip(pieces, masks, strict=True):
            length = len(piece)
            buffer = piece.buffers()[1]
            if buffer is None:  # only possible when every row is null
                _update(hasher, np.zeros(length * width, np.uint8))
                continue
            data = np.frombuffer(
                buffer, np.uint8, count=length * width, offset=piece.offset * width
            )
            if mask is not None:  # bytes under null slots are unspecified: zero them
                if width in (1, 2, 4, 8):
                    data = np.multiply(data.view(f"<u{width}"), mask)
                else:
                    data = _zero_rows(data.reshape(length, width), mask)
            _update(hasher, data)
        return [width, hasher.hexdigest()]


class _BoolNode(Node):
    kind = "bool"

    def _values(self, pieces: Pieces, masks: list[np.ndarray | None]) -> list[Any]:
        hasher = new_hasher()
        for piece, mask in zip(pieces, masks, strict=True):
            values = _bits(piece.buffers()[1], piece.offset, len(piece))
            _update(hasher, values if mask is None else values & mask)
        return [hasher.hexdigest()]


def _offsets(arr: pa.Array, dtype: type[np.integer[Any]]) -> np.ndarray:
    itemsize = np.dtype(dtype).itemsize
    return np.frombuffer(arr.buffers()[1], dtype, count=len(arr) + 1, offset=arr.offset * itemsize)


class _OffsetsNode(Node):
    """Binary/string (content = bytes) and list (content = a child type's encoding)."""

    def __init__(self, large: bool) -> None:
        self._dtype: type[np.integer[Any]] = np.int64 if large else np.int32

    def _values(self, pieces: Pieces, masks: list[np.ndarray | None]) -> list[Any]:
        lengths_hasher = new_hasher()
        spans: list[tuple[pa.Array, int, int, bool]] = []
        for piece, mask in zip(pieces, masks, strict=True):
            offsets = _offsets(piece, self._dtype)
            start, stop = int(offsets[0]), int(offsets[-1])
            lengths = np.diff(offsets)
            spanning = False  # do null slots span content that must be left out?
            if mask is not None:
                lengths *= mask
                spanning = int(lengths.sum()) != stop - start
            _update(lengths_hasher, lengths)
            spans.append((piece, start, stop, spanning))
        return [lengths_hasher.hexdigest(), self._content(spans)]

    def _content(self, spans: list[tuple[pa.Array, int, int, bool]]) -> Any:
        raise NotImplementedError


class _BinaryNode(_OffsetsNode):
    kind = "binary"

    def _content(self, spans: list[tuple[pa.Array, int, int, bool]]) -> Any:
        hasher = new_hasher()
        for piece, start, stop, spanning in spans:
            arr, first, last = piece, start, stop
            if spanning:
                arr = piece.drop_null()
                offsets = _offsets(arr, self._dtype)
                first, last = int(offsets[0]), int(offsets[-1])
            if last > first:
                _update(hasher, arr.buffers()[2].slice(first, last - first))
        return hasher.hexdigest()


class _ListNode(_OffsetsNode):
    kind = "list"

    def __init__(self, large: bool, child: Node) -> None:
        super().__init__(large)
        self.child = child

    def _content(self, spans: list[tuple[pa.Array, int, int, bool]]) -> Any:
        # flatten() leaves out what null slots span (and, unlike take, handles view children).
        children = [
            piece.flatten() if spanning else piece.values.slice(start, stop - start)
            for piece, start, stop, spanning in spans
        ]
        return self.child.digest(children)


def _map_as_list(arr: pa.Array) -> pa.Array:
    """A map array read as the list of its entries (zero-copy)."""
    return pa.Array.from_buffers(
        pa.list_(arr.values.type),
        len(arr),
        arr.buffers()[:2],
        null_count=arr.null_count,
        offset=arr.offset,
        children=[arr.values],
    )


class _ListViewNode(Node):
    kind = "list"  # the same streams as list / large_list

    def __init__(self, large: bool, child: Node) -> None:
        self._dtype = np.int64 if large else np.int32
        self.child = child

    def _values(self, pieces: Pieces, masks: list[np.ndarray | None]) -> list[Any]:
        hasher = new_hasher()
        for piece in pieces:
            sizes = pc.list_value_length(piece).fill_null(0)
            _update(hasher, np.ascontiguousarray(sizes, dtype=self._dtype))
        # flatten() follows the views in row order and skips null rows.
        return [hasher.hexdigest(), self.child.digest([piece.flatten() for piece in pieces])]


class _FixedListNode(Node):
    kind = "fixed_size_list"

    def __init__(self, child: Node) -> None:
        self.child = child

    def _values(self, pieces: Pieces, masks: list[np.ndarray | None]) -> list[Any]:
        return [self.child.digest([piece.flatten() for piece in pieces])]  # valid rows only


class _StructNode(Node):
    kind = "struct"

    def __init__(self, children: list[Node]) -> None:
        self.children = children

    def _values(self, pieces: Pieces, masks: list[np.ndarray | None]) -> list[Any]:
        # flatten() marks the children of a null row null, so whatever they hold does not count.
        fields = [piece.flatten() for piece in pieces]
        return [[c.digest([f[i] for f in fields]) for i, c in enumerate(self.children)]]


class _WrapNode(Node):
    """Encodes a transformed array with an inner node: views, nested dictionaries, extension
    storage, run-end decoding."""

    def __init__(self, kind: str, inner: Node, transform: Callable[[pa.Array], pa.Array]) -> None:
        self.kind = kind
        self.inner = inner
        self._transform = transform

    def digest(self, pieces: Pieces) -> list[Any]:
        return [self.kind, self.inner.digest([self._transform(p) for p in pieces if len(p)])]


class _ViewNode(Node):
    """string_view / binary_view. A block whose valid values all fit in 12 bytes is hashed
    straight from its 16-byte views (length + inline bytes; the format zero-pads them), with
    null rows zeroed; any other block is read through its large form like large_string. Which
    of the two applies depends on the values only, so the choice is canonical."""

    kind = "view"

    def __init__(self) -> None:
        self._fallback = _BinaryNode(large=True)

    def digest(self, pieces: Pieces) -> list[Any]:
        pieces = [piece for piece in pieces if len(piece)]
        validity, masks = _masks(pieces)
        views = [
            np.frombuffer(p.buffers()[1], np.uint8, count=len(p) * 16, offset=p.offset * 16)
            for p in pieces
        ]
        lengths = [v.view("<i4")[::4] for v in views]
        if all(
            (length if mask is None else length * mask).max(initial=0) <= 12
            for length, mask in zip(lengths, masks, strict=True)
        ):
            hasher = new_hasher()
            for view, mask in zip(views, masks, strict=True):
                rows = view.reshape(-1, 16)
                _update(hasher, rows if mask is None else _zero_rows(rows, mask))
            return ["view-inline", sum(len(p) for p in pieces), validity, hasher.hexdigest()]
        return [self.kind, self._fallback.digest([_view_to_large_binary(p) for p in pieces])]


def _view_to_large_binary(arr: pa.Array) -> pa.Array:
    """The large form of a view array. Read as binary (zero-copy) first: the bytes are the
    same and the cast then skips UTF-8 validation (~15% faster)."""
    if not pa.types.is_binary_view(arr.type):
        arr = pa.Array.from_buffers(
            pa.binary_view(), len(arr), arr.buffers(), null_count=arr.null_count, offset=arr.offset
        )
    return arr.cast(pa.large_binary())


class _UnionNode(Node):
    kind = "union"

    def digest(self, pieces: Pieces) -> list[Any]:
        hasher = new_hasher()
        for piece in pieces:
            for scalar in piece:
                hasher.update(canonical_encode([scalar.type_code, scalar.as_py()]))
        return [self.kind, sum(len(p) for p in pieces), hasher.hexdigest()]


def whole_digest_encoded(node: Node, pieces: Pieces, rows_encoded: bytes) -> bytes:
    """``canonical_encode(node.digest(pieces))``, computed more cheaply for the usual column of
    a small frame: one piece without nulls, fixed-width or a string/binary view whose values
    all fit inline. Same streams, each hashed in one call instead of through a streaming
    hasher (the same digest: xxh3 of one update is the one-shot xxh3), and encoded from parts
    that repeat (``rows_encoded``: ``canonical_encode`` of the pieces' total row count)."""
    if len(pieces) != 1 or pieces[0].null_count:
        return canonical_encode(node.digest(pieces))
    piece = pieces[0]
    rows, cls = len(piece), type(node)
    if cls is _FixedNode:
        width = node.width  # type: ignore[attr-defined]
        data = piece.buffers()[1].slice(piece.offset * width, rows * width)
        # [node.kind, rows, None, width, digest]
        return encoded_list(
            [_FIXED, rows_encoded, _NONE, _encoded_int(width), encoded_digest(digest_bytes(data))]
        )
    if cls is _ViewNode:
        views = piece.buffers()[1]
        if _longest_view(views, piece.offset, rows) <= 12:
            data = views.slice(piece.offset * 16, rows * 16)
            # ["view-inline", rows, None, digest]
            return encoded_list(
                [_VIEW_INLINE, rows_encoded, _NONE, encoded_digest(digest_bytes(data))]
            )
    return canonical_encode(node.digest(pieces))


_FIXED = canonical_encode(_FixedNode.kind)
_VIEW_INLINE = canonical_encode("view-inline")
_NONE = canonical_encode(None)


@functools.cache
def _encoded_int(value: int) -> bytes:
    return canonical_encode(value)


def _longest_view(views: pa.Buffer, offset: int, rows: int) -> int:
    """The largest length field (the first 4 bytes of a view, little-endian) of ``rows``
    16-byte views from row ``offset``: read by one ``struct`` call for a few rows, where
    numpy's set-up costs more than the reading."""
    if rows <= _FEW_VIEWS:
        return int(max(_view_lengths(rows).unpack_from(views, offset * 16)))
    data = np.frombuffer(views, np.uint8, count=rows * 16, offset=offset * 16)
    return int(data.view("<i4")[::4].max())


_FEW_VIEWS = 32


@functools.lru_cache(maxsize=_FEW_VIEWS)
def _view_lengths(rows: int) -> struct.Struct:
    return struct.Struct("<" + "i12x" * rows)


def _decoded(value_type: pa.DataType) -> Node:
    """A dictionary nested in another type, hashed by its decoded values. ``take`` has no
    kernel for view types, so view dictionaries are decoded through their large form."""
    large = {pa.string_view(): pa.large_string(), pa.binary_view(): pa.large_binary()}.get(
        value_type
    )

    def decode(arr: pa.Array) -> pa.Array:
        if large is not None:
            arr = pa.DictionaryArray.from_arrays(arr.indices, arr.dictionary.cast(large))
        return arr.dictionary_decode()

    return _WrapNode("decoded", make_node(large or value_type), decode)


def make_node(t: pa.DataType) -> Node:
    """The encoding of ``t`` in a block (top-level dictionaries are handled by the column)."""
    types = pa.types
    if isinstance(t, pa.BaseExtensionType):
        return _WrapNode("extension", make_node(t.storage_type), lambda a: a.storage)
    if types.is_dictionary(t):
        return _decoded(t.value_type)
    if types.is_null(t):
        return _NullNode()
    if types.is_boolean(t):
        return _BoolNode()
    if types.is_string(t) or types.is_binary(t):
        return _BinaryNode(large=False)
    if types.is_large_string(t) or types.is_large_binary(t):
        return _BinaryNode(large=True)
    if types.is_string_view(t) or types.is_binary_view(t):
        return _ViewNode()
    if types.is_map(t):
        entries = _ListNode(False, make_node(pa.struct([t.key_field, t.item_field])))
        return _WrapNode("map", entries, _map_as_list)
    if types.is_list(t) or types.is_large_list(t):
        return _ListNode(types.is_large_list(t), make_node(t.value_type))
    if types.is_list_view(t) or types.is_large_list_view(t):
        return _ListViewNode(types.is_large_list_view(t), make_node(t.value_type))
    if types.is_fixed_size_list(t):
        return _FixedListNode(make_node(t.value_type))
    if types.is_struct(t):
        return _StructNode([make_node(t.field(i).type) for i in range(t.num_fields)])
    if types.is_union(t):
        return _UnionNode()
    if types.is_run_end_encoded(t):
        return _WrapNode("run_end", make_node(t.value_type), pc.run_end_decode)
    try:
        width = t.byte_width
    except ValueError:  # pyarrow's answer for types that are not fixed-width
        width = 0
    if width > 0:
        return _FixedNode(width)
    raise TypeError(f"featurecache cannot fingerprint Arrow type {t}")
