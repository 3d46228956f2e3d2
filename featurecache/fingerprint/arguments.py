"""A call's arguments by parameter name, defaults applied: what the key fingerprints and the
mutation watch snapshots (``engine.CacheEngine.key_for``, ``mutation.watch_inputs``)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

# Signatures whose parameters are all plain positional ones (or not: None), by id; the
# signature is kept with its answer, so an id is never reused while it is remembered.
_PLAIN_PARAMETERS: dict[int, tuple[inspect.Signature, tuple[str, ...] | None]] = {}
_PLAIN_PARAMETERS_LIMIT = 4096
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def bound_arguments(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Mapping[str, Any]:
    """``signature.bind(*args, **kwargs)``'s arguments, defaults applied (its errors too). A
    call that passes every parameter of a plain signature positionally, the usual call of a
    feature, is bound without ``inspect``'s general machinery, to the same names in order."""
    if not kwargs:
        known = _PLAIN_PARAMETERS.get(id(signature))
        if known is None or known[0] is not signature:
            parameters = signature.parameters.values()
            plain = all(p.kind in _POSITIONAL for p in parameters)
            known = (signature, tuple(p.name for p in parameters) if plain else None)
            if len(_PLAIN_PARAMETERS) >= _PLAIN_PARAMETERS_LIMIT:
                _PLAIN_PARAMETERS.clear()
            _PLAIN_PARAMETERS[id(signature)] = known
        names = known[1]
        if names is not None and len(args) == len(names):
            return dict(zip(names, args, strict=True))
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return bound.arguments
