"""``keys``: a key's components are what the catalog records for it, made only when asked for
(a hit never needs them)."""

from __future__ import annotations

from featurecache.fingerprint.types import CodeIdentity, InputFingerprint
from featurecache.keys import KEY_SCHEME_VERSION, build_key, inputs_digest


def test_the_components_describe_the_key_and_are_made_on_demand() -> None:
    code = CodeIdentity(digest="c" * 32, qualname="m.f", source="", components={"scheme": "1"})
    inputs = {
        "n": InputFingerprint(argument="n", kind="value", fingerprint="xxh3_128:1", summary="30"),
        "a": InputFingerprint(
            argument="a",
            kind="polars",
            fingerprint="xxh3_128:2",
            summary="polars DataFrame 3 × 1",
            schema=[{"name": "x", "type": "int64", "nullable": True}],
            rows=3,
        ),
    }
    key = build_key("f", code, inputs)
    assert "components" not in vars(key)
    assert key.components == {
        "key_scheme": KEY_SCHEME_VERSION,
        "feature": "f",
        "code_digest": code.digest,
        "code": code.components,
        "inputs_digest": inputs_digest(inputs),
        "inputs": {"a": inputs["a"].to_json(), "n": inputs["n"].to_json()},
    }
    assert list(key.components["inputs"]) == ["a", "n"]
    assert key.components is key.components  # made once
