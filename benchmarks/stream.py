"""Streaming an artifact to a training loop: ``featurecache.open(ref).batches(B)`` against
reading the whole artifact and slicing it, against the disk's read speed, and (when torch is
installed) through a ``DataLoader`` with 2 workers.

    python benchmarks/stream.py --rows 2000000 --rounds 3      # standalone, prints the table
    (make bench runs it too, at the benchmark's row count)

Every measurement runs in a fresh process (``python stream.py measure …``), one round of all
modes after another, so the ratios compare runs made under the same load. The artifact is a
numeric training table (16 float32 features, an int64 id and an int8 label; 73 bytes a row)
written by featurecache with ``rows // 10``-row row groups. Modes:

* ``disk``: the artifact file read in 8 MiB blocks with O_DIRECT (past the page cache: what the
  disk gives), or, where O_DIRECT is refused, read normally (``disk_cached``).
* ``cached``: the same read through the page cache (warm: the file was just read).
* ``reader``: ``featurecache.open(id)`` (the whole-file hash included, timed apart as
  ``open_s``; imports are done before the clock starts, as for ``whole``) and every batch of
  ``batches(B)``, each touched (one column summed).
* ``whole``: ``pyarrow.parquet.read_table`` of the file, then ``table.slice(i, B)`` for every
  batch, each touched the same way.
* ``torch``: ``DataLoader(open(id).to_torch(B), batch_size=None, num_workers=2)``, one epoch.

Peak memory is what the measured block added to the process's peak RSS (``probe.PeakMemory``)
and the Arrow pool's peak (``pyarrow.default_memory_pool().max_memory()``); for ``torch`` the
largest worker's peak RSS (``RUSAGE_CHILDREN``), which includes the torch and featurecache
pages it shares with its parent.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from probe import RESULT_MARK, PeakMemory, emit  # noqa: E402

BLOCK = 8 * 1024 * 1024
FEATURES = 16
MODES = ("disk", "cached", "reader", "whole", "torch")


# -- children -------------------------------------------------------------------------------


def _cache(folder: Path) -> Any:
    from featurecache import FeatureCache

    return FeatureCache(
        catalog=f"sqlite:///{folder / 'catalog.db'}",
        store=folder / "artifacts",
        state_dir=folder / "state",
        background_publish=False,
    )


def prepare(folder: Path, rows: int) -> dict[str, Any]:
    import numpy as np
    import polars as pl

    os.environ["FEATURECACHE_ROW_GROUP_ROWS"] = str(max(rows // 10, 1))
    cache = _cache(folder)

    @cache.cached_feature(name="training_table")
    def training_table(rows: int) -> pl.DataFrame:
        rng = np.random.default_rng(20261207)
        columns: dict[str, Any] = {"row": np.arange(rows, dtype=np.int64)}
        for i in range(FEATURES):
            columns[f"f{i}"] = rng.random(rows, dtype=np.float32)
        columns["label"] = rng.integers(0, 2, rows, dtype=np.int8)
        return pl.DataFrame(columns)

    frame = training_table(rows)
    artifact_id = cache.engine.catalog.recent_entries("training_table", 1)[0].artifact_id
    path = cache.engine.store.local_path(artifact_id)
    cache.close()
    assert path is not None
    return {
        "artifact_id": artifact_id,
        "file": str(path),
        "file_bytes": path.stat().st_size,
        "arrow_bytes": int(frame.estimated_size()),
        "rows": rows,
    }


def _read_file(path: str, direct: bool) -> int:
    flags = os.O_RDONLY | (os.O_DIRECT if direct else 0)
    fd = os.open(path, flags)
    buffer = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT needs
    total = 0
    try:
        while n := os.readv(fd, [buffer]):
            total += n
    finally:
        os.close(fd)
        buffer.close()
    return total


def measure(mode: str, folder: Path, artifact_id: str, file: str, batch: int) -> dict[str, Any]:
    import pyarrow as pa

    memory = PeakMemory()
    result: dict[str, Any] = {"mode": mode}
    pool = pa.default_memory_pool()
    if mode in ("disk", "cached"):
        direct = mode == "disk"
        memory.start()
        started = time.perf_counter()
        try:
            read = _read_file(file, direct)
        except OSError as exc:  # O_DIRECT refused by this filesystem
            result["direct_refused"] = str(exc)
            read = _read_file(file, False)
        result["seconds"] = time.perf_counter() - started
        result["bytes"] = read
    elif mode == "reader":
        import pyarrow.dataset  # noqa: F401 - imports outside the clock, as for ``whole``

        import featurecache
        import featurecache.catalog.queries  # SQLAlchemy: a once-per-process import of ~0.3 s
        import featurecache.stream.reader

        cache = _cache(folder)
        cache.engine  # noqa: B018 - open the catalog before the clock starts
        memory.start()
        started = time.perf_counter()
        reader = featurecache.open(artifact_id, cache=cache)
        result["open_s"] = time.perf_counter() - started
        batches, first = _drain(reader.batches(batch), started)
        result |= {"seconds": time.perf_counter() - started, "batches": batches, "first_s": first}
    elif mode == "whole":
        import pyarrow.parquet as pq

        memory.start()
        started = time.perf_counter()
        table = pq.read_table(file)
        slices = (table.slice(i, batch) for i in range(0, table.num_rows, batch))
        batches, first = _drain(slices, started)
        result |= {"seconds": time.perf_counter() - started, "batches": batches, "first_s": first}
    elif mode == "torch":
        import resource

        import featurecache

        try:
            from torch.utils.data import DataLoader
        except ImportError:
            return {"mode": mode, "skipped": "torch is not installed (make test-torch installs it)"}
        cache = _cache(folder)
        reader = featurecache.open(artifact_id, cache=cache)
        memory.start()
        started = time.perf_counter()
        loader = DataLoader(reader.to_torch(batch), batch_size=None, num_workers=2)
        batches, first = 0, 0.0
        for item in loader:
            if not batches:
                first = time.perf_counter() - started
            batches += 1
            float(item["f0"].sum())
        result |= {"seconds": time.perf_counter() - started, "batches": batches, "first_s": first}
        del loader
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        result["worker_peak_rss_bytes"] = children
    else:
        raise SystemExit(f"unknown mode {mode}")
    result["peak_rss_delta_bytes"] = memory.stop()
    result["arrow_pool_peak_bytes"] = pool.max_memory()
    return result


def _drain(batches: Any, started: float) -> tuple[int, float]:
    count, first = 0, 0.0
    for item in batches:
        if not count:
            first = time.perf_counter() - started
        count += 1
        item.column("f0").to_numpy().sum()  # touch the data, as a training step would
    return count, first


# -- runner ---------------------------------------------------------------------------------


def _child(python: str, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [python, str(HERE / "stream.py"), *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return dict(json.loads(line[len(RESULT_MARK) :]))
    tail = " | ".join(done.stderr.strip().splitlines()[-4:])
    return {"error": f"exit {done.returncode}: {tail}"}


def run(
    python: str, env: dict[str, str], folder: Path, rows: int, rounds: int, batch: int, log: Any
) -> dict[str, Any]:
    """Prepare the artifact once, then ``rounds`` rounds of every mode, each a fresh process."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    log(f"stream: writing a {rows:,}-row training table …")
    made = _child(python, ["prepare", "--dir", str(folder), "--rows", str(rows)], env)
    if "error" in made:
        return made
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for round_ in range(rounds):
        log(f"stream: round {round_ + 1}/{rounds} …")
        for mode in MODES:
            argv = ["measure", mode, "--dir", str(folder), "--batch", str(batch)]
            argv += ["--artifact", made["artifact_id"], "--file", made["file"]]
            runs[mode].append(_child(python, argv, env))
    _chmod_tree(folder)
    shutil.rmtree(folder, ignore_errors=True)
    return {"artifact": made, "batch": batch, "runs": runs, "summary": summarize(made, runs)}


