"""Why a call missed, in a few words for its log line (pure: works on the key's components and
the feature's newest stored keys, as ``featurecache why`` does with more room).

The call's key is compared with the nearest stored key of the same feature (the one sharing
the most input fingerprints, ``why_match.nearest``), and the first changes are named:
"function body of `user_features` changed", "param `gap_minutes`: 30 → 45". With nothing to
compare it is a "new key".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from featurecache.catalog.records import EntryRecord
from featurecache.ops.key_diff import explain_change
from featurecache.ops.why_match import nearest

NEW_KEY = "new key"
SHOWN_CHANGES = 2


def explain_miss(
    feature: str,
    key_id: str,
    code_digest: str,
    components: Mapping[str, Any],
    stored: Sequence[EntryRecord],
    *,
    pending: Sequence[EntryRecord] = (),
    all_changes: bool = False,
) -> str:
    """The reason a call of ``feature`` with key ``key_id`` missed, given the feature's newest
    ``stored`` keys and the keys computed lately in this process (``pending``, newest first,
    maybe not committed yet): the first ``SHOWN_CHANGES`` differences from the nearest one
    (every one with ``all_changes``), or ``NEW_KEY``."""
    if any(entry.key_id == key_id for entry in stored):
        # The key is stored but its result could not be served (collected, lost, corrupt).
        return "its stored result is no longer available"
    target = EntryRecord(
        key_id=key_id,
        feature=feature,
        code_digest=code_digest,
        artifact_id="",
        return_kind="polars",
        components=dict(components),
    )
    known = {entry.key_id for entry in pending}
    candidates = [*pending, *(entry for entry in stored if entry.key_id not in known)]
    compared = nearest(components, candidates, exclude_key=key_id)
    if compared is None:
        return NEW_KEY
    explanation = explain_change(compared, target)
    messages = [change.message for change in explanation.changes]
    if not messages:
        return explanation.summary
    shown = messages if all_changes else messages[:SHOWN_CHANGES]
    more = len(messages) - len(shown)
    suffix = f" (+{more} more: featurecache why {feature})" if more else ""
    return "; ".join(shown) + suffix
