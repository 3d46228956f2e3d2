"""Turn a benchmark run's medians into tables and PASS/MISS target lines (console and Markdown).

Every ratio compares medians measured in the same run, side by side, so machine noise hits
both sides alike. A target whose inputs are missing (a scenario failed) is shown as ``n/a``.
"""

from __future__ import annotations

import statistics
from typing import Any

FRAMES = (("pl", "polars"), ("pd", "pandas"))
# (label prefix, row title); the label is f"{prefix}:{frame}".
CALL_ROWS = (
    ("bare", "bare compute"),
    ("fc-miss", "featurecache miss"),
    ("fc-hit", "featurecache hit"),
    ("fc-lazy-hit", "featurecache lazy hit (call + filtered collect)"),
    ("joblib-miss", "joblib.Memory miss"),
    ("joblib-hit", "joblib.Memory hit"),
    ("hamilton-miss", "Hamilton cache miss"),
    ("hamilton-hit", "Hamilton cache hit"),
    ("floor", "floor (xxh3 of input buffers + polars read of artifact)"),
)


def _med(summary: dict[str, Any], label: str, field: str) -> float | None:
    scenario = summary["scenarios"].get(label)
    if not scenario or (scenario.get("errors") and not scenario.get("median")):
        return None
    value = scenario.get("median", {}).get(field)
    return float(value) if isinstance(value, int | float) else None


def _runs(summary: dict[str, Any], label: str) -> dict[int, dict[str, Any]]:
    runs = (summary["scenarios"].get(label) or {}).get("runs", [])
    return {run.get("repeat", i): run for i, run in enumerate(runs)}


def _ratio(summary: dict[str, Any], a: str, a_field: str, b: str, b_field: str) -> float | None:
    """Median over rounds of ``a / b`` measured in the same round (seconds apart, so a noisy
    machine slows both alike); the ratio of the medians when no round has both."""
    runs_a, runs_b = _runs(summary, a), _runs(summary, b)
    ratios = [
        runs_a[r][a_field] / runs_b[r][b_field]
        for r in sorted(runs_a.keys() & runs_b.keys())
        if a_field in runs_a[r] and runs_b[r].get(b_field)
    ]
    if ratios:
        return float(statistics.median(ratios))
    return _div(_med(summary, a, a_field), _med(summary, b, b_field))


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:,.0f} MB"


def call_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = [
        "scenario",
        "frame",
        "n",
        "call s",
        "total s",
        "× bare",
        "× faster than joblib hit",
        "peak RSS Δ",
        "Δ / output",
    ]
    rows = []
    for frame, frame_name in FRAMES:
        for prefix, title in CALL_ROWS:
            label = f"{prefix}:{frame}"
            scenario = summary["scenarios"].get(label)
            if scenario is None:
                continue
            if scenario.get("errors") and not scenario.get("median"):
                rows.append([title, frame_name, "0", "error", "", "", "", "", ""])
                continue
            call = _med(summary, label, "call_s")
            total = _med(summary, label, "total_s")
            peak = _med(summary, label, "peak_delta_bytes")
            jl, bare = f"joblib-hit:{frame}", f"bare:{frame}"
            is_read = "hit" in prefix or prefix == "floor"
            faster = _ratio(summary, jl, "call_s", label, "total_s") if is_read else None
            note = " !" if scenario.get("wrong_kind") else ""
            rows.append(
                [
                    title + note,
                    frame_name,
                    str(scenario.get("n", 0)),
                    _fmt(call, ".3f"),
                    _fmt(total, ".3f"),
                    _fmt(_ratio(summary, label, "total_s", bare, "total_s"), ".2f", "×"),
                    _fmt(faster, ".1f", "×"),
                    _mb(peak),
                    _fmt(_ratio(summary, label, "peak_delta_bytes", label, "out_bytes"), ".2f", "×")
                    if prefix != "fc-lazy-hit"
                    else "—",
                ]
            )
    return head, rows


def _target(
    name: str, value: float | None, goal: str, ok: bool | None, shown: str
) -> dict[str, Any]:
    return {
        "target": name,
        "measured": shown if value is not None else "n/a",
        "goal": goal,
        "ok": ok if value is not None else None,
    }


def _at_least(name: str, value: float | None, bound: float, spec: str, unit: str) -> dict[str, Any]:
    return _target(
        name,
        value,
        f"≥ {bound:g}{unit}",
        None if value is None else value >= bound,
        _fmt(value, spec, unit),
    )


