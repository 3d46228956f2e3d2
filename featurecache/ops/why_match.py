"""Which stored key ``featurecache why`` explains, and which earlier key it compares it with
(pure: works on ``EntryRecord`` lists the catalog returned, newest first).

A feature called with several argument sets has interleaved keys: comparing the latest key
with the one just before it compares two *different calls* ("param `depth`: 1 → 2") and hides
the code change that made the call miss. So the comparison is with the *nearest* earlier key:
the one sharing the most input fingerprints (ties: the most recent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from featurecache.catalog.records import EntryRecord
from featurecache.errors import FeatureCacheError

# How many of a feature's most recent keys are searched: enough for a grid of argument sets,
# bounded so that `why` on a feature with a long history stays one small query.
SCAN_LIMIT = 200
_SHOWN_VALUES = 5


class NoMatchingCallError(FeatureCacheError, LookupError):
    """``why FEATURE --args …`` matched none of the feature's recorded calls."""

    def __init__(
        self,
        feature: str,
        args: Mapping[str, Any],
        problem: str,
        known: Mapping[str, list[Any]],
        scanned: int,
    ) -> None:
        self.feature = feature
        self.given = dict(args)
        self.known = {name: list(values) for name, values in known.items()}
        self.scanned = scanned
        names = ", ".join(_describe_known(name, values) for name, values in sorted(known.items()))
        super().__init__(
            f"--args: {problem} (searched the latest {scanned} keys of {feature!r}). Give "
            "--args a JSON object of argument name -> value, e.g. --args '{\"depth\": 2}'; "
            f"the recorded arguments are: {names or 'none'}"
        )


def _describe_known(name: str, values: list[Any]) -> str:
    if not values:
        return f"{name} (not a plain value)"
    shown = ", ".join(_json_text(v) for v in values[:_SHOWN_VALUES])
    more = ", …" if len(values) > _SHOWN_VALUES else ""
    return f"{name} ({shown}{more})"


def _json_text(value: Any) -> str:
    import json

    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def input_fingerprints(components: Mapping[str, Any]) -> dict[str, str]:
    """``{argument: fingerprint}`` of a key's stored components."""
    inputs = components.get("inputs") or {}
    return {
        str(name): str(record.get("fingerprint"))
        for name, record in inputs.items()
        if isinstance(record, Mapping) and record.get("fingerprint") is not None
    }


def shared_inputs(a: Mapping[str, Any], b: Mapping[str, Any]) -> int:
    """How many arguments have the same fingerprint in both keys' components."""
    fa, fb = input_fingerprints(a), input_fingerprints(b)
    return sum(1 for name, fingerprint in fa.items() if fb.get(name) == fingerprint)


def nearest(
    components: Mapping[str, Any], earlier: Sequence[EntryRecord], *, exclude_key: str = ""
) -> EntryRecord | None:
    """The entry of ``earlier`` (newest first) sharing the most input fingerprints with
    ``components``, then the most arguments that changed but still name the same thing (the
    same model class, the same ``models:/`` URI: a refit, not another model); the first (most
    recent) wins a tie. ``exclude_key`` is never chosen."""
    best: EntryRecord | None = None
    best_score = (-1, -1)
    for entry in earlier:
        if entry.key_id == exclude_key:
            continue
        other = entry.components or {}
        score = (shared_inputs(components, other), same_identity(components, other))
        if score > best_score:  # strictly more: an older entry never wins a tie
            best, best_score = entry, score
    return best


def same_identity(a: Mapping[str, Any], b: Mapping[str, Any]) -> int:
    """How many model arguments differ in fingerprint but name the same model: the same
    class for a model object, the same URI for an MLflow model."""
    ia, ib = a.get("inputs") or {}, b.get("inputs") or {}
    return sum(
        1
        for name, record in ia.items()
        if (identity := _model_identity(record)) is not None
        and identity == _model_identity(ib.get(name))
    )


def _model_identity(record: object) -> object:
    if not isinstance(record, Mapping) or not isinstance(record.get("value"), Mapping):
        return None
    kind, value = record.get("kind"), record["value"]
    if kind == "model":
        return ("model", value.get("type"))
    if kind == "mlflow-model":
        return ("mlflow-model", value.get("uri"))
    return None


def plain_value(record: Mapping[str, Any]) -> tuple[bool, Any]:
    """``(True, value)`` when a stored input records its plain value, else ``(False, None)``.
    A value too big to record is stored as None with a summary; a real None says "None"."""
    value = record.get("value")
    if value is not None:
        return True, value
    if record.get("kind") == "value" and record.get("summary") == "None":
        return True, None
    return False, None


def same_value(given: Any, stored: Any) -> bool:
    """JSON equality where ``true`` is not ``1`` (Python's ``True == 1`` would match a
    boolean flag against a count) and ``2`` matches ``2.0``."""
    if isinstance(given, bool) or isinstance(stored, bool):
        return isinstance(given, bool) and isinstance(stored, bool) and given == stored
    if isinstance(given, int | float) and isinstance(stored, int | float):
        return given == stored
    if isinstance(given, list) and isinstance(stored, list | tuple):
        return len(given) == len(stored) and all(map(same_value, given, stored))
    if isinstance(given, dict) and isinstance(stored, dict):
        return given.keys() == stored.keys() and all(same_value(given[k], stored[k]) for k in given)
    return type(given) is type(stored) and bool(given == stored)


def matches_args(entry: EntryRecord, args: Mapping[str, Any]) -> bool:
    """Whether every argument in ``args`` was recorded with ``entry`` with that plain value."""
    inputs = (entry.components or {}).get("inputs") or {}
    for name, wanted in args.items():
        record = inputs.get(name)
        if not isinstance(record, Mapping):
            return False
        known, value = plain_value(record)
        if not known or not same_value(wanted, value):
            return False
    return True


def recorded_arguments(entries: Sequence[EntryRecord]) -> dict[str, list[Any]]:
    """Every argument name of ``entries`` with the distinct plain values recorded for it
    (newest first; empty for frames, files and other non-plain inputs)."""
    known: dict[str, list[Any]] = {}
    for entry in entries:
        for name, record in ((entry.components or {}).get("inputs") or {}).items():
            values = known.setdefault(str(name), [])
            if not isinstance(record, Mapping):
                continue
            has_value, value = plain_value(record)
            if has_value and not any(same_value(value, seen) for seen in values):
                values.append(value)
    return known


def select_call(feature: str, entries: Sequence[EntryRecord], args: Mapping[str, Any]) -> int:
    """The index in ``entries`` (newest first) of the most recent call whose plain inputs
    equal ``args``; ``NoMatchingCallError`` naming ``--args`` when none does."""
    known = recorded_arguments(entries)
    unknown = sorted(name for name in args if name not in known)
    if unknown:
        problem = f"{feature!r} has no argument {', '.join(map(repr, unknown))}"
        raise NoMatchingCallError(feature, args, problem, known, len(entries))
    for index, entry in enumerate(entries):
        if matches_args(entry, args):
            return index
    wanted = ", ".join(f"{name}={_json_text(value)}" for name, value in args.items())
    problem = f"no recorded call of {feature!r} has {wanted}"
    raise NoMatchingCallError(feature, args, problem, known, len(entries))
