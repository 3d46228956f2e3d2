"""Parquet artifact I/O: write and read seconds per codec and return kind, file sizes, and the
peak memory of a hit (read in a fresh subprocess, after hashing the bytes as the cache does).

Run: ``python benchmarks/bench_artifact_io.py [--rows N] [--codecs lz4,zstd]``; ``run(rows)``
returns the results as a dict for the main benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow.parquet as pq
from workload import ensure_input, generate

from featurecache.frames import to_arrow
from featurecache.parquet import read_artifact_file, write_parquet
from featurecache.settings import load_settings, with_overrides

# Runs in a fresh interpreter so its peak RSS is the hit's alone (VmHWM: ru_maxrss would carry
# the forking parent's size across exec). It does what a local-store hit does: stream the file
# through xxh3 (the integrity check), then read the file memory-mapped.
_HIT = """
import json, os, sys, time
from pathlib import Path
import featurecache.frames
from featurecache.parquet import read_artifact_file
from featurecache.hashing import hash_file_bytes
path, kind = Path(sys.argv[1]), sys.argv[2]
def status(key):  # kB fields of /proc/self/status; VmHWM is this process image's peak RSS
    line = next(l for l in open("/proc/self/status") if l.startswith(key + ":"))
    return int(line.split()[1]) * 1024
before = status("VmRSS")
start = time.perf_counter()
hash_file_bytes(str(path))
hashed = time.perf_counter()
frame = read_artifact_file(path, kind)
done = time.perf_counter()
print(json.dumps({"hash_s": hashed - start, "read_s": done - hashed,
                  "peak_bytes": status("VmHWM") - before}))
"""


def _seconds(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(
    rows: int = 10_000_000, codecs: tuple[str, ...] = ("none", "lz4", "snappy", "zstd")
) -> dict[str, Any]:
    polars_frame = generate(rows)
    pandas_frame = pq.read_table(ensure_input(rows)).to_pandas()
    outputs = {"polars": polars_frame, "pandas": pandas_frame}
    base = load_settings(environ={})
    results: dict[str, Any] = {"rows": rows, "runs": []}
    with tempfile.TemporaryDirectory() as folder:
        for codec in codecs:
            settings = with_overrides(base, compression=codec)
            for kind_name, obj in outputs.items():
                table, kind = to_arrow(obj, "bench")
                path = Path(folder) / f"{codec}-{kind_name}.parquet"
                write_s = _seconds(partial(write_parquet, table, path, settings, kind=kind))
                read = partial(read_artifact_file, path, kind)
                read_s = min(_seconds(read) for _ in range(2))
                hit = subprocess.run(
                    [sys.executable, "-c", _HIT, str(path), kind],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results["runs"].append(
                    {
                        "codec": codec,
                        "kind": kind,
                        "arrow_bytes": table.nbytes,
                        "file_bytes": os.path.getsize(path),
                        "write_s": write_s,
                        "read_s": read_s,
                        "hit": json.loads(hit.stdout),
                    }
                )
                del read
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--codecs", default="none,lz4,snappy,zstd")
    args = parser.parse_args(argv)
    results = run(args.rows, tuple(args.codecs.split(",")))
    print(f"rows={results['rows']:,}  load={os.getloadavg()[0]:.1f}")
    header = f"{'codec':<8}{'kind':<8}{'arrow MB':>10}{'file MB':>9}{'write s':>9}{'read s':>8}"
    print(header + f"{'hit: hash s':>12}{'read s':>8}{'peak MB':>9}")
    for r in results["runs"]:
        hit = r["hit"]
        print(
            f"{r['codec']:<8}{r['kind']:<8}{r['arrow_bytes'] / 1e6:>10.0f}{r['file_bytes'] / 1e6:>9.0f}"
            f"{r['write_s']:>9.2f}{r['read_s']:>8.2f}{hit['hash_s']:>12.2f}{hit['read_s']:>8.2f}"
            f"{hit['peak_bytes'] / 1e6:>9.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