def _at_most(name: str, value: float | None, bound: float, spec: str, unit: str) -> dict[str, Any]:
    return _target(
        name,
        value,
        f"≤ {bound:g}{unit}",
        None if value is None else value <= bound,
        _fmt(value, spec, unit),
    )


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    def r(a: str, b: str, a_field: str = "call_s", b_field: str = "call_s") -> float | None:
        return _ratio(summary, a, a_field, b, b_field)

    out = [
        _at_least(
            "polars hit vs joblib hit (speed-up)",
            r("joblib-hit:pl", "fc-hit:pl"),
            6,
            ".1f",
            "×",
        ),
        _at_least(
            "pandas hit vs joblib hit (speed-up)",
            r("joblib-hit:pd", "fc-hit:pd"),
            2.5,
            ".1f",
            "×",
        ),
        _at_most("polars hit / floor", r("fc-hit:pl", "floor:pl"), 1.5, ".2f", "×"),
        _at_least(
            "lazy hit (call + filtered collect) vs joblib hit",
            r("joblib-hit:pl", "fc-lazy-hit:pl", b_field="total_s"),
            20,
            ".1f",
            "×",
        ),
    ]
    for frame, name in FRAMES:
        for field, what in (("call_s", "call latency"), ("total_s", "incl. in-flight publish")):
            over = r(f"fc-miss:{frame}", f"bare:{frame}", field, "total_s")
            out.append(
                _at_most(
                    f"{name} miss overhead, {what}",
                    None if over is None else (over - 1) * 100,
                    10,
                    "+.0f",
                    "%",
                )
            )
    for frame, name in FRAMES:
        ratio = r(f"fc-hit:{frame}", f"fc-hit:{frame}", "peak_delta_bytes", "out_bytes")
        out.append(
            _target(
                f"{name} hit peak RSS Δ / output size",
                ratio,
                "< 2× (one copy)",
                None if ratio is None else ratio < 2.0,
                _fmt(ratio, ".2f", "×"),
            )
        )
    frames = (summary.get("fingerprint") or {}).get("frames", {}).get("sources", {})
    for source, bound in (("pyarrow", 5.0), ("polars", 5.0), ("pandas", 3.0)):
        value = frames.get(source, {}).get("gb_per_s")
        out.append(_at_least(f"fingerprint {source} frame", value, bound, ".1f", " GB/s"))
    file_ms = (summary.get("fingerprint") or {}).get("file", {}).get("unchanged_median_ms")
    out.append(
        _target(
            "unchanged input file re-fingerprint",
            file_ms,
            "< 1 ms",
            None if file_ms is None else file_ms < 1.0,
            _fmt(file_ms, ".3f", " ms"),
        )
    )
    catalog = summary.get("catalog") or {}
    lookup = (catalog.get("lookup_hit") or {}).get("median_ms")
    entries = catalog.get("entries")
    out.append(
        _target(
            f"catalog lookup median ({entries or '?':,} entries, SQLite)"
            if entries
            else "catalog lookup median (SQLite)",
            lookup,
            "< 2 ms",
            None if lookup is None else lookup < 2.0,
            _fmt(lookup, ".3f", " ms"),
        )
    )
    imp = (summary.get("startup") or {}).get("import_s")
    out.append(
        _target(
            "import featurecache (fresh process)",
            imp,
            "< 0.3 s",
            None if imp is None else imp < 0.3,
            _fmt(imp, ".3f", " s"),
        )
    )
    tier = summary.get("tier") or {}
    ratio = tier.get("ratio_tier_vs_local")
    out.append(
        _target(
            f"S3 hit through the local tier / local-store hit ({_mb(tier.get('tier_bytes'))})",
            ratio,
            "≤ 1.2×",
            None if ratio is None else ratio <= 1.2 and bool(tier.get("all_hits")),
            _fmt(ratio, ".2f", "×"),
        )
    )
    ls = summary.get("ls") or {}
    ls_s = ls.get("ls_s")
    name = f"featurecache ls ({summary.get('ls_entries', 0):,} artifacts)"
    if ls.get("ls_timed_out"):
        out.append(_target(name, 0.0, "< 1 s", False, _ls_fmt(ls, "ls")))
    else:
        out.append(
            _target(name, ls_s, "< 1 s", None if ls_s is None else ls_s < 1.0, _ls_fmt(ls, "ls"))
        )
    return out


def _ls_fmt(ls: dict[str, Any], key: str) -> str:
    if ls.get(f"{key}_timed_out"):
        return f"> {ls.get('timeout_s', 0):.0f} s (killed)"
    return _fmt(ls.get(f"{key}_s"), ".3f", " s")


