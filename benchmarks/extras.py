"""The benchmark's non-call measurements: fingerprint throughput, catalog lookups, start-up.

Child entries (each run in a fresh process by the runner, printing one ``@@BENCH`` line):

    python extras.py fingerprint --rows N --state DIR   # frames (bench_fingerprint.run) + file stat cache
    python extras.py catalog --entries N                # bench_catalog.run: lookup latency
    python extras.py build-catalog --entries N          # an N-artifact catalog for `featurecache ls`

Runner-side helpers time ``import featurecache`` and ``featurecache ls`` in fresh processes.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from probe import emit

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
RACY_WAIT_S = 3.0


# -- children ---------------------------------------------------------------------------------


def _frames_fallback(rows: int, state: Path) -> dict[str, Any]:
    """Frame fingerprints through the public API when bench_fingerprint.py is absent."""
    import polars as pl
    import pyarrow.parquet as pq
    from workload import ensure_input

    from featurecache.fingerprint.files import FileFingerprinter
    from featurecache.fingerprint.inputs import fingerprint_input

    table = pq.read_table(ensure_input(rows))
    frames = {"pyarrow": table, "polars": pl.from_arrow(table), "pandas": table.to_pandas()}
    files = FileFingerprinter(state)
    sources = {}
    for name, frame in frames.items():
        times = []
        for _ in range(3):
            started = time.perf_counter()
            fingerprint_input("frame", frame, files=files)
            times.append(time.perf_counter() - started)
        seconds = statistics.median(times)
        sources[name] = {"seconds": seconds, "gb_per_s": table.nbytes / seconds / 1e9}
    files.close()
    return {"rows": rows, "bytes": table.nbytes, "sources": sources, "via": "fallback"}


def _file_stat_cache(rows: int, state: Path) -> dict[str, Any]:
    """Fingerprint the input as an uncompressed Arrow IPC file (~1 GB at 10 M rows): once cold
    (reads every byte), then again from the stat cache with a re-opened fingerprinter."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from workload import ensure_input

    from featurecache.fingerprint.files import FileFingerprinter
    from featurecache.fingerprint.inputs import fingerprint_input

    path = WORK / f"input-{rows}.arrow"
    if not path.is_file():
        table = pq.read_table(ensure_input(rows))
        tmp = path.with_suffix(".tmp")
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        tmp.replace(path)
    # The stat cache rightly distrusts a file changed within its racy window (2 s): a fresh
    # copy would be re-hashed every time. Wait until ours is older than that.
    stat = path.stat()
    age = time.time() - max(stat.st_mtime, stat.st_ctime)
    if age < RACY_WAIT_S:
        time.sleep(RACY_WAIT_S - age)
    files = FileFingerprinter(state)
    started = time.perf_counter()
    fingerprint_input("path", path, files=files)
    cold = time.perf_counter() - started
    files.close()
    files = FileFingerprinter(state)  # what a new process sees: the on-disk stat cache
    warm = []
    for _ in range(21):
        started = time.perf_counter()
        fingerprint_input("path", path, files=files)
        warm.append(time.perf_counter() - started)
    files.close()
    size = path.stat().st_size
    return {
        "file_bytes": size,
        "cold_s": cold,
        "cold_gb_per_s": size / cold / 1e9,
        "reopened_first_ms": warm[0] * 1000,
        "unchanged_median_ms": statistics.median(warm) * 1000,
    }


def child_fingerprint(rows: int, state: Path) -> dict[str, Any]:
    try:
        import bench_fingerprint
    except ImportError:
        frames = _frames_fallback(rows, state)
    else:
        frames = bench_fingerprint.run(rows) | {"via": "bench_fingerprint.run"}
    return {"frames": frames, "file": _file_stat_cache(rows, state)}


def child_catalog(entries: int) -> dict[str, Any]:
    import bench_catalog

    return bench_catalog.run(entries)


def child_build_catalog(entries: int) -> dict[str, Any]:
    """Reuse bench_catalog's bulk builder: ``entries`` artifacts, one entry each."""
    import bench_catalog

    from featurecache.catalog import Catalog

    catalog = Catalog.open(f"sqlite:///{ls_catalog_path(entries)}")
    try:
        seconds = bench_catalog.build(catalog, entries)
    finally:
        catalog.close()
    return {"entries": entries, "build_s": seconds}


def ls_catalog_path(entries: int) -> Path:
    return WORK / f"catalog-{entries}.db"


# -- runner side ------------------------------------------------------------------------------


def _wall(argv: list[str], env: dict[str, str] | None = None, timeout: float = 600.0) -> float:
    """Wall seconds of a fresh process; ``inf`` when it ran past ``timeout`` (then killed)."""
    started = time.perf_counter()
    try:
        done = subprocess.run(
            argv,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return float("inf")
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise RuntimeError(f"{' '.join(argv)} failed: {tail}")
    return seconds


def startup(python: str, repeat: int = 7) -> dict[str, Any]:
    """``import featurecache`` in a fresh interpreter: wall time minus ``python -c pass``."""
    bare = [_wall([python, "-c", "pass"]) for _ in range(repeat)]
    imported = [_wall([python, "-c", "import featurecache"]) for _ in range(repeat)]
    done = subprocess.run(
        [python, "-X", "importtime", "-c", "import featurecache"],
        capture_output=True,
        text=True,
        check=False,
    )
    cumulative_us = None
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+\s+\|\s+(\d+)\s+\|\s*featurecache$", line)
        if match:
            cumulative_us = int(match.group(1))
    return {
        "python_pass_s": statistics.median(bare),
        "import_wall_s": statistics.median(imported),
        "import_s": statistics.median(imported) - statistics.median(bare),
        "importtime_cumulative_s": None if cumulative_us is None else cumulative_us / 1e6,
    }


def ls_timing(
    python: str, entries: int, env: dict[str, str], repeat: int = 3, timeout: float = 30.0
) -> dict[str, Any]:
    """``featurecache ls`` (and ``ls --json``) on a catalog of ``entries`` artifacts; a command
    slower than ``timeout`` is killed, reported as ``None`` with ``*_timed_out``, not repeated."""
    script = Path(python).parent / "featurecache"
    argv = [str(script)] if script.is_file() else [python, "-m", "featurecache.cli.main"]
    store = WORK / "ls-store"
    store.mkdir(parents=True, exist_ok=True)
    env = env | {
        "FEATURECACHE_CATALOG": f"sqlite:///{ls_catalog_path(entries)}",
        "FEATURECACHE_STORE": str(store),
        "FEATURECACHE_STATE_DIR": str(WORK / "ls-state"),
    }
    out: dict[str, Any] = {"entries": entries, "timeout_s": timeout}
    for name, extra in (("ls_s", []), ("ls_json_s", ["--json"])):
        times = [_wall([*argv, "ls", *extra], env, timeout)]
        if times[0] != float("inf"):
            times += [_wall([*argv, "ls", *extra], env, timeout) for _ in range(repeat - 1)]
        median = statistics.median(times)
        out[name] = None if median == float("inf") else median
        out[name.replace("_s", "_timed_out")] = median == float("inf")
    return out


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["fingerprint", "catalog", "build-catalog"])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--state", default=str(WORK / "fp-state"))
    args = parser.parse_args(argv)
    os.chdir(HERE)
    if args.what == "fingerprint":
        emit(child_fingerprint(args.rows, Path(args.state)))
    elif args.what == "catalog":
        emit(child_catalog(args.entries))
    else:
        emit(child_build_catalog(args.entries))


if __name__ == "__main__":
    main(sys.argv[1:])
