"""``make bench``: featurecache against bare compute, joblib.Memory and Hamilton's cache.

    python benchmarks/run.py            # 10 M rows (~1 GB in, ~1 GB out), 3 repeats
    python benchmarks/run.py --quick    # 1 M rows

Generates the workload once (``benchmarks/work/``, reused), runs every scenario ``--repeat``
times, each in a fresh process, prints the medians, ratios and PASS/MISS target lines, and
writes ``benchmarks/results/<timestamp>-<mode>.json``, ``latest-<mode>.json`` and
``latest-<mode>.md``. Caches are cleared before every miss; the OS page cache is not, so hits
are warm-cache. A program, not a test: it never fails on a missed target.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import extras  # noqa: E402
import machine  # noqa: E402
import render  # noqa: E402
import report  # noqa: E402
import small  # noqa: E402
import stream  # noqa: E402
from probe import RESULT_MARK  # noqa: E402
from workload import WORK_DIR, input_path  # noqa: E402

RESULTS = HERE / "results"
PYTHON = sys.executable


@dataclass
class Scenario:
    label: str  # "<prefix>:<frame>", the key in results and report
    argv: list[str]
    cache: Path | None = None  # cleared before the run when ``clear``
    clear: bool = False
    env: dict[str, str] = field(default_factory=dict)
    expect_compute: bool | None = None  # None: no check
    repeat: int = 0  # which round: the report pairs runs of the same round for its ratios


def base_env() -> dict[str, str]:
    """The caller's environment minus anything that would redirect or extend a cache, or keep
    Python from caching bytecode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURECACHE_")}
    env.pop("MLFLOW_TRACKING_URI", None)
    # Bytecode is cached as for any installed package: with PYTHONDONTWRITEBYTECODE inherited,
    # every fresh process compiled featurecache's source again (about 0.1 s), while the
    # third-party libraries it is compared with load their installed .pyc files.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def fc_env(folder: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "FEATURECACHE_CATALOG": f"sqlite:///{folder / 'catalog.db'}",
        "FEATURECACHE_STORE": str(folder / "artifacts"),
        "FEATURECACHE_STATE_DIR": str(folder / "state"),
    } | (extra or {})


def clear(folder: Path) -> None:
    if folder.exists():
        for path in folder.rglob("*"):  # artifacts are sealed read-only
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(folder)


