"""Compute the golden code identities and keys (printed as JSON; ``--write`` updates
``golden_code.json``). Run in fresh processes under different ``PYTHONHASHSEED`` values by
``test_code_identity.py``: the output must never depend on the seed or the process."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa

from featurecache.fingerprint.arrow.content import fingerprint_table
from featurecache.fingerprint.code.identity import code_identity
from featurecache.fingerprint.types import CodeIdentity, InputFingerprint
from featurecache.hashing import HASH_ALGO, KEY_SCHEME_VERSION, hash_value
from featurecache.keys import build_key
from tests.fingerprint import golden_module as gm

FIXTURE = Path(__file__).with_name("golden_code.json")


def _value(name: str, value: Any) -> InputFingerprint:
    # What a plain parameter fingerprints to: the canonical encoding of its value.
    return InputFingerprint(name, "value", f"{HASH_ALGO}:{hash_value(value)}", repr(value))


def _table(name: str, table: pa.Table) -> InputFingerprint:
    return InputFingerprint(
        name, "arrow", f"{HASH_ALGO}:{fingerprint_table(table)}", "arrow table", rows=table.num_rows
    )


def compute() -> dict[str, Any]:
    plain = {
        name: code_identity(getattr(gm, name), track_library_versions=False).digest
        for name in ("simple", "with_helpers", "add_two", "even", "square_of")
    }
    plain["with_helpers+options"] = code_identity(
        gm.with_helpers,
        version="3",
        options={"name": "with_helpers", "lazy": False},
        depends_on=["salt", 7, gm.simple],
        ignore=["NAMES"],
        track_library_versions=False,
    ).digest
    fixed_code = CodeIdentity(digest="0" * 32, qualname="m.f", source="")
    table = pa.table({"user": [1, 2, None], "ts": ["a", "b", "c"]})
    inputs = {
        "scalars": {
            "gap": _value("gap", 30),
            "name": _value("name", "sessions"),
            "when": _value("when", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
            "day": _value("day", dt.date(2024, 1, 2)),
            "price": _value("price", decimal.Decimal("1.10")),
            "ratio": _value("ratio", 0.1),
            "flags": _value("flags", [True, None, {"b": 2, "a": (1, 2.5)}]),
        },
        "frame": {"clicks": _table("clicks", table), "gap": _value("gap", 30)},
        "none": {},
    }
    keys = {name: build_key("sessions", fixed_code, args).key_id for name, args in inputs.items()}
    golden_code = CodeIdentity(digest=plain["with_helpers"], qualname="", source="")
    keys["golden_code"] = build_key("f", golden_code, inputs["scalars"]).key_id
    return {"key_scheme": KEY_SCHEME_VERSION, "code": plain, "keys": keys}


if __name__ == "__main__":
    result = compute()
    text = json.dumps(result, indent=2, sort_keys=True) + "\n"
    if "--write" in sys.argv:
        FIXTURE.write_text(text)
    sys.stdout.write(text)
