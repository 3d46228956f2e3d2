"""The reason in a miss's log line (pure): the key's components against the feature's newest
stored keys."""

from __future__ import annotations

from typing import Any

from featurecache.catalog.records import EntryRecord
from featurecache.ops.miss_reason import NEW_KEY, explain_miss


def _components(code: str = "c1", **params: Any) -> dict[str, Any]:
    return {
        "key_scheme": "1",
        "feature": "f",
        "code_digest": code,
        "code": {"function": {"qualname": "f", "digest": code, "body": code}},
        "inputs": {
            name: {"kind": "value", "fingerprint": f"v:{value}", "value": value}
            for name, value in params.items()
        },
    }


def _entry(key_id: str, code: str = "c1", **params: Any) -> EntryRecord:
    return EntryRecord(key_id, "f", code, "a" * 32, "polars", _components(code, **params))


def test_nothing_to_compare_is_a_new_key() -> None:
    assert explain_miss("f", "k1", "c1", _components(n=1), []) == NEW_KEY


def test_a_stored_key_that_missed_lost_its_result() -> None:
    stored = [_entry("k1", n=1)]
    assert "no longer available" in explain_miss("f", "k1", "c1", _components(n=1), stored)


def test_the_nearest_key_names_what_changed() -> None:
    stored = [_entry("k2", n=2, m=1), _entry("k1", n=1, m=1)]
    reason = explain_miss("f", "k3", "c2", _components("c2", n=1, m=1), stored)
    # Compared with k1 (same inputs), not with the newest key k2: the code changed.
    assert reason == "function body of `f` changed"


def test_many_changes_are_shortened_unless_asked_for_all() -> None:
    stored = [_entry("k1", a=1, b=1, c=1)]
    now = _components(a=2, b=2, c=2)
    assert explain_miss("f", "k2", "c1", now, stored) == (
        "param `a`: 1 → 2; param `b`: 1 → 2 (+1 more: featurecache why f)"
    )
    full = explain_miss("f", "k2", "c1", now, stored, all_changes=True)
    assert full.count("param") == 3 and "more" not in full


def test_keys_computed_lately_count_before_they_are_stored() -> None:
    pending = [_entry("k1", n=1)]  # published in the background, not committed yet
    reason = explain_miss("f", "k2", "c1", _components(n=2), [], pending=pending)
    assert reason == "param `n`: 1 → 2"
    # A key computed here but never stored (a read-only cache) is not "no longer available".
    assert explain_miss("f", "k1", "c1", _components(n=1), [], pending=pending) == NEW_KEY
