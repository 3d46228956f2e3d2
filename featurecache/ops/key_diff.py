"""Why a cache key changed (pure): compare the components stored with two cache entries and
say, component by component, what differs.

The components are the dict written by ``keys.build_key``: ``{"key_scheme", "feature",
"code_digest", "code": <code identity components>, "inputs_digest", "inputs": {argument:
InputFingerprint.to_json()}}``. ``explain_change`` diffs two of them into ``Change`` items with
machine-readable fields and one human sentence each; ``explain_components`` lists every
component of one entry (for ``featurecache why`` / ``show``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from featurecache.catalog.records import EntryRecord
from featurecache.ops.key_diff_wording import (
    dependency_label,
    dependency_name,
    file_changes,
    fmt_value,
    input_change,
    short_fingerprint,
)

CHANGE_KINDS = (
    "code",
    "dependency",
    "library",
    "input",
    "param",
    "option",
    "key_scheme",
    "version",
    "observed",  # a file the body read changed: recomputed under the same key
)


@dataclass(frozen=True)
class Change:
    """One difference between two keys."""

    kind: str  # one of CHANGE_KINDS
    name: str
    before: Any
    after: Any
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "before": self.before,
            "after": self.after,
            "message": self.message,
        }


@dataclass(frozen=True)
class Explanation:
    """What changed between the previous key of a feature and the latest one."""

    feature: str
    previous_key: str | None
    latest_key: str
    changes: tuple[Change, ...]
    summary: str

    @property
    def first_call(self) -> bool:
        return self.previous_key is None

    @property
    def same_key(self) -> bool:
        return self.previous_key == self.latest_key

    def messages(self) -> list[str]:
        """One line per change, or the summary when there is nothing to list."""
        return [c.message for c in self.changes] or [self.summary]

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "previous_key": self.previous_key,
            "latest_key": self.latest_key,
            "first_call": self.first_call,
            "same_key": self.same_key,
            "summary": self.summary,
            "changes": [c.to_json() for c in self.changes],
        }


@dataclass(frozen=True)
class ComponentRow:
    """One component of a key, for tables: ``kind``, ``name``, ``value``, ``detail``."""

    kind: str
    name: str
    value: str
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "value": self.value, "detail": self.detail}


def explain_change(previous: EntryRecord | None, latest: EntryRecord) -> Explanation:
    """Compare ``latest`` with the ``previous`` entry of the same feature. An entry that
    replaced a stale one under its own key (a file its body read changed) is explained by
    those files: that, not another key, is why it was computed."""
    from featurecache.ops.observed_diff import observed_changes

    files = observed_changes(latest.components or {})
    if files:
        count = len(files)
        return Explanation(
            latest.feature,
            latest.key_id,
            latest.key_id,
            tuple(Change("observed", line, None, None, line) for line in files),
            f"recomputed under the same key: {count} file{'s' if count != 1 else ''} it read "
            "changed",
        )
    if previous is None:
        return Explanation(
            latest.feature,
            None,
            latest.key_id,
            (),
            f"first call of `{latest.feature}`: nothing to compare",
        )
    if previous.key_id == latest.key_id:
        return Explanation(
            latest.feature, previous.key_id, latest.key_id, (), "same key as before (a hit)"
        )
    before, after = previous.components or {}, latest.components or {}
    changes: list[Change] = []
    if before.get("key_scheme") != after.get("key_scheme"):
        a, b = before.get("key_scheme"), after.get("key_scheme")
        changes.append(Change("key_scheme", "key_scheme", a, b, f"key scheme {a} → {b}"))
    if previous.code_digest != latest.code_digest or before.get("code") != after.get("code"):
        changes.extend(_code_changes(before.get("code") or {}, after.get("code") or {}))
        if not changes or all(c.kind == "key_scheme" for c in changes):
            name = (after.get("code") or {}).get("function", {}).get("qualname", latest.feature)
            changes.append(
                Change(
                    "code",
                    name,
                    previous.code_digest,
                    latest.code_digest,
                    f"code identity of `{name}` changed ({previous.code_digest[:8]} → "
                    f"{latest.code_digest[:8]})",
                )
            )
    changes.extend(_input_changes(before.get("inputs") or {}, after.get("inputs") or {}))
    if changes:
        count = len(changes)
        summary = f"{count} change{'s' if count != 1 else ''} since key {previous.key_id[:12]}"
    else:
        summary = (
            f"the key changed ({previous.key_id[:12]} → {latest.key_id[:12]}) but no recorded "
            "component differs"
        )
    return Explanation(latest.feature, previous.key_id, latest.key_id, tuple(changes), summary)


def _code_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    changes: list[Change] = []
    if before.get("scheme") != after.get("scheme"):
        a, b = before.get("scheme"), after.get("scheme")
        changes.append(Change("key_scheme", "code_scheme", a, b, f"code identity scheme {a} → {b}"))
    a, b = before.get("version"), after.get("version")
    if a != b:
        changes.append(
            Change("version", "version", a, b, f"version salt {fmt_value(a)} → {fmt_value(b)}")
        )
    changes.extend(_option_changes(before, after, version_changed=a != b))
    changes.extend(_function_changes(before, after))
    dep_changes = _dependency_changes(
        before.get("dependencies") or {}, after.get("dependencies") or {}
    )
    changes.extend(dep_changes)
    changes.extend(_library_changes(before.get("libraries") or {}, after.get("libraries") or {}))
    if before.get("python") != after.get("python"):
        a, b = before.get("python") or "-", after.get("python") or "-"
        changes.append(Change("code", "python", a, b, f"bytecode hashed under Python {a} → {b}"))
    return changes


def _option_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], version_changed: bool
) -> list[Change]:
    changes: list[Change] = []
    a_opts, b_opts = before.get("options") or {}, after.get("options") or {}
    for name in sorted(set(a_opts) | set(b_opts)):
        if name == "version" and version_changed:
            continue  # already said as the version salt
        a, b = a_opts.get(name), b_opts.get(name)
        if a != b:
            changes.append(
                Change("option", name, a, b, f"option `{name}`: {fmt_value(a)} → {fmt_value(b)}")
            )
    a, b = before.get("ignored") or [], after.get("ignored") or []
    if a != b:
        changes.append(Change("option", "ignore", a, b, f"ignore list: {a} → {b}"))
    return changes


def _function_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    a, b = before.get("function") or {}, after.get("function") or {}
    name = b.get("qualname") or a.get("qualname") or "?"
    if a.get("digest") == b.get("digest"):
        return []
    if a.get("body") != b.get("body"):
        message = f"function body of `{name}` changed"
        if a.get("mode") != b.get("mode") and b.get("mode") == "bytecode":
            message += " (now hashed from its bytecode: source unavailable or edited since import)"
        return [Change("code", name, a.get("body"), b.get("body"), message)]
    deps_a, deps_b = set(before.get("dependencies") or {}), set(after.get("dependencies") or {})
    if deps_a != deps_b:
        return []  # the new / removed dependency says it
    return [
        Change(
            "code",
            name,
            a.get("digest"),
            b.get("digest"),
            f"names used by `{name}` now refer to other objects",
        )
    ]


def _dependency_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    changes: list[Change] = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if a is None and b is not None:
            label = dependency_label(key, b, with_kind=False)
            changes.append(
                Change("dependency", key, None, b.get("digest"), f"new dependency {label}")
            )
        elif b is None and a is not None:
            label = dependency_label(key, a, with_kind=False)
            changes.append(
                Change("dependency", key, a.get("digest"), None, f"dependency {label} removed")
            )
        elif a is not None and b is not None and a.get("digest") != b.get("digest"):
            changes.extend(_changed_dependency(key, a, b))
    return changes


def _changed_dependency(key: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Change]:
    kind = b.get("kind", "function")
    label = dependency_label(key, b)
    if kind in ("constant", "closure", "default", "partial") and "value" in a and "value" in b:
        message = f"{label}: {fmt_value(a['value'])} → {fmt_value(b['value'])}"
        return [Change("dependency", key, a["value"], b["value"], message)]
    if kind == "class":
        member_changes = _member_changes(key, a.get("members") or {}, b.get("members") or {}, b)
        if member_changes:
            return member_changes
    if kind == "function" and a.get("body") == b.get("body") and a.get("body") is not None:
        message = f"{label}: names it uses now refer to other objects"
    else:
        message = f"{label} changed"
    return [Change("dependency", key, a.get("digest"), b.get("digest"), message)]


def _member_changes(
    key: str, a: Mapping[str, str], b: Mapping[str, str], record: Mapping[str, Any]
) -> list[Change]:
    cls = dependency_name(key)
    where = f" in `{record.get('file')}`" if record.get("file") else ""
    changes: list[Change] = []
    for member in sorted(set(a) | set(b)):
        before, after = a.get(member), b.get(member)
        if before == after:
            continue
        word = "method" if member in (record.get("methods") or []) else "attribute"
        what = f"{word} `{cls}.{member}`{where}"
        if before is None:
            message = f"class `{cls}`{where}: new member `{member}`"
        elif after is None:
            message = f"class `{cls}`{where}: member `{member}` removed"
        else:
            message = f"{what} changed"
        changes.append(Change("dependency", f"{key}.{member}", before, after, message))
    return changes


def _library_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    changes: list[Change] = []
    for dist in sorted(set(before) | set(after)):
        a, b = before.get(dist), after.get(dist)
        if dist not in before:
            changes.append(Change("library", dist, None, b, f"new library {dist} {b}"))
        elif dist not in after:
            changes.append(Change("library", dist, a, None, f"library {dist} {a} no longer used"))
        elif a != b:
            changes.append(Change("library", dist, a, b, f"{dist} {a} → {b}"))
    return changes


def _input_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    changes: list[Change] = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        is_param = (b or a or {}).get("kind") == "value"
        kind = "param" if is_param else "input"
        if a is None and b is not None:
            shown = fmt_value(b.get("value")) if is_param else b.get("summary", "")
            changes.append(
                Change(kind, name, None, b.get("fingerprint"), f"new {kind} `{name}` ({shown})")
            )
        elif b is None and a is not None:
            changes.append(
                Change(kind, name, a.get("fingerprint"), None, f"{kind} `{name}` removed")
            )
        elif a is not None and b is not None and a.get("fingerprint") != b.get("fingerprint"):
            changes.append(_changed_input(name, a, b))
    return changes


def _changed_input(name: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> Change:
    if a.get("kind") == "value" and b.get("kind") == "value":
        before = a.get("value", a.get("summary"))
        after = b.get("value", b.get("summary"))
        message = f"param `{name}`: {fmt_value(before)} → {fmt_value(after)}"
        return Change("param", name, before, after, message)
    files = file_changes(a, b)
    if files:
        message = f"argument `{name}`: " + "; ".join(files)
    else:
        message = f"input `{name}`: " + "; ".join(input_change(a, b))
    return Change("input", name, a.get("fingerprint"), b.get("fingerprint"), message)


def explain_components(entry: EntryRecord) -> list[ComponentRow]:
    """Every component of ``entry``'s key, one row each."""
    comps = entry.components or {}
    code = comps.get("code") or {}
    rows = [
        ComponentRow("key", "key", entry.key_id),
        ComponentRow("key_scheme", "key scheme", str(comps.get("key_scheme", "?"))),
        ComponentRow("feature", "feature", entry.feature),
        ComponentRow("code", "code identity", entry.code_digest),
    ]
    function = code.get("function") or {}
    if function:
        where = f"{function.get('file')}:{function.get('line')}" if function.get("file") else ""
        name = f"function `{function.get('qualname')}`"
        rows.append(ComponentRow("code", name, str(function.get("digest", "")), where))
    if code.get("version") is not None:
        rows.append(ComponentRow("version", "version salt", fmt_value(code["version"])))
    for name, value in sorted((code.get("options") or {}).items()):
        rows.append(ComponentRow("option", name, fmt_value(value)))
    if code.get("ignored"):
        rows.append(ComponentRow("option", "ignore", json.dumps(code["ignored"])))
    for key, record in sorted((code.get("dependencies") or {}).items()):
        rows.append(_dependency_row(key, record))
    for dist, version in sorted((code.get("libraries") or {}).items()):
        rows.append(ComponentRow("library", dist, str(version)))
    if code.get("python"):
        rows.append(ComponentRow("code", "python (bytecode)", str(code["python"])))
    for message in code.get("warnings") or []:
        rows.append(ComponentRow("warning", "code", str(message)))
    rows.append(ComponentRow("inputs", "inputs digest", str(comps.get("inputs_digest", ""))))
    for name, fp in sorted((comps.get("inputs") or {}).items()):
        rows.append(_input_row(name, fp))
    return rows


def _dependency_row(key: str, record: Mapping[str, Any]) -> ComponentRow:
    detail = f"{record.get('file')}:{record.get('line')}" if record.get("file") else ""
    if "value" in record:
        detail = f"{detail} = {fmt_value(record['value'])}".strip()
    return ComponentRow(
        "dependency",
        dependency_label(key, record, with_file=False),
        str(record.get("digest")),
        detail,
    )


def _input_row(name: str, fp: Mapping[str, Any]) -> ComponentRow:
    if fp.get("kind") == "value":
        shown = (
            fmt_value(fp["value"])
            if "value" in fp and fp["value"] is not None
            else fp.get("summary", "")
        )
        return ComponentRow("param", name, str(shown), short_fingerprint(fp.get("fingerprint")))
    parts = [str(fp.get("summary") or fp.get("kind", ""))]
    if fp.get("schema"):
        columns = ", ".join(f"{c.get('name')}: {c.get('type')}" for c in fp["schema"])
        parts.append(f"schema: {columns}")
    if fp.get("upstream_artifact_id"):
        parts.append(f"from artifact {str(fp['upstream_artifact_id'])[:12]}")
    return ComponentRow("input", name, str(fp.get("fingerprint", "")), "; ".join(parts))
