"""``featurecache why``: what changed between two keys, component by component (pure)."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from featurecache.catalog.records import EntryRecord
from featurecache.fingerprint.types import CodeIdentity, InputFingerprint
from featurecache.hashing import hash_value
from featurecache.keys import build_key
from featurecache.ops.key_diff import CHANGE_KINDS, explain_change, explain_components

SCHEMA = [
    {"name": "user", "type": "Int64", "nullable": True},
    {"name": "ts", "type": "Datetime(us)", "nullable": False},
    {"name": "page", "type": "String", "nullable": True},
]


def code_components(**overrides: Any) -> dict[str, Any]:
    components: dict[str, Any] = {
        "scheme": "1",
        "function": {
            "qualname": "sessions",
            "module": "pipeline.features",
            "kind": "function",
            "digest": "f" * 32,
            "body": "b" * 32,
            "file": "pipeline/features.py",
            "line": 12,
            "mode": "ast",
        },
        "dependencies": {
            "pipeline.util:clean_ts": {
                "kind": "function",
                "digest": "1" * 32,
                "body": "2" * 32,
                "file": "pipeline/util.py",
                "line": 3,
                "mode": "ast",
            },
            "pipeline.util:GAP": {
                "kind": "constant",
                "digest": "3" * 32,
                "file": "pipeline/util.py",
                "line": 1,
                "value": 30,
            },
            "pipeline.util:Sessionizer": {
                "kind": "class",
                "digest": "4" * 32,
                "file": "pipeline/util.py",
                "line": 8,
                "mode": "ast",
                "members": {"split": "5" * 32, "scale": "6" * 32},
                "methods": ["split"],
            },
        },
        "libraries": {"polars": "2.0.1"},
        "version": "2",
        "options": {"name": "sessions", "version": "2", "lazy": False},
        "ignored": [],
        "python": None,
        "warnings": [],
    }
    components.update(overrides)
    return components


def frame(fp: str, rows: int, schema: list[dict[str, Any]] = SCHEMA) -> InputFingerprint:
    return InputFingerprint(
        "clicks",
        "polars",
        f"xxh3_128:{fp}",
        f"polars DataFrame {rows:,} × {len(schema)}",
        schema=schema,
        rows=rows,
    )


def param(name: str, value: Any) -> InputFingerprint:
    return InputFingerprint(
        name, "value", f"xxh3_128:{hash_value(value)}", repr(value), value=value
    )


def entry(
    code: dict[str, Any] | None = None,
    inputs: dict[str, InputFingerprint] | None = None,
    key_scheme: str | None = None,
) -> EntryRecord:
    code = code if code is not None else code_components()
    digest = hash_value(json.dumps(code, sort_keys=True))
    if inputs is None:
        inputs = {
            "clicks": frame("a1b2c3d4" + "0" * 24, 5_000_000),
            "gap_minutes": param("gap_minutes", 30),
        }
    key = build_key(
        "sessions", CodeIdentity(digest, "pipeline.features.sessions", "", code), inputs
    )
    components = dict(key.components)
    if key_scheme is not None:
        components["key_scheme"] = key_scheme
    key_id = key.key_id if key_scheme is None else hash_value([key.key_id, key_scheme])
    return EntryRecord(key_id, "sessions", digest, "a" * 32, "polars", components)


def messages(before: EntryRecord, after: EntryRecord) -> list[str]:
    return explain_change(before, after).messages()


def test_first_call_and_same_key() -> None:
    latest = entry()
    assert messages(None, latest) == ["first call of `sessions`: nothing to compare"]  # type: ignore[arg-type]
    assert explain_change(None, latest).first_call
    same = explain_change(latest, entry())
    assert same.same_key and same.changes == ()
    assert same.messages() == ["same key as before (a hit)"]


def test_input_content_rows_and_schema() -> None:
    new_schema = [
        {"name": "user", "type": "Int32", "nullable": True},
        {"name": "ts", "type": "Datetime(us)", "nullable": True},
        {"name": "country", "type": "String", "nullable": True},
    ]
    after = entry(
        inputs={
            "clicks": frame("c3d4e5f6" + "0" * 24, 5_000_003, new_schema),
            "gap_minutes": param("gap_minutes", 30),
        }
    )
    (message,) = messages(entry(), after)
    assert message.startswith(
        "input `clicks`: content changed (fingerprint a1b2c3d4 → c3d4e5f6); "
        "5,000,000 → 5,000,003 rows"
    )
    assert "column `country` added (String)" in message
    assert "column `page` removed" in message
    assert "column `user`: Int64 → Int32" in message
    assert "column `ts` is now nullable" in message
    change = explain_change(entry(), after).changes[0]
    assert (change.kind, change.name) == ("input", "clicks")


def test_param_changed_added_removed() -> None:
    after = entry(
        inputs={
            "clicks": frame("a1b2c3d4" + "0" * 24, 5_000_000),
            "gap_minutes": param("gap_minutes", 45),
            "country": param("country", "FR"),
        }
    )
    assert messages(entry(), after) == [
        "new param `country` ('FR')",
        "param `gap_minutes`: 30 → 45",
    ]
    assert messages(after, entry()) == [
        "param `country` removed",
        "param `gap_minutes`: 45 → 30",
    ]


def test_code_changes_in_this_style() -> None:
    base = code_components()
    changed = copy.deepcopy(base)
    changed["function"]["body"] = "c" * 32
    changed["function"]["digest"] = "d" * 32
    deps = changed["dependencies"]
    deps["pipeline.util:clean_ts"]["body"] = "9" * 32
    deps["pipeline.util:clean_ts"]["digest"] = "8" * 32
    deps["pipeline.util:GAP"].update(digest="7" * 32, value=45)
    deps["pipeline.util:Sessionizer"]["members"]["split"] = "0" * 32
    deps["pipeline.util:Sessionizer"]["digest"] = "0" * 32
    deps["m:helper2"] = {"kind": "function", "digest": "e" * 32, "body": "e" * 32, "file": "m.py"}
    changed["libraries"] = {"polars": "2.1.0"}
    changed["version"] = "3"
    changed["options"] = {"name": "sessions", "version": "3", "lazy": True}
    assert messages(entry(base), entry(changed)) == [
        "version salt '2' → '3'",
        "option `lazy`: False → True",
        "function body of `sessions` changed",
        "new dependency `helper2` in `m.py`",
        "constant `GAP` in `pipeline/util.py`: 30 → 45",
        "method `Sessionizer.split` in `pipeline/util.py` changed",
        "helper `clean_ts` in `pipeline/util.py` changed",
        "polars 2.0.1 → 2.1.0",
    ]
    assert messages(entry(changed), entry(base))[3] == "dependency `helper2` in `m.py` removed"


def test_closures_defaults_and_rebinding() -> None:
    base = code_components()
    base["dependencies"]["pipeline.features:make.<locals>.f.<closure>.gap"] = {
        "kind": "closure",
        "digest": "1" * 32,
        "file": "pipeline/features.py",
        "line": 3,
        "value": 30,
    }
    base["dependencies"]["pipeline.features:sessions.<default>.n"] = {
        "kind": "default",
        "digest": "2" * 32,
        "file": "pipeline/features.py",
        "line": 9,
        "value": [1],
    }
    changed = copy.deepcopy(base)
    changed["dependencies"]["pipeline.features:make.<locals>.f.<closure>.gap"].update(
        digest="3" * 32, value=45
    )
    changed["dependencies"]["pipeline.features:sessions.<default>.n"].update(
        digest="4" * 32, value=[1, 2]
    )
    changed["dependencies"]["pipeline.util:clean_ts"]["digest"] = "5" * 32  # same body
    changed["function"]["digest"] = "6" * 32  # same body, names bound elsewhere
    assert messages(entry(base), entry(changed)) == [
        "names used by `sessions` now refer to other objects",
        "closure value `gap` of `make.<locals>.f`: 30 → 45",
        "default `n` of `sessions`: [1] → [1, 2]",
        "helper `clean_ts` in `pipeline/util.py`: names it uses now refer to other objects",
    ]


def test_key_scheme_and_unexplained_code_change() -> None:
    assert "key scheme 1 → 2" in messages(entry(), entry(key_scheme="2"))
    changed = code_components(warnings=["something"])  # a difference nothing explains
    (message,) = messages(entry(), entry(changed))
    assert message.startswith("code identity of `sessions` changed (")


def test_explain_components_lists_every_component() -> None:
    rows = explain_components(entry())
    by_kind: dict[str, list[str]] = {}
    for row in rows:
        by_kind.setdefault(row.kind, []).append(row.name)
    assert by_kind["key_scheme"] == ["key scheme"]
    assert by_kind["library"] == ["polars"]
    assert by_kind["param"] == ["gap_minutes"]
    assert by_kind["input"] == ["clicks"]
    assert by_kind["version"] == ["version salt"]
    assert sorted(by_kind["dependency"]) == [
        "class `Sessionizer`",
        "constant `GAP`",
        "helper `clean_ts`",
    ]
    (clicks,) = [r for r in rows if r.name == "clicks"]
    assert "schema: user: Int64, ts: Datetime(us), page: String" in clicks.detail
    (gap,) = [r for r in rows if r.name == "constant `GAP`"]
    assert gap.value == "3" * 32 and gap.detail == "pipeline/util.py:1 = 30"
    json.dumps([r.to_json() for r in rows])


def test_to_json_is_machine_readable() -> None:
    after = entry(inputs={"clicks": frame("c" * 32, 1), "gap_minutes": param("gap_minutes", 45)})
    data = explain_change(entry(), after).to_json()
    assert json.loads(json.dumps(data)) == data
    assert {c["kind"] for c in data["changes"]} <= set(CHANGE_KINDS)
    assert data["same_key"] is False and data["first_call"] is False


PARAMS = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.one_of(st.integers(-3, 3), st.text(max_size=3), st.none()),
    max_size=4,
)


@settings(max_examples=80, deadline=None)
@given(before=PARAMS, after=PARAMS)
def test_param_changes_are_exactly_the_differing_params(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    old = entry(inputs={k: param(k, v) for k, v in before.items()})
    new = entry(inputs={k: param(k, v) for k, v in after.items()})
    explanation = explain_change(old, new)
    differing = {
        k
        for k in set(before) | set(after)
        if k not in before or k not in after or hash_value(before[k]) != hash_value(after[k])
    }
    assert {c.name for c in explanation.changes} == differing
    assert explanation.same_key == (not differing)
