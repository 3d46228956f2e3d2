"""``canonical_encode``: the fast path by exact type gives the same bytes as the reference
encoder (keys must not change), and errors still name where the culprit is."""

from __future__ import annotations

import datetime as dt
import decimal
import enum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from featurecache.hashing import UnencodableValueError, _encode, canonical_encode, hash_struct


def reference(value: object) -> bytes:
    out = bytearray()
    _encode(value, "", out)
    return bytes(out)


class Colour(enum.IntEnum):
    RED = 1


class MyStr(str):
    pass


class MyList(list):  # type: ignore[type-arg]
    pass


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(),
    st.binary(),
    st.decimals(allow_nan=False),
    st.dates(),
    st.datetimes(),
    st.sampled_from([Colour.RED, MyStr("x"), dt.time(1, 2), dt.timedelta(3)]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner),
        st.tuples(inner, inner),
        st.dictionaries(st.text() | st.integers(), inner),
        st.frozensets(st.integers()),
        st.lists(inner).map(MyList),
    ),
    max_leaves=30,
)


@given(values)
def test_fast_encoding_is_the_reference_encoding(value: object) -> None:
    assert canonical_encode(value) == reference(value)


def test_known_digest_is_unchanged() -> None:
    # Computed with the reference encoder before the fast path existed: keys stay stable.
    digest = hash_struct(["call", "1", "f", [1, 2.5, None, True, "x", b"y"], ("t",)])
    assert digest == "00f36b42361516f9ca19f7a77601ae7a"
    assert canonical_encode(["a", 1, (None, 0.0)]) == reference(["a", 1, (None, 0.0)])
    assert canonical_encode(decimal.Decimal("1.5")) == reference(decimal.Decimal("1.5"))


def test_error_names_the_place_of_the_culprit() -> None:
    with pytest.raises(UnencodableValueError, match=r"at root\[1\]\[0\]"):
        canonical_encode(["ok", [object()]], "root")