def notes(summary: dict[str, Any]) -> list[str]:
    """Facts that explain the table: pruning of the lazy hit, joblib's own overhead, sizes."""
    lines = []
    lazy = summary["scenarios"].get("fc-lazy-hit:pl", {}).get("median", {})
    if "row_groups" in lazy:
        share = _div(lazy.get("bytes_read"), lazy.get("artifact_bytes"))
        lines.append(
            f"lazy hit: the predicate (1 % of event_id) and projection (4 of {lazy.get('artifact_columns', 0):.0f} columns) "
            f"need {lazy['row_groups_read']:.0f} of {lazy['row_groups']:.0f} row groups, "
            f"{_mb(lazy.get('bytes_read'))} of the {_mb(lazy.get('artifact_bytes'))} artifact "
            f"({_fmt(None if share is None else share * 100, '.2f', '%')}), by the file's statistics; "
            f"collect took {_fmt(lazy.get('collect_s'), '.3f', ' s')} vs {_fmt(_med(summary, 'floor:pl', 'read_s'), '.3f', ' s')} "
            "for an eager read of the whole artifact (floor)."
        )
    for frame, name in FRAMES:
        over = _ratio(summary, f"joblib-miss:{frame}", "total_s", f"bare:{frame}", "total_s")
        if over is not None:
            lines.append(
                f"joblib.Memory {name} miss overhead over bare compute: {(over - 1) * 100:+.0f}% (reference: +60–110%)."
            )
    fp = summary.get("fingerprint") or {}
    if fp.get("file"):
        f = fp["file"]
        lines.append(
            f"file fingerprint: {f['file_bytes'] / 1e9:.2f} GB Arrow IPC file read cold at {f['cold_gb_per_s']:.2f} GB/s; "
            f"unchanged re-fingerprint {f['unchanged_median_ms']:.3f} ms median "
            f"(first call after re-opening the stat cache {f['reopened_first_ms']:.2f} ms)."
        )
    for label, what in (("fc-hit:pl", "polars hit"), ("fc-miss:pl", "polars miss")):
        phases = {
            k[len("phase_") : -2]: v
            for k, v in summary["scenarios"].get(label, {}).get("median", {}).items()
            if k.startswith("phase_")
        }
        if phases:
            parts = ", ".join(f"{name} {seconds:.3f} s" for name, seconds in phases.items())
            lines.append(f"featurecache {what}, where the time goes (medians, nested): {parts}.")
    opens = [
        f"{name} {_fmt(_med(summary, f'fc-hit:{frame}', 'open_s'), '.2f', ' s')}"
        for frame, name in FRAMES
        if _med(summary, f"fc-hit:{frame}", "open_s") is not None
    ]
    if opens:
        lines.append(
            "not in the call times: opening featurecache's cache once per process before the first "
            f"call (median, hit processes): {', '.join(opens)}."
        )
    wrong = [label for label, sc in summary["scenarios"].items() if sc.get("wrong_kind")]
    if wrong:
        lines.append(
            f"! in some runs a hit recomputed or a miss did not compute: {', '.join(wrong)}."
        )
    failed = [label for label, sc in summary["scenarios"].items() if sc.get("errors")]
    if failed:
        lines.append(f"failed runs (see the JSON): {', '.join(failed)}.")
    for note in summary.get("notes", []):
        lines.append(note)
    return lines


def aux_tables(summary: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    tables = []
    fp = (summary.get("fingerprint") or {}).get("frames", {})
    if fp.get("sources"):
        rows = [
            [name, _fmt(v.get("seconds"), ".3f"), _fmt(v.get("gb_per_s"), ".2f")]
            for name, v in fp["sources"].items()
        ]
        tables.append(
            (
                f"Fingerprints ({fp.get('rows', 0):,} rows, {fp.get('bytes', 0) / 1e9:.2f} GB as Arrow)",
                ["frame", "seconds", "GB/s"],
                rows,
            )
        )
    cat = summary.get("catalog") or {}
    if cat.get("lookup_hit"):
        rows = [
            [what, _fmt(cat[key].get("median_ms"), ".3f"), _fmt(cat[key].get("p99_ms"), ".3f")]
            for key, what in (
                ("lookup_hit", "lookup, present key"),
                ("lookup_miss", "lookup, absent key"),
                ("record_hit_event", "record a hit"),
            )
            if key in cat
        ]
        tables.append(
            (
                f"Catalog (SQLite, {cat.get('entries', 0):,} entries)",
                ["operation", "median ms", "p99 ms"],
                rows,
            )
        )
    st, ls = summary.get("startup") or {}, summary.get("ls") or {}
    rows = []
    if st:
        rows.append(
            ["import featurecache (wall − python -c pass)", _fmt(st.get("import_s"), ".3f", " s")]
        )
        rows.append(
            [
                "import featurecache (-X importtime cumulative)",
                _fmt(st.get("importtime_cumulative_s"), ".3f", " s"),
            ]
        )
    if ls:
        rows.append([f"featurecache ls, {ls.get('entries', 0):,} artifacts", _ls_fmt(ls, "ls")])
        rows.append(
            [f"featurecache ls --json, {ls.get('entries', 0):,} artifacts", _ls_fmt(ls, "ls_json")]
        )
    if rows:
        tables.append(("Start-up (median of fresh processes)", ["command", "time"], rows))
    tier = summary.get("tier") or {}
    if "tier_hit_s" in tier:
        rows = [
            [
                "first S3 hit (downloads into the tier)",
                _fmt(tier["first_s3_hit"]["call_s"], ".3f", " s"),
            ],
            [
                "S3 hit, FEATURECACHE_LOCAL_TIER=off",
                _fmt(tier["s3_hit_without_tier"]["call_s"], ".3f", " s"),
            ],
            ["S3 hit through the tier (median)", _fmt(tier["tier_hit_s"], ".3f", " s")],
            ["local-store hit (median)", _fmt(tier["local_hit_s"], ".3f", " s")],
        ]
        tables.append(
            (
                f"Local tier ({_mb(tier.get('tier_bytes'))} artifact, fresh processes, call only)",
                ["hit", "time"],
                rows,
            )
        )
    return tables