def _chmod_tree(folder: Path) -> None:
    for path in folder.rglob("*"):  # artifacts are sealed read-only
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)


def summarize(made: dict[str, Any], runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode, got in runs.items():
        ok = [r for r in got if "seconds" in r]
        if not ok:
            out[mode] = {"error": (got[0].get("error") or got[0].get("skipped")) if got else "-"}
            continue
        seconds = statistics.median(r["seconds"] for r in ok)
        row: dict[str, Any] = {
            "seconds": seconds,
            "file_mb_per_s": made["file_bytes"] / seconds / 1e6,
            "peak_rss_mb": max(r["peak_rss_delta_bytes"] for r in ok) / 1e6,
            "arrow_pool_peak_mb": max(r["arrow_pool_peak_bytes"] for r in ok) / 1e6,
        }
        if "batches" in ok[0]:
            row["batches_per_s"] = ok[0]["batches"] / seconds
            row["first_batch_s"] = statistics.median(r["first_s"] for r in ok)
        if "open_s" in ok[0]:
            row["open_s"] = statistics.median(r["open_s"] for r in ok)
            row["stream_s"] = statistics.median(r["seconds"] - r["open_s"] for r in ok)
        if "worker_peak_rss_bytes" in ok[0]:
            row["worker_peak_rss_mb"] = max(r["worker_peak_rss_bytes"] for r in ok) / 1e6
        if any("direct_refused" in r for r in ok):
            row["note"] = "O_DIRECT refused: read through the page cache"
        out[mode] = row
    return out


def table(result: dict[str, Any]) -> list[str]:
    """The console / Markdown lines of a ``run`` result."""
    made, summary = result["artifact"], result["summary"]
    lines = [
        f"streaming a {made['rows']:,}-row artifact ({made['file_bytes'] / 1e6:.0f} MB file, "
        f"{made['arrow_bytes'] / 1e6:.0f} MB in memory) in batches of {result['batch']:,} rows",
        "",
        "| mode | s | file MB/s | batches/s | first batch s | peak RSS Δ MB | Arrow pool peak MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, row in summary.items():
        if "error" in row:
            lines.append(f"| {mode} | {row['error']} | | | | | |")
            continue
        lines.append(
            f"| {mode} | {row['seconds']:.3f} | {row['file_mb_per_s']:,.0f} | "
            f"{row.get('batches_per_s', 0):,.1f} | {row.get('first_batch_s', 0):.3f} | "
            f"{row['peak_rss_mb']:,.0f} | {row['arrow_pool_peak_mb']:,.0f} |"
        )
    reader, whole = summary.get("reader", {}), summary.get("whole", {})
    disk, cached = summary.get("disk", {}), summary.get("cached", {})
    if "seconds" in reader and "seconds" in whole:
        lines.append("")
        lines.append(
            f"reader / whole-and-slice time: {reader['seconds'] / whole['seconds']:.2f}× "
            f"(first batch {reader['first_batch_s']:.3f} s vs {whole['first_batch_s']:.3f} s; "
            f"open incl. verification {reader.get('open_s', 0):.3f} s, then "
            f"{reader.get('stream_s', 0):.3f} s of batches); peak RSS "
            f"{reader['peak_rss_mb']:,.0f} MB vs {whole['peak_rss_mb']:,.0f} MB"
        )
        for name, ref in (("disk (O_DIRECT)", disk), ("page cache", cached)):
            if "seconds" in ref:
                lines.append(
                    f"reader file MB/s / {name} MB/s: "
                    f"{reader['file_mb_per_s'] / ref['file_mb_per_s']:.2f}"
                )
    torch_row = summary.get("torch", {})
    if "worker_peak_rss_mb" in torch_row:
        lines.append(
            f"DataLoader (2 workers): {torch_row['batches_per_s']:,.1f} batches/s, "
            f"{torch_row['file_mb_per_s']:,.0f} MB/s of file; largest worker peak RSS "
            f"{torch_row['worker_peak_rss_mb']:,.0f} MB (incl. torch)"
        )
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    prep = sub.add_parser("prepare")
    prep.add_argument("--dir", type=Path, required=True)
    prep.add_argument("--rows", type=int, required=True)
    meas = sub.add_parser("measure")
    meas.add_argument("mode", choices=MODES)
    meas.add_argument("--dir", type=Path, required=True)
    meas.add_argument("--artifact", required=True)
    meas.add_argument("--file", required=True)
    meas.add_argument("--batch", type=int, required=True)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=65_536)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        emit(prepare(args.dir, args.rows))
        return 0
    if args.command == "measure":
        emit(measure(args.mode, args.dir, args.artifact, args.file, args.batch))
        return 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURECACHE_")}
    started = time.perf_counter()

    def log(text: str) -> None:
        print(f"{time.perf_counter() - started:7.1f}s  {text}", file=sys.stderr, flush=True)

    result = run(
        sys.executable, env, HERE / "work" / "stream", args.rows, args.rounds, args.batch, log
    )
    if "error" in result:
        print(result["error"], file=sys.stderr)
        return 1
    print("\n".join(table(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
