"""Fingerprints of object arguments: types taught with ``register_fingerprint``, config objects
and instances of user classes (what their data is: ``objects``).

An object's fingerprint is ``H(["object", rule, module.qualname, class code digest,
[[field, kind, fingerprint], …]])``: each field goes through the same dispatch as an argument
(``recurse``, given by ``inputs``), so a frame, a path or another config inside a config counts
by its content. A registered type's is ``H(["registered", module.qualname, kind,
fingerprint])`` of what its function returned. The kind of both is "object".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from featurecache.errors import UnsupportedInputError
from featurecache.fingerprint.objects import (
    UNSET,
    ObjectFields,
    class_code_digest,
    config_fields,
    instance_fields,
    qualified_name,
)
from featurecache.fingerprint.registry import FingerprintFn, registered_fingerprint
from featurecache.fingerprint.types import InputFingerprint
from featurecache.hashing import HASH_ALGO, hash_struct

# (where, value) -> the fingerprint of a field, through the argument dispatch of ``inputs``.
Recurse = Callable[[str, object], InputFingerprint]

# Objects being fingerprinted on this thread (ids, outermost first): an object reached again
# inside itself is a cycle, which would otherwise recurse until the interpreter gives up.
_ACTIVE: ContextVar[tuple[int, ...]] = ContextVar("featurecache_active_objects", default=())
MAX_DEPTH = 32
_SUMMARY_CHARS = 120


def fingerprint_declared(
    argument: str, where: str, value: object, recurse: Recurse
) -> InputFingerprint | None:
    """Registered types, then config objects (dataclass, NamedTuple, attrs, pydantic); None
    for anything else. Runs before the built-in rules: a registration wins over them, and a
    NamedTuple is a tuple."""
    registered = registered_fingerprint(type(value))
    if registered is not None:
        return _registered(argument, where, value, *registered, recurse)
    found = config_fields(value)
    return None if found is None else _from_fields(argument, where, value, found, recurse)


def fingerprint_instance(
    argument: str, where: str, value: object, recurse: Recurse
) -> InputFingerprint | None:
    """An instance of a user class (or a namespace) by its attributes; None for anything else.
    Runs last, when no built-in rule took the value."""
    found = instance_fields(value)
    return None if found is None else _from_fields(argument, where, value, found, recurse)


def _from_fields(
    argument: str, where: str, value: object, found: ObjectFields, recurse: Recurse
) -> InputFingerprint:
    code = None if found.rule == "text" else class_code_digest(found.cls)
    parts: list[list[Any]] = []
    shown: dict[str, Any] = {}
    with _visiting(argument, where, value):
        for name, item in found.fields:
            if item is UNSET:
                parts.append([name, "unset", None])
                shown[name] = "<unset>"
                continue
            leaf = _field(argument, f"{where}.{name}", item, recurse, found.cls)
            parts.append([name, leaf.kind, leaf.fingerprint])
            shown[name] = _shown(leaf)
    digest = hash_struct(["object", found.rule, found.qualname, code, parts])
    return InputFingerprint(
        argument=argument,
        kind="object",
        fingerprint=f"{HASH_ALGO}:{digest}",
        summary=_summary(found.cls.__qualname__, shown),
        value={"type": found.qualname, "fields": shown},
    )


def _field(
    argument: str, where: str, item: object, recurse: Recurse, owner: type
) -> InputFingerprint:
    try:
        return recurse(where, item)
    except UnsupportedInputError as exc:
        if exc.owner is not None:  # an object nearer the culprit already said what to do
            raise
        name = owner.__qualname__
        hint = (
            f"{exc.hint} Or choose what counts: featurecache.register_fingerprint({name}, fn), "
            f"fn returning the values of a {name} that determine the result."
        ).strip()
        raise UnsupportedInputError(
            argument, exc.type_name, exc.supported, hint, owner=qualified_name(owner)
        ) from exc


def _registered(
    argument: str,
    where: str,
    value: object,
    registered: type,
    fn: FingerprintFn,
    recurse: Recurse,
) -> InputFingerprint:
    cls = type(value)
    with _visiting(argument, where, value):
        try:
            plain = fn(value)
        except Exception as exc:
            exc.add_note(
                f"(raised by the function registered with featurecache.register_fingerprint for "
                f"{registered.__qualname__}, fingerprinting argument {argument!r})"
            )
            raise
        try:
            leaf = recurse(where, plain)
        except UnsupportedInputError as exc:
            if exc.owner is not None:
                raise
            raise UnsupportedInputError(
                argument,
                exc.type_name,
                exc.supported,
                f"Make the function registered for {registered.__qualname__} "
                f"(register_fingerprint) return plain values, frames, arrays or paths. {exc.hint}",
                owner=qualified_name(registered),
            ) from exc
    digest = hash_struct(["registered", qualified_name(cls), leaf.kind, leaf.fingerprint])
    return InputFingerprint(
        argument=argument,
        kind="object",
        fingerprint=f"{HASH_ALGO}:{digest}",
        summary=f"{cls.__qualname__} (registered): {leaf.summary}",
        schema=leaf.schema,
        rows=leaf.rows,
        value={"type": qualified_name(cls), "registered": _shown(leaf)},
        # A registered type that wraps a cached frame or a file keeps its lineage edge.
        upstream_artifact_id=leaf.upstream_artifact_id,
        source_uri=leaf.source_uri,
    )


@contextmanager
def _visiting(argument: str, where: str, value: object) -> Iterator[None]:
    active = _ACTIVE.get()
    if id(value) in active or len(active) >= MAX_DEPTH:
        if id(value) in active:
            problem = f"Break the cycle at {where}: the object contains itself."
        else:
            problem = (
                f"Flatten {where}: objects nest over {MAX_DEPTH} levels deep (does a function "
                "registered with register_fingerprint return an object of its own type?)."
            )
        raise UnsupportedInputError(
            argument,
            f"{qualified_name(type(value))} at {where}",
            (),
            problem,
        )
    token = _ACTIVE.set((*active, id(value)))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def _shown(leaf: InputFingerprint) -> Any:
    """A field for ``why`` and ``show``: its value when plain, else its summary."""
    return leaf.value if leaf.kind in ("value", "object") else leaf.summary


def _summary(name: str, shown: dict[str, Any]) -> str:
    fields = ", ".join(f"{key}={_short(item)}" for key, item in shown.items())
    text = f"{name}({fields})"
    return text if len(text) <= _SUMMARY_CHARS else text[: _SUMMARY_CHARS - 1] + "…"


def _short(item: Any) -> str:
    if isinstance(item, dict) and "type" in item:
        return f"{str(item['type']).rpartition('.')[2]}(…)"
    text = json.dumps(item, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:39] + "…"


def field_changes(before: object, after: object, prefix: str = "") -> list[str]:
    """``field `scale`: 2 → 3`` for each field that differs between two object inputs as
    recorded with their keys (the ``value`` of kind "object"), nested fields dotted; for
    ``featurecache why``. Fields whose shown values are equal (a frame's summary, a value too
    large to show) are left to the fingerprint change."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    if before.get("type") != after.get("type"):
        return [f"type {before.get('type')} → {after.get('type')}"]
    if "registered" in before or "registered" in after:
        a, b = before.get("registered"), after.get("registered")
        return [] if a == b else [f"registered value {_short(a)} → {_short(b)}"]
    a_fields, b_fields = before.get("fields"), after.get("fields")
    if not isinstance(a_fields, dict) or not isinstance(b_fields, dict):
        return []
    changes: list[str] = []
    for name in [*a_fields, *(n for n in b_fields if n not in a_fields)]:
        a, b = a_fields.get(name, "<absent>"), b_fields.get(name, "<absent>")
        if a == b:
            continue
        path = f"{prefix}{name}"
        nested = field_changes(a, b, f"{path}.")
        changes.extend(nested or [f"field `{path}`: {_short(a)} → {_short(b)}"])
    return changes
