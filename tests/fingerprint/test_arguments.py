"""``bound_arguments``: what ``inspect.Signature.bind`` gives, defaults applied, errors too."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

from featurecache.fingerprint.arguments import bound_arguments


def _plain(a: int, b: int, /, c: int) -> int:
    return a


def _defaults(a: int, b: int = 2, *, c: int = 3) -> int:
    return a


def _star(a: int, *rest: int, **more: int) -> int:
    return a


@pytest.mark.parametrize(
    ("func", "args", "kwargs"),
    [
        (_plain, (1, 2, 3), {}),
        (_plain, (1, 2), {"c": 3}),
        (_plain, (1, 2), {}),  # missing c: bind's TypeError
        (_plain, (1, 2, 3, 4), {}),  # too many: bind's TypeError
        (_defaults, (1,), {}),
        (_defaults, (1, 5), {}),
        (_defaults, (1, 5), {"c": 7}),
        (_star, (1,), {}),
        (_star, (1, 2, 3), {"x": 4}),
        (lambda: 0, (), {}),
    ],
)
def test_bound_arguments_are_what_inspect_binds(
    func: Callable[..., object], args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    signature = inspect.signature(func)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        with pytest.raises(TypeError, match=str(exc)):
            bound_arguments(signature, args, kwargs)
        return
    bound.apply_defaults()
    for _ in range(2):  # the second time from what the first one learned about the signature
        found = bound_arguments(signature, args, kwargs)
        assert list(found.items()) == list(bound.arguments.items())
