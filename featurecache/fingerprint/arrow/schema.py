"""Canonical descriptions of Arrow schemas and types, for fingerprints.

A descriptor is a plain nested list (str, int, bool, bytes) that ``hashing.canonical_encode``
turns into bytes. It covers field names, types with all their parameters (time zones, units,
precision, child fields, dictionary index types, extension names), nullability, and field and
schema metadata sorted by key. Two keys are normalised because they do not describe the data:
``ARROW:schema`` (a serialised copy of the schema itself) is dropped, and pandas' metadata loses
its ``creator`` / ``pandas_version`` entries so upgrading pandas or pyarrow does not change the
fingerprint of an unchanged frame (the index description and column dtypes stay in).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

_DROPPED_KEYS = {b"ARROW:schema"}
_PANDAS_VOLATILE = ("creator", "pandas_version")


def schema_descriptor(schema: pa.Schema) -> list[Any]:
    """Fields in order plus the schema's metadata."""
    return [[field_descriptor(field) for field in schema], metadata_descriptor(schema.metadata)]


def field_descriptor(field: pa.Field) -> list[Any]:
    return [
        field.name,
        type_descriptor(field.type),
        field.nullable,
        metadata_descriptor(field.metadata),
    ]


def metadata_descriptor(metadata: Mapping[bytes, bytes] | None) -> list[Any]:
    if not metadata:
        return []
    items: list[Any] = []
    for key in sorted(metadata):
        if key in _DROPPED_KEYS:
            continue
        value: Any = metadata[key]
        if key == b"pandas":
            value = _pandas_metadata(value)
        items.append([key, value])
    return items


def _pandas_metadata(raw: bytes) -> Any:
    try:
        parsed = json.loads(raw)
    except ValueError:
        return raw  # not JSON: hash the bytes as they are
    if isinstance(parsed, dict):
        for volatile in _PANDAS_VOLATILE:
            parsed.pop(volatile, None)
    return ["pandas-json", parsed]


# Descriptors of plain primitive types (exactly ``pa.DataType``: int64, string, bool...), the
# columns of nearly every frame: rendered once per process, not once per column per call.
_PRIMITIVES: dict[pa.DataType, list[Any]] = {}


def type_descriptor(t: pa.DataType) -> list[Any]:
    """A canonical description of an Arrow type, recursing into children."""
    if type(t) is pa.DataType:
        found = _PRIMITIVES.get(t)
        if found is None:
            found = _PRIMITIVES[t] = ["type", str(t)]
        return found
    types = pa.types
    if isinstance(t, pa.BaseExtensionType):
        serialize = getattr(t, "__arrow_ext_serialize__", None)
        params = serialize() if callable(serialize) else b""
        return ["extension", t.extension_name, str(t), params, type_descriptor(t.storage_type)]
    if types.is_dictionary(t):
        return [
            "dictionary",
            type_descriptor(t.index_type),
            type_descriptor(t.value_type),
            bool(t.ordered),
        ]
    if types.is_struct(t):
        return ["struct", [field_descriptor(t.field(i)) for i in range(t.num_fields)]]
    if types.is_map(t):
        # The names of a map's entry fields carry no meaning (and Parquet does not keep them).
        key, item = t.key_field, t.item_field
        return [
            "map",
            [type_descriptor(key.type), key.nullable],
            [type_descriptor(item.type), item.nullable],
            bool(t.keys_sorted),
        ]
    if types.is_fixed_size_list(t):
        return ["fixed_size_list", t.list_size, field_descriptor(t.value_field)]
    for name, predicate in _LIST_KINDS:
        if predicate(t):
            return [name, field_descriptor(t.value_field)]
    if types.is_union(t):
        return [
            "union",
            t.mode,
            list(t.type_codes),
            [field_descriptor(t.field(i)) for i in range(t.num_fields)],
        ]
    if types.is_run_end_encoded(t):
        return ["run_end_encoded", type_descriptor(t.run_end_type), type_descriptor(t.value_type)]
    # Primitive and parametric types: pyarrow's rendering carries every parameter
    # ("timestamp[ns, tz=Europe/Paris]", "decimal128(12, 2)", "fixed_size_binary[16]").
    return ["type", str(t)]


_LIST_KINDS = (
    ("list", pa.types.is_list),
    ("large_list", pa.types.is_large_list),
    ("list_view", pa.types.is_list_view),
    ("large_list_view", pa.types.is_large_list_view),
)
