"""Logical fingerprints of Arrow data: xxh3-128 over a canonical, layout-independent encoding.

``fingerprint_table`` is the one definition of "same frame" in featurecache: an output's
artifact id and a frame input's fingerprint both come from it. It covers the schema (names,
types, nullability, metadata; see ``arrow_schema``), the row count, row order and every value,
and it does not depend on how the data sits in memory: one chunk or a thousand, sliced arrays,
padding, capacity, or whatever bytes lie under null slots.

Canonical form (``CANONICAL_FORMAT``; changing any of it changes every artifact id):

* A column's rows are cut into blocks of ``BLOCK_ROWS`` rows counted from the first row, whatever
  the chunking; each block is hashed on its own (blocks are the unit of parallelism) and the
  column digest combines the block digests with the type and the row count.
* Inside a block each type feeds a few xxh3 streams whose bytes depend only on logical values
  (streaming xxh3 of pieces equals the digest of their concatenation, so the pieces of a block
  that come from different chunks do not matter):
  - validity: one byte per row (1 valid, 0 null), only when the block has a null;
  - fixed-width values (numbers, temporal, decimals, intervals, fixed_size_binary): the value
    bytes, zeroed under null slots; booleans: one byte per row, 0 under nulls;
  - binary/string, list/map: per-row lengths (0 for nulls; int32 for 32-bit offset types, int64
    for large and view types), then the content of the valid rows in order (bytes, or the child
    type's encoding of the child values); view types are read through their large form, except
    blocks of short values (all <= 12 bytes), hashed from the views themselves;
  - struct: each child over all rows, with the rows of null structs made null;
    fixed_size_list: the children of the valid rows;
  - dictionary columns: the column's dictionary once (dictionaries of differing chunks are
    unified first), then the indices; the dictionary is content because pandas categories and
    their order are. Dictionaries nested in other types are decoded;
  - extension types: their storage; run-end encoded: the decoded values; unions: each row's
    type code and value through ``canonical_encode`` (slow but rare).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from featurecache.background import ProcessPool
from featurecache.fingerprint.arrow.encoding import Node, make_node, whole_digest_encoded
from featurecache.fingerprint.arrow.schema import (
    field_descriptor,
    metadata_descriptor,
    type_descriptor,
)
from featurecache.hashing import (
    canonical_encode,
    digest_bytes,
    encoded_digest,
    encoded_list,
    hash_struct,
)

CANONICAL_FORMAT = "arrow-canonical-1"
BLOCK_ROWS = 1 << 20

# Below this many buffer bytes a table is hashed on the calling thread (pool overhead dominates).
_PARALLEL_MIN_BYTES = 8 << 20
# A block assembled from more pieces than this is concatenated first: per-piece Python overhead
# (tens of µs) costs more than copying a million rows of small chunks.
_MAX_PIECES = 16


def _same_array(a: pa.Array, b: pa.Array) -> bool:
    if a is b:
        return True
    buffers_a, buffers_b = a.buffers(), b.buffers()
    same = (a.offset, len(a), len(buffers_a)) == (b.offset, len(b), len(buffers_b)) and all(
        (x is None) == (y is None) and (x is None or x.address == y.address)
        for x, y in zip(buffers_a, buffers_b, strict=True)
    )
    return same or a.equals(b)


class _Column:
    """One top-level column made ready for block hashing."""

    def __init__(self, column: pa.ChunkedArray) -> None:
        self.type = column.type
        self.rows = len(column)
        chunks = [chunk for chunk in column.chunks if len(chunk)]
        self.dictionary: list[Any] | None = None
        if pa.types.is_dictionary(column.type):
            if len(chunks) > 1 and not all(
                _same_array(chunks[0].dictionary, c.dictionary) for c in chunks[1:]
            ):
                chunks = list(pa.chunked_array(chunks, column.type).unify_dictionaries().chunks)
            # An empty column still has its categories (pandas keeps them on empty frames).
            source = chunks[0] if chunks else column.chunk(0) if column.num_chunks else None
            if source is not None:
                self.dictionary = make_node(column.type.value_type).digest([source.dictionary])
            chunks = [chunk.indices for chunk in chunks]
            self.node = make_node(column.type.index_type)
        else:
            self.node = make_node(column.type)
        self.chunks = chunks
        self.size = column.get_total_buffer_size()

    def blocks(self) -> list[list[pa.Array]]:
        """The chunks cut at every multiple of ``BLOCK_ROWS`` (zero-copy slices)."""
        blocks: list[list[pa.Array]] = [[]]
        room = BLOCK_ROWS
        for chunk in self.chunks:
            start = 0
            while start < len(chunk):
                take = min(room, len(chunk) - start)
                blocks[-1].append(chunk.slice(start, take) if take < len(chunk) else chunk)
                start += take
                room -= take
                if room == 0:
                    blocks.append([])
                    room = BLOCK_ROWS
        return [block for block in blocks if block]

    def block_digest(self, pieces: list[pa.Array]) -> str:
        if len(pieces) > _MAX_PIECES:
            # On failure (e.g. 32-bit offsets would overflow) the pieces are hashed as they are.
            with contextlib.suppress(pa.ArrowException):
                pieces = [pa.concat_arrays(pieces)]
        return hash_struct(["block", self.node.digest(pieces)])

    def digest(self, block_digests: list[str]) -> str:
        return hash_struct(
            ["column", type_descriptor(self.type), self.rows, self.dictionary, block_digests]
        )


# xxhash, numpy and the pyarrow kernels used here release the GIL: one thread per core.
_HASH_POOL = ProcessPool("featurecache-hash", max(1, os.cpu_count() or 1))


def _column_digests(columns: Sequence[pa.ChunkedArray]) -> list[str]:
    prepared = [_Column(column) for column in columns]
    work = [(i, block) for i, column in enumerate(prepared) for block in column.blocks()]
    total = sum(column.size for column in prepared)
    # Cheapest test first: os.cpu_count() reads /sys (tens of µs), a tiny frame never needs it.
    if (
        len(work) < 2
        or total < _PARALLEL_MIN_BYTES
        or threading.current_thread().name.startswith(_HASH_POOL.prefix)  # never wait on our pool
        or (os.cpu_count() or 1) < 2
    ):
        digests = [prepared[i].block_digest(block) for i, block in work]
    else:
        # xxhash, numpy and the pyarrow kernels used here release the GIL: blocks hash on all
        # cores. Biggest columns first, so the last task to finish is a small one.
        order = sorted(range(len(work)), key=lambda k: -prepared[work[k][0]].size)
        pool = _HASH_POOL.get()
        futures = {k: pool.submit(prepared[work[k][0]].block_digest, work[k][1]) for k in order}
        digests = [futures[k].result() for k in range(len(work))]
    per_column: list[list[str]] = [[] for _ in prepared]
    for (i, _), digest in zip(work, digests, strict=True):
        per_column[i].append(digest)
    return [column.digest(per_column[i]) for i, column in enumerate(prepared)]


# Parametric types that are fixed-width values described by their rendering (``type_descriptor``
# falls through to ``["type", str(t)]`` for them) and compare equal only when every parameter
# (unit, time zone, precision, width) is equal.
_PLAIN_PARAMETRIC = (
    pa.TimestampType,
    pa.Time32Type,
    pa.Time64Type,
    pa.DurationType,
    pa.Decimal128Type,
    pa.FixedSizeBinaryType,
)


def _plain_node(t: pa.DataType) -> Node | None:
    """The node of a plain type, built once per process: exactly ``pa.DataType`` (numbers,
    bool, strings, binary, views, dates) or one of ``_PLAIN_PARAMETRIC``; never dictionary,
    nested or extension types. None for any other type."""
    if type(t) is not pa.DataType and type(t) not in _PLAIN_PARAMETRIC:
        return None
    node = _PLAIN_NODES.get(t)
    if node is None:
        node = _PLAIN_NODES[t] = make_node(t)
    return node


_PLAIN_NODES: dict[pa.DataType, Node] = {}


def _small_column_digests(table: pa.Table) -> list[str] | None:
    """``_column_digests`` for a small table of plain columns (``_plain_node``) that fits in
    one block, or None for any other table. The same digests, without the general path's
    per-column set-up (block cutting, the parallel plan, building nodes) and with the parts
    of each ``hash_struct`` that repeat encoded once per process: on a tiny frame those cost
    more than the hashing."""
    rows = table.num_rows
    if rows > BLOCK_ROWS or table.get_total_buffer_size() >= _PARALLEL_MIN_BYTES:
        return None
    types = table.schema.types
    nodes = [_plain_node(t) for t in types]
    if None in nodes:
        return None
    rows_encoded = canonical_encode(rows)
    no_blocks = encoded_list([])
    # One record batch (every column one chunk, as a polars export is): its columns are the
    # pieces, without a ChunkedArray and a chunk list made for each.
    batches = table.to_batches() if rows else []
    batch = batches[0] if len(batches) == 1 else None
    digests = []
    for i, (t, node) in enumerate(zip(types, nodes, strict=True)):
        assert node is not None
        blocks = no_blocks
        if rows:
            if batch is not None:
                pieces = [batch.column(i)]
            else:
                pieces = [chunk for chunk in table.column(i).chunks if len(chunk)]
                if len(pieces) > _MAX_PIECES:
                    with contextlib.suppress(pa.ArrowException):
                        pieces = [pa.concat_arrays(pieces)]
            # hash_struct(["block", node.digest(pieces)])
            block = encoded_list([_BLOCK, whole_digest_encoded(node, pieces, rows_encoded)])
            blocks = encoded_list([encoded_digest(digest_bytes(block))])
        # hash_struct(["column", type_descriptor(type), rows, None, [block digests]])
        encoded = [_COLUMN, _encoded_type(t), rows_encoded, _NONE, blocks]
        digests.append(digest_bytes(encoded_list(encoded)))
    return digests


_BLOCK = canonical_encode("block")
_COLUMN = canonical_encode("column")
_NONE = canonical_encode(None)
_ENCODED_TYPES: dict[pa.DataType, bytes] = {}


def _encoded_type(t: pa.DataType) -> bytes:
    """``canonical_encode(type_descriptor(t))`` of a plain type (``_plain_node``), once per
    process."""
    found = _ENCODED_TYPES.get(t)
    if found is None:
        found = _ENCODED_TYPES[t] = canonical_encode(type_descriptor(t))
    return found


def fingerprint_table(table: pa.Table) -> str:
    """32-hex xxh3-128 of a table's logical content: schema, row count, values, row order."""
    digests = _small_column_digests(table)
    if digests is None:
        digests = _column_digests(table.columns)
    # hash_struct(["table", CANONICAL_FORMAT, schema_descriptor(schema), rows, digests])
    return digest_bytes(
        encoded_list(
            [
                _TABLE,
                _FORMAT,
                _encoded_schema(table.schema),
                canonical_encode(table.num_rows),
                encoded_list([encoded_digest(digest) for digest in digests]),
            ]
        )
    )


