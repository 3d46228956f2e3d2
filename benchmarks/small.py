"""Small data: what a notebook with many tiny features feels, against joblib.Memory and bare.

Child entries (run by the runner, ``run()``, each printing one ``@@BENCH`` line):

    python small.py calls --rounds R --calls N --misses M --joblib DIR
        One process, everything side by side: per call, the bare function, joblib.Memory's hit
        and featurecache's hit on a 3-row polars frame and on a 1,000-row pandas frame; then M
        tiny misses (distinct 3-row polars frames) of each cache, featurecache's including the
        wait for its background publishes. R rounds; each round's ratios are kept.
    python small.py oneshot --tool featurecache|bare
        A fresh process as a notebook starts one: import polars, pandas and pyarrow, build a
        3-row frame, call the feature once; ``featurecache`` makes one hit on the cache the
        ``calls`` child filled, ``bare`` calls the function. The runner times the whole process.

featurecache's cache is the default one, configured by ``FEATURECACHE_*`` variables (``run``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from probe import RESULT_MARK, emit

HERE = Path(__file__).resolve().parent
FRAMES = {"pl": ("polars", 3), "pd": ("pandas", 1000)}


def _per_call(fn: Callable[[], Any], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls


def calls_child(args: argparse.Namespace) -> dict[str, Any]:
    import joblib
    import small_features
    import small_fn

    import featurecache

    frames = {"pl": small_fn.polars_frame(3), "pd": small_fn.pandas_frame(1000)}
    bare = {"pl": small_fn.polars_body, "pd": small_fn.pandas_body}
    memory = joblib.Memory(args.joblib, verbose=0)
    jl = {"pl": memory.cache(small_fn.joblib_polars), "pd": memory.cache(small_fn.joblib_pandas)}
    fc = {"pl": small_features.fc_polars, "pd": small_features.fc_pandas}
    cache = featurecache.default_cache()
    engine = cache.engine
    for frame in frames:  # fill both caches, then one warm-up hit each
        fc[frame](frames[frame])
        jl[frame](frames[frame])
    cache.engine.flush()
    for frame in frames:
        fc[frame](frames[frame])
        jl[frame](frames[frame])
    small_fn.CALLS.clear()
    misses_before, hits_before = engine.session.misses, engine.session.hits
    rounds: list[dict[str, float]] = []
    jl_miss = memory.cache(small_fn.joblib_polars)
    for r in range(args.rounds):
        row: dict[str, float] = {}
        for frame, value in frames.items():
            row[f"bare:{frame}"] = _per_call(lambda f=frame, v=value: bare[f](v), args.calls)
            row[f"joblib-hit:{frame}"] = _per_call(lambda f=frame, v=value: jl[f](v), args.calls)
            row[f"fc-hit:{frame}"] = _per_call(lambda f=frame, v=value: fc[f](v), args.calls)
        hits_ok = engine.session.misses == misses_before and not small_fn.CALLS
        # Misses: fresh inputs each round (seeds never repeat), so every call computes.
        inputs = [
            small_fn.polars_frame(3, seed=1 + r * args.misses + i) for i in range(args.misses)
        ]
        started = time.perf_counter()
        for value in inputs:
            jl_miss(value)
        row["joblib-miss:pl"] = (time.perf_counter() - started) / args.misses
        misses = engine.session.misses
        started = time.perf_counter()
        for value in inputs:
            fc["pl"](value)
        row["fc-miss-call:pl"] = (time.perf_counter() - started) / args.misses
        engine.flush()  # the background publishes: part of what a miss costs
        row["fc-miss:pl"] = (time.perf_counter() - started) / args.misses
        row["misses_ok"] = float(
            engine.session.misses - misses == args.misses and len(small_fn.CALLS) == args.misses
        )
        row["hits_ok"] = float(hits_ok)
        small_fn.CALLS.clear()
        misses_before = engine.session.misses
        rounds.append(row)
    cache.close()
    return {
        "rounds": rounds,
        "calls": args.calls,
        "misses": args.misses,
        "hits": engine.session.hits - hits_before,
    }


def oneshot_child(args: argparse.Namespace) -> dict[str, Any]:
    import pandas  # noqa: F401 - what the notebook imports, in both processes
    import polars  # noqa: F401
    import pyarrow  # noqa: F401
    import small_fn

    frame = small_fn.polars_frame(3)
    if args.tool == "bare":
        small_fn.polars_body(frame)
        return {"computed": True}
    import small_features

    import featurecache

    small_features.fc_polars(frame)
    session = featurecache.default_cache().engine.session
    return {"computed": session.misses > 0, "hits": session.hits}


# -- runner side ----------------------------------------------------------------------------


def _child(python: str, argv: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    done = subprocess.run(
        [python, "small.py", *argv], cwd=HERE, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            import json

            return json.loads(line[len(RESULT_MARK) :]), wall
    tail = " | ".join(done.stderr.strip().splitlines()[-4:])
    raise RuntimeError(f"small.py {argv[0]}: exit {done.returncode}: {tail}")


def run(
    python: str,
    env: dict[str, str],
    folder: Path,
    *,
    rounds: int = 7,
    calls: int = 200,
    misses: int = 200,
    processes: int = 11,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Both children with a cache in ``folder`` (cleared first); the per-round figures, their
    medians, the median of per-round ratios, and the fresh-process pairs."""
    import shutil

    if folder.exists():
        for path in folder.rglob("*"):  # artifacts are sealed read-only
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    fc_env = env | {
        "FEATURECACHE_CATALOG": f"sqlite:///{folder / 'catalog.db'}",
        "FEATURECACHE_STORE": str(folder / "artifacts"),
        "FEATURECACHE_STATE_DIR": str(folder / "state"),
    }
    log(f"small data: {rounds} rounds of {calls} hits and {misses} misses in one process …")
    argv = ["calls", "--rounds", str(rounds), "--calls", str(calls), "--misses", str(misses)]
    result, _ = _child(python, [*argv, "--joblib", str(folder / "joblib")], fc_env)
    log(f"small data: {processes} fresh processes each, one hit vs bare …")
    pairs = []
    for _ in range(processes):
        fc, fc_wall = _child(python, ["oneshot", "--tool", "featurecache"], fc_env)
        _, bare_wall = _child(python, ["oneshot", "--tool", "bare"], env)
        pairs.append({"fc_s": fc_wall, "bare_s": bare_wall, "computed": fc["computed"]})
    result["processes"] = pairs
    result["summary"] = summarise(result)
    return result


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    rounds = result["rounds"]
    medians = {
        k: statistics.median(row[k] for row in rounds) for k in rounds[0] if not k.endswith("_ok")
    }

    def ratio(a: str, b: str) -> float:
        return float(statistics.median(row[a] / row[b] for row in rounds))

    pairs = result["processes"]
    return {
        "per_call_s": medians,
        "hit_vs_joblib": {f: ratio(f"fc-hit:{f}", f"joblib-hit:{f}") for f in FRAMES},
        "hit_vs_bare": {f: ratio(f"fc-hit:{f}", f"bare:{f}") for f in FRAMES},
        "miss_vs_joblib": ratio("fc-miss:pl", "joblib-miss:pl"),
        "miss_call_vs_joblib": ratio("fc-miss-call:pl", "joblib-miss:pl"),
        "process_fc_s": statistics.median(p["fc_s"] for p in pairs),
        "process_bare_s": statistics.median(p["bare_s"] for p in pairs),
        "process_ratio": statistics.median(p["fc_s"] / p["bare_s"] for p in pairs),
        "all_hits": all(row["hits_ok"] for row in rounds) and not any(p["computed"] for p in pairs),
        "all_misses": all(row["misses_ok"] for row in rounds),
    }


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's small-data goals as PASS/MISS lines (``report.targets`` format)."""
    out = []
    for frame, (name, rows) in FRAMES.items():
        value = summary["hit_vs_joblib"][frame]
        out.append(
            {
                "target": f"hit on a {rows:,}-row {name} frame / joblib.Memory hit, per call",
                "measured": f"{value:.2f}×",
                "goal": "≤ 1.0×",
                "ok": value <= 1.0,
            }
        )
    value = summary["process_ratio"]
    out.append(
        {
            "target": "fresh process with one hit / importing polars+pandas+pyarrow and bare call",
            "measured": f"{value:.2f}×",
            "goal": "≤ 1.3×",
            "ok": value <= 1.3,
        }
    )
    value = summary["miss_vs_joblib"]
    out.append(
        {
            "target": "200 tiny misses (incl. background publish) / joblib.Memory's",
            "measured": f"{value:.2f}×",
            "goal": "≤ 2.0×",
            "ok": value <= 2.0,
        }
    )
    return out


