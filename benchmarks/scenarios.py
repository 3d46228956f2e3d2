"""One benchmark scenario, run in a fresh process: ``python scenarios.py NAME --rows N ...``.

The process reads the input Parquet (not timed), then times only the call under test, measures
what the call added to peak RSS, and prints one ``@@BENCH {json}`` line. The runner sets the
cache locations (``FEATURECACHE_*`` variables, ``--cache`` for joblib and Hamilton) and clears
them before every miss. Page cache is never dropped: hits are warm-cache reads.

Every scenario reports ``call_s`` (what the caller waits for) and ``total_s`` (the process's
work including anything still in flight after the call returned, e.g. featurecache's background
publish), plus ``computed``: whether the feature function really ran.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from probe import PeakMemory, emit, frame_bytes, instrument, timer

FRAME = {"pl": "polars", "pd": "pandas"}
LAZY_COLUMNS = ["event_id", "user_id", "amount", "spend_share"]


def lazy_range(rows: int) -> tuple[int, int]:
    """A 1 % slice of ``event_id`` inside one row group (of ten): the selective predicate."""
    lo = rows * 42 // 100
    return lo, lo + max(rows // 100, 1) - 1


def load(path: Path, frame: str) -> Any:
    if frame == "pd":
        import pandas as pd

        return pd.read_parquet(path)
    import polars as pl

    return pl.read_parquet(path)


def find_artifact(store: Path) -> Path:
    """The largest artifact file in a local store (each scenario's store holds one feature)."""
    files = [p for p in store.glob("??/*.parquet") if p.is_file()]
    if not files:
        raise SystemExit(f"no artifact under {store}: run the miss first")
    return max(files, key=lambda p: p.stat().st_size)


def _timed(call: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    out: dict[str, Any] = {}
    mem = PeakMemory()
    mem.start()
    with timer(out, "call_s"):
        value = call()
    out["peak_delta_bytes"] = mem.stop()
    out["peak_fallback"] = mem.fallback
    out["total_s"] = out["call_s"]
    return value, out


def bare(events: Any, args: argparse.Namespace) -> dict[str, Any]:
    import feature_fn

    fn = feature_fn.polars_features if args.frame == "pl" else feature_fn.pandas_features
    out, res = _timed(lambda: fn(events))
    return res | {"out_bytes": frame_bytes(out), "computed": True}


def featurecache_call(events: Any, args: argparse.Namespace) -> dict[str, Any]:
    import targets

    import featurecache

    features: dict[str, Callable[[Any], Any]] = {
        "pl": targets.fc_polars,
        "pd": targets.fc_pandas,
        "lazy": targets.fc_polars_lazy,
    }
    feature = features[args.feature]
    res: dict[str, Any] = {}
    cache = featurecache.default_cache()
    with timer(res, "open_s"):  # catalog + store opened once per process, before the call
        engine = cache.engine
    phases: dict[str, float] = {}
    instrument(engine, ["key_for", "_load", "_compute", "publish"], phases)
    instrument(engine.catalog, ["lookup"], phases)
    instrument(feature, ["code_identity"], phases)
    mem = PeakMemory()
    mem.start()
    with timer(res, "call_s"):
        out = feature(events)
    extra: dict[str, Any] = {"returned": type(out).__name__}
    if args.feature == "lazy":
        import polars as pl

        lo, hi = lazy_range(args.rows)
        with timer(res, "collect_s"):
            picked = (
                out.filter(pl.col("event_id").is_between(lo, hi)).select(LAZY_COLUMNS).collect()
            )
        extra["collected_rows"] = picked.height
    with timer(res, "flush_s"):  # waits for a background publish still in flight
        cache.close()
    res["peak_delta_bytes"] = mem.stop()
    res["peak_fallback"] = mem.fallback
    res["total_s"] = res["call_s"] + res.get("collect_s", 0.0) + res["flush_s"]
    res |= {f"phase_{name.strip('_')}_s": seconds for name, seconds in phases.items()}
    res["hits"], res["misses"] = engine.session.hits, engine.session.misses
    res["computed"] = engine.session.misses > 0
    if args.feature == "lazy":
        artifact = find_artifact(Path(args.store))
        extra |= pruning(artifact, *lazy_range(args.rows), LAZY_COLUMNS)
    else:
        res["out_bytes"] = frame_bytes(out)
    return res | extra


def pruning(path: Path, lo: int, hi: int, columns: list[str]) -> dict[str, Any]:
    """Row groups and bytes a reader needs for ``lo <= event_id <= hi`` over ``columns``,
    decided from the file's own statistics (what polars' predicate pushdown uses)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    index = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
    groups_read = bytes_read = 0
    for number in range(meta.num_row_groups):
        group = meta.row_group(number)
        stats = group.column(index["event_id"]).statistics
        if stats is not None and stats.has_min_max and (stats.max < lo or stats.min > hi):
            continue
        groups_read += 1
        bytes_read += sum(group.column(index[c]).total_compressed_size for c in columns)
    return {
        "row_groups": meta.num_row_groups,
        "row_groups_read": groups_read,
        "bytes_read": bytes_read,
        "artifact_bytes": path.stat().st_size,
        "artifact_columns": meta.num_columns,
    }


def joblib_call(events: Any, args: argparse.Namespace) -> dict[str, Any]:
    import joblib
    import targets

    target = targets.joblib_polars if args.frame == "pl" else targets.joblib_pandas
    res: dict[str, Any] = {}
    with timer(res, "open_s"):
        cached = joblib.Memory(args.cache, verbose=0).cache(target)
    out, timed = _timed(lambda: cached(events))
    return res | timed | {"out_bytes": frame_bytes(out), "computed": bool(targets.CALLS)}


def hamilton_call(events: Any, args: argparse.Namespace) -> dict[str, Any]:
    import hamilton_dag
    from hamilton import driver

    node, given = (
        ("features_polars", "events_pl") if args.frame == "pl" else ("features_pandas", "events_pd")
    )
    res: dict[str, Any] = {}
    with timer(res, "open_s"):
        dr = driver.Builder().with_modules(hamilton_dag).with_cache(path=args.cache).build()
    out, timed = _timed(lambda: dr.execute([node], inputs={given: events})[node])
    return res | timed | {"out_bytes": frame_bytes(out), "computed": bool(hamilton_dag._CALLS)}


def floor(events: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The least any cache can do on a hit: hash the input's Arrow buffers with xxh3, then
    read the artifact file with polars."""
    import polars as pl
    import xxhash

    artifact = find_artifact(Path(args.store))
    res: dict[str, Any] = {}
    mem = PeakMemory()
    mem.start()
    with timer(res, "hash_s"):
        table = events.to_arrow(compat_level=pl.CompatLevel.newest())  # zero-copy export
        hasher = xxhash.xxh3_128()
        for column in table.columns:
            for chunk in column.chunks:
                for buffer in chunk.buffers():
                    if buffer is not None:
                        hasher.update(memoryview(buffer))
        hasher.digest()
    with timer(res, "read_s"):
        out = pl.read_parquet(artifact)
    res["peak_delta_bytes"] = mem.stop()
    res["peak_fallback"] = mem.fallback
    res["call_s"] = res["total_s"] = res["hash_s"] + res["read_s"]
    return res | {
        "out_bytes": frame_bytes(out),
        "computed": False,
        "artifact_bytes": artifact.stat().st_size,
    }


RUNNERS: dict[str, Callable[[Any, argparse.Namespace], dict[str, Any]]] = {
    "bare": bare,
    "featurecache": featurecache_call,
    "joblib": joblib_call,
    "hamilton": hamilton_call,
    "floor": floor,
}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("tool", choices=sorted(RUNNERS))
    parser.add_argument("--frame", choices=sorted(FRAME), default="pl")
    parser.add_argument("--feature", choices=["pl", "pd", "lazy"], default=None)
    parser.add_argument("--kind", choices=["miss", "hit", "bare"], default="bare")
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--cache", default=None, help="joblib / Hamilton cache directory")
    parser.add_argument("--store", default=None, help="featurecache store directory")
    args = parser.parse_args(argv)
    if args.feature is None:
        args.feature = args.frame
    return args


def main(argv: list[str]) -> None:
    args = parse(argv)
    # Third-party libraries every contender (and the floor) uses are imported before the timed
    # call, so no scenario is charged for them; featurecache's own lazy imports stay inside.
    import pyarrow
    import pyarrow.parquet  # noqa: F401

    loaded: dict[str, float] = {}
    with timer(loaded, "load_s"):
        events = load(Path(args.input), args.frame)
    result = RUNNERS[args.tool](events, args)
    emit(
        {"tool": args.tool, "frame": args.frame, "kind": args.kind, "rows": args.rows}
        | loaded
        | result
    )


if __name__ == "__main__":
    main(sys.argv[1:])