_TABLE = canonical_encode("table")
_FORMAT = canonical_encode(CANONICAL_FORMAT)
_NO_METADATA = canonical_encode(metadata_descriptor(None))
# Encoded descriptors of plain fields without metadata (name, type, nullable), the fields of
# nearly every frame: encoded once per process, not once per call. Bounded: forgotten whole
# when full (a process that makes up column names keeps no more than this).
_ENCODED_FIELDS: dict[tuple[str, pa.DataType, bool], bytes] = {}
_ENCODED_FIELDS_LIMIT = 4096


def _encoded_schema(schema: pa.Schema) -> bytes:
    """``canonical_encode(schema_descriptor(schema))``."""
    fields = []
    for field in schema:
        t = field.type
        if field.metadata or (type(t) is not pa.DataType and type(t) not in _PLAIN_PARAMETRIC):
            fields.append(canonical_encode(field_descriptor(field)))
            continue
        key = (field.name, t, field.nullable)
        found = _ENCODED_FIELDS.get(key)
        if found is None:
            if len(_ENCODED_FIELDS) >= _ENCODED_FIELDS_LIMIT:
                _ENCODED_FIELDS.clear()
            found = _ENCODED_FIELDS[key] = canonical_encode(field_descriptor(field))
        fields.append(found)
    metadata = schema.metadata
    return encoded_list(
        [
            encoded_list(fields),
            canonical_encode(metadata_descriptor(metadata)) if metadata else _NO_METADATA,
        ]
    )


def fingerprint_array(array: pa.Array | pa.ChunkedArray) -> str:
    """32-hex digest of an Arrow array or chunked array: its type, length and values."""
    if isinstance(array, pa.Array):
        array = pa.chunked_array([array], array.type)
    return hash_struct(["array", CANONICAL_FORMAT, _column_digests([array])[0]])
