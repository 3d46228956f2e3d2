"""Building a cache key from a feature's code identity and its input fingerprints (pure).

``key = H(["call", key_scheme, feature, code_digest, H(["inputs", [[arg, kind, fingerprint]…]])])``
(arguments sorted by name; ``kind`` is the input's kind, "polars", "pandas", "file", "value"…):
a Merkle structure of domain-tagged parts. Every component goes into the catalog so that
``featurecache why`` can say what changed between two keys.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from featurecache.fingerprint.types import CodeIdentity, InputFingerprint
from featurecache.hashing import KEY_SCHEME_VERSION, hash_struct


@dataclass(frozen=True)
class CacheKey:
    key_id: str
    inputs_digest: str
    feature: str
    # The code identity the key was built from: what the catalog records for its row (never
    # recomputed later, when the code may have changed).
    code: CodeIdentity
    inputs: Mapping[str, InputFingerprint]

    @functools.cached_property
    def components(self) -> dict[str, Any]:
        """Every component of the key, for the catalog and ``why``: made when first asked for
        (a miss records it; a hit never needs it), from the same frozen values."""
        return {
            "key_scheme": KEY_SCHEME_VERSION,
            "feature": self.feature,
            "code_digest": self.code.digest,
            "code": self.code.components,
            "inputs_digest": self.inputs_digest,
            "inputs": {name: self.inputs[name].to_json() for name in sorted(self.inputs)},
        }


def inputs_digest(inputs: Mapping[str, InputFingerprint]) -> str:
    """Order-independent (sorted by argument name) digest of the bound arguments. The kind
    is part of it: a polars frame and a pyarrow table of the same content have the same
    fingerprint, but a function may treat them differently."""
    return hash_struct(
        ["inputs", [[name, inputs[name].kind, inputs[name].fingerprint] for name in sorted(inputs)]]
    )


def build_key(feature: str, code: CodeIdentity, inputs: Mapping[str, InputFingerprint]) -> CacheKey:
    digest = inputs_digest(inputs)
    key_id = hash_struct(["call", KEY_SCHEME_VERSION, feature, code.digest, digest])
    return CacheKey(key_id=key_id, inputs_digest=digest, feature=feature, code=code, inputs=inputs)
