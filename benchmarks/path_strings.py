"""What treating path-like ``str`` arguments as paths costs (issue 12).

    .venv/bin/python benchmarks/path_strings.py [--files 100000] [--root /tmp/...]

Prints:
* detection cost per ``str`` argument that names nothing (the hot path: every str argument
  pays it), next to the same argument fingerprinted as a plain value (``values=[...]``);
* the fingerprint of a ``str`` naming one unchanged file (stat cache);
* revalidation of an unchanged folder of ``--files`` files through the stat cache, as a
  ``str`` folder and as a glob, in a fresh ``FileFingerprinter`` (as a new process would):
  total and per file;
* the share of a 1 s feature taken by the checks of a call with 10 str arguments.

The folder is generated once under ``--root`` (default /tmp/featurecache-bench-path-strings)
and reused by later runs.
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from pathlib import Path

from timing import per_call_us

from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.inputs import fingerprint_input
from featurecache.fingerprint.pathstr import fingerprint_path_str

HOUR_NS = 3600 * 10**9


def trusted_clock() -> int:
    """The stat cache trusts files changed at least 2 s before they were hashed; the folder
    was just generated, so hash as if an hour later (what a real second run sees)."""
    return time.time_ns() + HOUR_NS


def generate(folder: Path, count: int) -> None:
    marker = folder.parent / f".{folder.name}-complete-{count}"  # outside the measured folder
    if marker.exists():
        return
    per_dir = 1000
    for i in range(count):
        sub = folder / f"part-{i // per_dir:04d}"
        if i % per_dir == 0:
            sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i:07d}.csv").write_bytes(f"id,value\n{i},{i * 7}\n".encode())
    marker.write_text("")


def detection(files: FileFingerprinter) -> None:
    print("detection cost per str argument (median µs per call)")
    print(f"  {'argument':<34} {'detection':>10} {'path-aware':>11} {'as value':>10} {'extra':>8}")
    texts = [
        "user_id",
        "2024-01-01",
        "left",
        "data/not/there.csv",
        "https://example.com/data.csv",
        "x" * 5000,  # rejected without a system call
        "SELECT * FROM clicks",  # a glob: scans the working directory
    ]
    for text in texts:
        aware, plain, alone = (
            per_call_us(functools.partial(fingerprint_input, "a", text, files=files), calls=20000),
            per_call_us(
                functools.partial(fingerprint_input, "a", text, files=files, str_paths=False),
                calls=20000,
            ),
            per_call_us(functools.partial(fingerprint_path_str, "a", text, files), calls=20000),
        )
        shown = text if len(text) <= 32 else text[:20] + f"… ({len(text)} chars)"
        print(f"  {shown!r:<34} {alone:>10.2f} {aware:>11.2f} {plain:>10.2f} {aware - plain:>8.2f}")
    columns = ["user_id", "ts", "amount", "country", "device", "age", "gap", "label"]
    aware = per_call_us(lambda: fingerprint_input("a", columns, files=files), calls=5000)
    plain = per_call_us(
        lambda: fingerprint_input("a", columns, files=files, str_paths=False), calls=5000
    )
    label = "list of 8 column names"
    print(f"  {label:<34} {'':>10} {aware:>11.2f} {plain:>10.2f} {aware - plain:>8.2f}")
    ten = per_call_us(
        lambda: [fingerprint_path_str("a", t, files) for t in texts[:4] * 2 + texts[:2]],
        calls=2000,
    )
    print(
        f"  detection for a call with 10 str arguments: {ten:.1f} µs = "
        f"{ten / 1e6 * 100:.4f} % of a 1 s feature"
    )


def one_file(files: FileFingerprinter, root: Path) -> None:
    path = root / "one.csv"
    path.write_bytes(b"id,value\n" + b"1,2\n" * 100_000)
    fingerprint_input("a", str(path), files=files)  # hashed once
    cached = per_call_us(lambda: fingerprint_input("a", str(path), files=files), calls=2000)
    print(f"a str naming one unchanged 400 kB file (stat cache): {cached:.1f} µs per call")


def folder(root: Path, state: Path, count: int) -> None:
    data = root / "data"
    start = time.perf_counter()
    generate(data, count)
    print(f"folder of {count:,} files ready in {time.perf_counter() - start:.1f} s ({data})")
    with FileFingerprinter(state, project_root=root, clock=trusted_clock) as files:
        start = time.perf_counter()
        cold = fingerprint_input("folder", str(data), files=files)
        print(
            f"  first fingerprint (hash every file): {time.perf_counter() - start:.2f} s, "
            f"{files.files_hashed:,} files hashed"
        )
    pattern = str(data / "part-*" / "*.csv")
    with FileFingerprinter(state, project_root=root, clock=trusted_clock) as files:
        fingerprint_input("glob", pattern, files=files)  # the glob's own first pass
    for label, text in (("folder", str(data)), ("glob", pattern)):
        timings = []
        for _ in range(3):
            # A fresh fingerprinter per run: what a new process does (no in-memory state).
            with FileFingerprinter(state, project_root=root, clock=trusted_clock) as files:
                start = time.perf_counter()
                found = fingerprint_input(label, text, files=files)
                timings.append(time.perf_counter() - start)
                assert files.files_hashed == 0, "an unchanged file was re-read"
        best = min(timings)
        print(
            f"  revalidate unchanged {label} ({found.value['files']:,} files): "
            f"{best:.3f} s = {best / count * 1e6:.2f} µs per file (best of 3, 0 files re-read)"
        )
    listing = cold.value.get("listing")
    shown = "omitted (over the cap)" if listing is None else f"{len(listing):,} files"
    print(
        f"  stored with the key: listing {shown}, count {cold.value['files']:,}, "
        f"digest {cold.value['content'][:20]}…"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument(
        "--root", type=Path, default=Path(tempfile.gettempdir()) / "featurecache-bench-path-strings"
    )
    args = parser.parse_args()
    root: Path = args.root
    root.mkdir(parents=True, exist_ok=True)
    os.chdir(root)  # relative strings resolve here, as in a project
    with tempfile.TemporaryDirectory() as state_dir:
        with FileFingerprinter(Path(state_dir), project_root=root, clock=trusted_clock) as files:
            detection(files)
            one_file(files, root)
        folder(root, Path(state_dir) / "folder", args.files)


if __name__ == "__main__":
    main()