def plan(rows: int, repeat: int, hamilton_repeat: int) -> list[Scenario]:
    """Every run in order; misses precede the hits that read their caches."""
    source = str(input_path(rows))
    common = ["--rows", str(rows), "--input", source]
    caches = WORK_DIR / f"caches-{rows}"
    # Ten row groups, so the lazy hit can show pruning at any size (at 10 M rows: the default).
    lazy_env = {"FEATURECACHE_ROW_GROUP_ROWS": str(min(1_000_000, max(rows // 10, 1)))}
    steps: list[Scenario] = []
    for r in range(repeat):
        first = len(steps)
        for frame in ("pl", "pd"):
            fc = caches / f"fc-{frame}"
            steps.append(
                Scenario(f"bare:{frame}", ["scenarios.py", "bare", "--frame", frame, *common])
            )
            for kind in ("miss", "hit"):
                steps.append(
                    Scenario(
                        f"fc-{kind}:{frame}",
                        [
                            "scenarios.py",
                            "featurecache",
                            "--frame",
                            frame,
                            "--kind",
                            kind,
                            "--store",
                            str(fc / "artifacts"),
                            *common,
                        ],
                        cache=fc,
                        clear=kind == "miss",
                        env=fc_env(fc),
                        expect_compute=kind == "miss",
                    )
                )
            if frame == "pl":
                steps.append(
                    Scenario(
                        "floor:pl",
                        ["scenarios.py", "floor", "--store", str(fc / "artifacts"), *common],
                    )
                )
                lazy = caches / "fc-lazy"
                for kind in ("miss", "hit") if r == 0 else ("hit",):
                    steps.append(
                        Scenario(
                            f"fc-lazy-{kind}:pl",
                            [
                                "scenarios.py",
                                "featurecache",
                                "--feature",
                                "lazy",
                                "--kind",
                                kind,
                                "--store",
                                str(lazy / "artifacts"),
                                *common,
                            ],
                            cache=lazy,
                            clear=kind == "miss",
                            env=fc_env(lazy, lazy_env),
                            expect_compute=kind == "miss",
                        )
                    )
            tools = ["joblib", "hamilton"] if r < hamilton_repeat else ["joblib"]
            for tool in tools:
                folder = caches / f"{tool}-{frame}"
                for kind in ("miss", "hit"):
                    steps.append(
                        Scenario(
                            f"{tool}-{kind}:{frame}",
                            [
                                "scenarios.py",
                                tool,
                                "--frame",
                                frame,
                                "--kind",
                                kind,
                                "--cache",
                                str(folder),
                                *common,
                            ],
                            cache=folder,
                            clear=kind == "miss",
                            expect_compute=kind == "miss",
                        )
                    )
        for step in steps[first:]:
            step.repeat = r
    return steps


TOOLS = {
    "bare": "bare",
    "fc": "featurecache",
    "floor": "floor",
    "joblib": "joblib",
    "hamilton": "hamilton",
}


def select(steps: list[Scenario], tools: str | None) -> list[Scenario]:
    """Only the scenarios of the named tools (``--tools joblib,hamilton``)."""
    if not tools:
        return steps
    wanted = {name.strip() for name in tools.split(",")}
    unknown = wanted - set(TOOLS.values())
    if unknown:
        raise SystemExit(f"unknown tools {sorted(unknown)}; known: {sorted(TOOLS.values())}")
    return [s for s in steps if TOOLS[s.label.split(":")[0].split("-")[0]] in wanted]


def child(argv: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run one fresh process; its ``@@BENCH`` line, or an ``error`` with the stderr tail."""
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [PYTHON, *argv],
            cwd=HERE,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - started
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :]) | {"process_s": wall}
    tail = " | ".join(done.stderr.strip().splitlines()[-4:])
    return {"error": f"exit {done.returncode}: {tail}"}


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = {
        k
        for run in runs
        for k, v in run.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and k != "repeat"
    }
    return {k: statistics.median(run[k] for run in runs if k in run) for k in sorted(keys)}


def run_calls(steps: list[Scenario], timeout: float, log: Any) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {}
    errors: dict[str, list[str]] = {}
    wrong: set[str] = set()
    env = base_env()
    for number, step in enumerate(steps, 1):
        if step.clear and step.cache is not None:
            clear(step.cache)
        if step.cache is not None:
            step.cache.mkdir(parents=True, exist_ok=True)
        result = child(step.argv, env | step.env, timeout)
        if "error" in result:
            errors.setdefault(step.label, []).append(result["error"])
            log(f"[{number}/{len(steps)}] {step.label}: ERROR {result['error'][:300]}")
            continue
        if step.expect_compute is not None and result.get("computed") != step.expect_compute:
            wrong.add(step.label)
        runs.setdefault(step.label, []).append(result | {"repeat": step.repeat})
        log(
            f"[{number}/{len(steps)}] {step.label}: call {result['call_s']:.3f} s, total {result['total_s']:.3f} s, process {result['process_s']:.1f} s"
        )
    out: dict[str, Any] = {}
    for label in dict.fromkeys(s.label for s in steps):
        got = runs.get(label, [])
        out[label] = {
            "n": len(got),
            "median": median_of(got) if got else {},
            "runs": got,
            "errors": errors.get(label, []),
            "wrong_kind": label in wrong,
        }
    return out


def run_extras(args: argparse.Namespace, timeout: float, log: Any) -> dict[str, Any]:
    env = base_env()
    out: dict[str, Any] = {}
    clear(WORK_DIR / "fp-state")
    log("fingerprints …")
    out["fingerprint"] = child(["extras.py", "fingerprint", "--rows", str(args.rows)], env, timeout)
    log(f"catalog lookups ({args.catalog_entries:,} entries) …")
    out["catalog"] = child(
        ["extras.py", "catalog", "--entries", str(args.catalog_entries)], env, timeout
    )
    log("start-up …")
    try:
        out["startup"] = extras.startup(PYTHON)
    except RuntimeError as exc:
        out["startup"] = {"error": str(exc)}
    log(f"featurecache ls ({args.ls_entries:,} artifacts) …")
    built = child(["extras.py", "build-catalog", "--entries", str(args.ls_entries)], env, timeout)
    try:
        out["ls"] = built if "error" in built else extras.ls_timing(PYTHON, args.ls_entries, env)
    except RuntimeError as exc:
        out["ls"] = {"error": str(exc)}
    log(
        f"local tier: a hit from S3 (moto) through the tier vs the local store ({args.rows:,} rows) …"
    )
    out["tier"] = child(
        ["bench_tier.py", "--emit", "--rows", str(args.rows), "--repeat", str(args.repeat)],
        env,
        timeout,
    )
    out["stream"] = stream.run(
        PYTHON, env, WORK_DIR / "stream", args.rows, args.repeat, args.stream_batch, log
    )
    for name, value in out.items():
        if isinstance(value, dict) and "error" in value:
            log(f"{name}: ERROR {value['error'][:300]}")
    return out


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 M rows instead of 10 M")
    parser.add_argument("--rows", type=int, default=None, help="override the row count")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-process runs per scenario")
    parser.add_argument(
        "--hamilton-repeat",
        type=int,
        default=None,
        help="runs of Hamilton (default: 1 at full size, --repeat with --quick)",
    )
    parser.add_argument(
        "--catalog-entries", type=int, default=None, help="default 1,000,000 (100,000 with --quick)"
    )
    parser.add_argument("--ls-entries", type=int, default=100_000)
    parser.add_argument(
        "--stream-batch", type=int, default=65_536, help="rows per batch in the streaming rows"
    )
    parser.add_argument(
        "--tools", default=None, help="comma list of " + ", ".join(sorted(TOOLS.values()))
    )
    parser.add_argument(
        "--only-calls", action="store_true", help="skip fingerprints, catalog and start-up"
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="only the small-data scenarios (tiny frames, per call, and fresh processes)",
    )
    parser.add_argument(
        "--small-rounds", type=int, default=None, help="small-data rounds (default 7, 3 --quick)"
    )
    args = parser.parse_args(argv)
    args.mode = "small" if args.small else "quick" if args.quick else "full"
    args.small_rounds = args.small_rounds or (3 if args.quick else 7)
    args.rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    if args.hamilton_repeat is None:
        args.hamilton_repeat = args.repeat if args.quick else 1
    args.catalog_entries = args.catalog_entries or (100_000 if args.quick else 1_000_000)
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    started = time.perf_counter()

    def log(text: str) -> None:
        print(f"{time.perf_counter() - started:7.1f}s  {text}", file=sys.stderr, flush=True)

    info = machine.describe()
    load_start = machine.load_average()
    if args.small:
        return main_small(args, info, load_start, log)
    log(
        f"{args.mode} run: {args.rows:,} rows, {args.repeat} repeats (Hamilton {args.hamilton_repeat}); load {load_start}"
    )
    made = subprocess.run(
        [PYTHON, str(HERE / "workload.py"), str(args.rows)],
        check=False,
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        print(made.stderr, file=sys.stderr)
        return 1
    timeout = 600.0 if args.quick else 1800.0
    summary: dict[str, Any] = {
        "mode": args.mode,
        "rows": args.rows,
        "repeat": args.repeat,
        "hamilton_repeat": args.hamilton_repeat,
        "machine": info,
        "machine_line": machine.one_line(info),
        "load_start": load_start,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "notes": [],
        "ls_entries": args.ls_entries,
    }
    summary["scenarios"] = run_calls(
        select(plan(args.rows, args.repeat, args.hamilton_repeat), args.tools), timeout, log
    )
    if args.hamilton_repeat < args.repeat:
        summary["notes"].append(
            f"Hamilton ran {args.hamilton_repeat}× (not {args.repeat}×): its per-row fingerprints take tens of seconds per GB."
        )
    if not args.only_calls:
        summary |= run_extras(args, timeout, log)
        summary["small"] = run_small(args, log)
    if args.rows < 10_000_000:
        summary["notes"].append(
            f"lazy hit: its cache writes {max(args.rows // 10, 1):,}-row row groups (FEATURECACHE_ROW_GROUP_ROWS) so pruning shows at {args.rows:,} rows."
        )
    summary["load_end"] = machine.load_average()
    summary["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    summary["duration_s"] = round(time.perf_counter() - started, 1)
    summary["targets"] = report.targets(summary)
    if "summary" in summary.get("small", {}):
        summary["targets"] += small.targets(summary["small"]["summary"])
    render.render_console(summary)
    write(summary)
    clear(WORK_DIR / f"caches-{args.rows}")  # gigabytes of artifacts and pickles
    return 0


def run_small(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    """The small-data scenarios (``small.py``); an ``error`` entry when one failed."""
    processes = 5 if args.quick else 11
    try:
        return small.run(
            PYTHON,
            base_env(),
            WORK_DIR / "small",
            rounds=args.small_rounds,
            processes=processes,
            log=log,
        )
    except RuntimeError as exc:
        log(f"small data: ERROR {exc}")
        return {"error": str(exc)}


def main_small(args: argparse.Namespace, info: dict[str, Any], load_start: Any, log: Any) -> int:
    """``--small``: only the small-data scenarios, their table and targets."""
    summary: dict[str, Any] = {
        "mode": "small",
        "machine": info,
        "machine_line": machine.one_line(info),
        "load_start": load_start,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "small": run_small(args, log),
    }
    summary["load_end"] = machine.load_average()
    summary["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    if "error" in summary["small"]:
        return 1
    summary["targets"] = small.targets(summary["small"]["summary"])
    render.render_small_console(summary)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    text = json.dumps(summary, indent=2, sort_keys=True, default=str)
    (RESULTS / f"{stamp}-small.json").write_text(text)
    (RESULTS / "latest-small.json").write_text(text)
    (RESULTS / "latest-small.md").write_text(render.render_small_markdown(summary))
    print(f"results: {RESULTS}/latest-small.json and latest-small.md", file=sys.stderr)
    return 0


def write(summary: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    text = json.dumps(summary, indent=2, sort_keys=True, default=str)
    (RESULTS / f"{stamp}-{summary['mode']}.json").write_text(text)
    (RESULTS / f"latest-{summary['mode']}.json").write_text(text)
    (RESULTS / f"latest-{summary['mode']}.md").write_text(render.render_markdown(summary))
    mode = summary["mode"]
    print(f"results: {RESULTS}/latest-{mode}.json and latest-{mode}.md", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
