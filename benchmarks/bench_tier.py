"""The local tier: a hit of a large artifact from S3 (moto) through the tier, against a hit of
the same artifact from a local store.

    python benchmarks/bench_tier.py                 # 10 M rows: a ~1 GB artifact
    python benchmarks/bench_tier.py --rows 1000000  # what ``run.py --quick`` runs

The feature returns the benchmark workload (``workload.ensure_input``) read into polars, so its
artifact is about as large as the input. Each call runs in a fresh process and is timed inside
it (``call_s``: key, lookup, verify, decode; not the interpreter's start). Order: one miss in
each cache (the S3 one publishes through moto), the first S3 hit (downloads into the tier,
``first_s3_hit``), then ``--repeat`` rounds of a local-store hit, a tier hit and an S3 hit with
``FEATURECACHE_LOCAL_TIER=off`` (what every hit paid before the tier). Prints medians, the
median of the per-round ratios tier / local (goal: at most 1.2) and where each call's time went
(``key_for``, ``_load``); with ``--emit`` one ``@@BENCH`` line for ``run.py``. Loopback moto:
a real network makes the download slower, not the tier hit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from probe import RESULT_MARK, emit, instrument  # noqa: E402


def tier_artifact(path: Path) -> pl.DataFrame:
    """The feature whose hits are timed: the workload read back (a ~1 GB artifact at 10 M)."""
    return pl.read_parquet(path)


def child(input_file: str) -> None:
    """One call in this fresh process (configured by FEATURECACHE_* variables). ``open_s`` is
    opening the cache (an S3 store's boto3 client and write probe); ``call_s`` the call."""
    import featurecache

    started = time.perf_counter()
    cache = featurecache.FeatureCache()
    feature: Any = cache.cached_feature(tier_artifact)
    assert cache.engine.store is not None  # opened now, not inside the timed call
    parts: dict[str, float] = {}
    instrument(cache.engine, ["key_for", "_load", "_tier_copy"], parts)
    opened = time.perf_counter()
    frame = feature(Path(input_file))
    done = time.perf_counter()
    emit(
        {
            "open_s": opened - started,
            "call_s": done - opened,
            "parts": parts,
            "computed": cache.engine.session.misses > 0,
            "rows": frame.height,
        }
    )
    cache.close()


def _run_child(input_file: Path, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "child", str(input_file)],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            import json

            result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            return result
    raise RuntimeError(f"child failed ({done.returncode}): {done.stderr.strip()[-800:]}")


def _env(folder: Path, store: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURECACHE_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return (
        env
        | {
            "FEATURECACHE_CATALOG": f"sqlite:///{folder / 'catalog.db'}",
            "FEATURECACHE_STORE": store,
            "FEATURECACHE_STATE_DIR": str(folder / "state"),
            "FEATURECACHE_BACKGROUND_PUBLISH": "false",
        }
        | (extra or {})
    )


def run(rows: int, repeat: int) -> dict[str, Any]:
    import boto3
    from bench_team import BUCKET, aws_environment, moto_server
    from workload import ensure_input

    input_file = ensure_input(rows)
    results: dict[str, Any] = {"rows": rows, "repeat": repeat, "load": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="bench-tier-") as tmp:
        work = Path(tmp)
        local = _env(work / "local", str(work / "local" / "artifacts"))
        with moto_server(work / "moto.log") as endpoint, aws_environment(endpoint):
            boto3.session.Session().client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
            remote = _env(work / "s3", f"s3://{BUCKET}/tier")
            direct = remote | {"FEATURECACHE_LOCAL_TIER": "off"}
            for name, env in (("local_miss", local), ("s3_miss", remote)):
                results[name] = _run_child(input_file, env)
            results["first_s3_hit"] = _run_child(input_file, remote)
            local_hits, tier_hits, direct_hits = [], [], []
            for _ in range(repeat):
                local_hits.append(_run_child(input_file, local))
                tier_hits.append(_run_child(input_file, remote))
                direct_hits.append(_run_child(input_file, direct))
        tier_folder = work / "s3" / "state" / "tier"
        results["tier_bytes"] = sum(p.stat().st_size for p in tier_folder.glob("??/*.parquet"))
    every = [*local_hits, *tier_hits, *direct_hits, results["first_s3_hit"]]
    results["all_hits"] = not any(run["computed"] for run in every)
    results["local_hit_s"] = statistics.median(r["call_s"] for r in local_hits)
    results["tier_hit_s"] = statistics.median(r["call_s"] for r in tier_hits)
    results["s3_hit_without_tier"] = {"call_s": statistics.median(r["call_s"] for r in direct_hits)}
    # Ratios within a round (runs seconds apart), then their median: load bursts cancel.
    results["ratio_tier_vs_local"] = statistics.median(
        t["call_s"] / loc["call_s"] for t, loc in zip(tier_hits, local_hits, strict=True)
    )
    results["ratio_without_tier_vs_local"] = statistics.median(
        d["call_s"] / loc["call_s"] for d, loc in zip(direct_hits, local_hits, strict=True)
    )
    results["runs"] = {"local": local_hits, "tier": tier_hits, "tier_off": direct_hits}
    return results


def _run_text(run: dict[str, Any]) -> str:
    parts = " ".join(f"{k} {v:.3f}" for k, v in sorted(run.get("parts", {}).items()))
    return f"{run['call_s']:.3f} s ({parts})"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["child"]:
        child(args[1])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--emit", action="store_true", help="one @@BENCH line for run.py")
    options = parser.parse_args(args)
    results = run(options.rows, options.repeat)
    if options.emit:
        emit(results)
        return 0
    mb = results["tier_bytes"] / 1e6
    print(f"{results['rows']:,} rows, a {mb:.0f} MB artifact (load {results['load']:.1f})")
    print(f"miss, local store:            {results['local_miss']['call_s']:8.3f} s")
    print(f"miss, S3 (publish via moto):  {results['s3_miss']['call_s']:8.3f} s")
    print(f"first S3 hit (downloads):     {results['first_s3_hit']['call_s']:8.3f} s")
    print(f"local-store hit (median of {results['repeat']}): {results['local_hit_s']:8.3f} s")
    print(f"tier hit (median of {results['repeat']}):        {results['tier_hit_s']:8.3f} s")
    print(f"S3 hit, tier off (median):    {results['s3_hit_without_tier']['call_s']:8.3f} s")
    for name, runs in results["runs"].items():
        print(f"  {name:>8}: " + ", ".join(_run_text(run) for run in runs))
    print(f"tier hit / local hit:     x{results['ratio_tier_vs_local']:.2f}  (goal <= 1.2)")
    print(f"tier-off hit / local hit: x{results['ratio_without_tier_vs_local']:.2f}")
    print(f"every call after the misses was a hit: {results['all_hits']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
