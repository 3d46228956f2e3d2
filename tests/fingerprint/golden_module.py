"""Fixed functions whose code identities are pinned in ``golden_code.json``.

Editing code here (not comments or docstrings) changes the pinned digests: that is a deliberate
change of what keys mean, so bump ``KEY_SCHEME_VERSION`` and regenerate the fixture with
``python tests/fingerprint/golden_compute.py --write``. Only the standard library is used, so
no library version enters the digests.
"""

import functools
import math

THRESHOLD = 2.5
NAMES = ("a", "b")
WEIGHTS = {"b": [1.5, None], "a": 1}


def _square(x):
    return x * x


def helper(x, k=3):
    return _square(x) + k * THRESHOLD


class Scaler:
    factor = 2

    def __init__(self, k):
        self.k = k

    def apply(self, x):
        return math.floor(x * self.k * self.factor)


def make_adder(n):
    def add(x):
        return x + n

    return add


add_two = make_adder(2)
square_of = functools.partial(helper, k=4)


def simple(x):
    return x + 1


def with_helpers(x):
    """Every kind of dependency at once."""
    return helper(x) + Scaler(2).apply(x) + len(NAMES) + WEIGHTS["a"] + square_of(x)


def even(n):
    return n == 0 or odd(n - 1)


def odd(n):
    return n != 0 and even(n - 1)