def table(summary: dict[str, Any]) -> tuple[str, list[str], list[list[str]]]:
    """The small-data table (``report.aux_tables`` format): per-call medians and ratios."""
    per = summary["per_call_s"]
    rows = []
    for frame, (name, n) in FRAMES.items():
        for label, title in (("bare", "bare"), ("joblib-hit", "joblib.Memory hit")):
            rows.append([f"{title}, {n:,}-row {name}", f"{per[f'{label}:{frame}'] * 1e3:.3f}", ""])
        rows.append(
            [
                f"featurecache hit, {n:,}-row {name}",
                f"{per[f'fc-hit:{frame}'] * 1e3:.3f}",
                f"{summary['hit_vs_joblib'][frame]:.2f}× joblib, "
                f"{summary['hit_vs_bare'][frame]:.1f}× bare",
            ]
        )
    rows.append(["joblib.Memory miss, 3-row polars", f"{per['joblib-miss:pl'] * 1e3:.3f}", ""])
    rows.append(
        [
            "featurecache miss (call only), 3-row polars",
            f"{per['fc-miss-call:pl'] * 1e3:.3f}",
            f"{summary['miss_call_vs_joblib']:.2f}× joblib",
        ]
    )
    rows.append(
        [
            "featurecache miss (incl. publish), 3-row polars",
            f"{per['fc-miss:pl'] * 1e3:.3f}",
            f"{summary['miss_vs_joblib']:.2f}× joblib",
        ]
    )
    rows.append(
        [
            "fresh process: import polars+pandas+pyarrow, bare call",
            f"{summary['process_bare_s'] * 1e3:.0f}",
            "",
        ]
    )
    rows.append(
        [
            "fresh process: the same + import featurecache, one hit",
            f"{summary['process_fc_s'] * 1e3:.0f}",
            f"{summary['process_ratio']:.2f}× bare process",
        ]
    )
    title = "Small data (per call, median of rounds in one process; processes: median wall)"
    if not summary["all_hits"] or not summary["all_misses"]:
        title += " — WARNING: some hit computed or some miss did not"
    return title, ["scenario", "ms", "ratio"], rows


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("entry", choices=["calls", "oneshot"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--misses", type=int, default=200)
    parser.add_argument("--joblib", default=None)
    parser.add_argument("--tool", choices=["featurecache", "bare"], default="bare")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse(argv)
    sys.path.insert(0, str(HERE))
    os.chdir(HERE)
    emit(calls_child(args) if args.entry == "calls" else oneshot_child(args))


if __name__ == "__main__":
    main(sys.argv[1:])
