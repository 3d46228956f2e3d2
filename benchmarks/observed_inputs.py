"""Cost of tracking the files a feature's body reads (path literals and observed inputs).

Measures, in one process, on files in a temp folder:

* re-validation of an entry's observed inputs on a lookup (``first_change``): microseconds per
  unchanged file (one stat + one stat-cache lookup each);
* path literals (``literal_observations``): recording one naming an existing file at a miss,
  and re-validating one that named nothing on a hit (one failed ``lstat``);
* a miss's observation: the audit hook and reader wrappers while the body runs, plus
  ``settle`` (filtering and fingerprinting what was read), against the bare body; once with
  files never seen before (their content is hashed once) and once with the stat cache warm;
* the audit hook's cost on ``open()`` outside any observation (every thread, every process
  that ever had a miss);
* the end-to-end hit of a cached feature that read N files, next to a hit of the same result
  with nothing to re-validate.

Run: ``python benchmarks/observed_inputs.py [--files N] [--size-mb M] [--repeat K]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
from timing import median_seconds


def _make_files(folder: Path, n: int, size_mb: float) -> list[Path]:
    rows = max(1, int(size_mb * 1_000_000 / 16))
    paths = []
    for i in range(n):
        path = folder / f"part{i}.parquet" if i % 2 else folder / f"part{i}.csv"
        frame = pl.DataFrame({"a": range(rows), "b": [float(i)] * rows})
        if path.suffix == ".csv":
            frame.write_csv(path)
        else:
            frame.write_parquet(path)
        paths.append(path)
    return paths


def _body(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        if path.suffix == ".csv":
            total += len(pd.read_csv(path))
        else:
            total += pl.read_parquet(path).height
    return total


def run(n_files: int, size_mb: float, repeat: int) -> dict[str, Any]:
    from featurecache.fingerprint import observed
    from featurecache.fingerprint.files import FileFingerprinter
    from featurecache.fingerprint.literals import literal_observations
    from featurecache.fingerprint.observed_inputs import Exclusions, first_change, settle

    results: dict[str, Any] = {"files": n_files, "size_mb": size_mb}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "data"
        data.mkdir()
        paths = _make_files(data, n_files, size_mb)
        probe = root / "probe.txt"
        probe.write_text("x")

        # open() before any observation was ever installed: the baseline for the hook.
        def opens() -> None:
            for _ in range(1000):
                with open(probe, "rb"):
                    pass

        results["open_us_without_hook"] = median_seconds(opens, repeat) / 1000 * 1e6

        exclude = Exclusions.for_cache([root / "state"])
        os.chdir(root)
        with FileFingerprinter(root / "state", project_root=root) as files:
            _body(paths)  # page cache and imports warm for every variant

            def observed_miss(fresh: bool) -> float:
                if fresh:  # a new fingerprinter state: every file is hashed once
                    fp = FileFingerprinter(
                        root / f"state-{time.perf_counter_ns()}", project_root=root
                    )
                else:
                    fp = files
                t0 = time.perf_counter()
                with observed.observing() as reads:
                    _body(paths)
                items, _ = settle(reads, files=fp, exclude=exclude, covered=[])
                elapsed = time.perf_counter() - t0
                assert len(items) == n_files, items
                return elapsed

            observed_miss(False)  # the shared stat cache has seen every file
            # Interleaved, so that a noisy neighbour slows every variant alike.
            samples: dict[str, list[float]] = {"bare": [], "cold": [], "warm": []}
            for _ in range(repeat):
                samples["bare"].append(median_seconds(lambda: _body(paths), 1))
                samples["cold"].append(observed_miss(True))
                samples["warm"].append(observed_miss(False))
            bare, cold, warm = (statistics.median(samples[k]) for k in ("bare", "cold", "warm"))
            results["body_bare_s"] = bare
            results["observed_miss_cold_s"] = cold
            results["observed_miss_warm_s"] = warm
            results["miss_overhead_cold_pct"] = (cold - bare) / bare * 100
            results["miss_overhead_warm_pct"] = (warm - bare) / bare * 100

            with observed.observing() as reads:
                _body(paths)
            items, _ = settle(reads, files=files, exclude=exclude, covered=[])
            recorded = [item.to_json() for item in items]
            # The stat cache trusts an entry only once the file's change is older than its
            # racy window (2 s): files written just now are re-hashed until then.
            age = time.time() - max(p.stat().st_mtime for p in paths)
            if age < 2.5:
                time.sleep(2.5 - age)
            first_change(recorded, files)  # stores the hashes as trusted
            loops = 200
            check = median_seconds(
                lambda: [first_change(recorded, files) for _ in range(loops)], repeat
            )
            results["revalidate_us_per_file"] = check / loops / n_files * 1e6
            results["revalidate_ms_per_entry"] = check / loops * 1e3
            results["revalidate_pct_of_1s_feature"] = check / loops / 1.0 * 100

            existing = [str(p.relative_to(root)) for p in paths]
            missing = [f"data/none{i}.csv" for i in range(n_files)]
            literal_observations(existing, files, exclude)
            lit = median_seconds(
                lambda: [literal_observations(existing, files, exclude) for _ in range(loops)],
                repeat,
            )
            absent = [item.to_json() for item in literal_observations(missing, files, exclude)]
            nolit = median_seconds(
                lambda: [first_change(absent, files) for _ in range(loops)], repeat
            )
            results["literal_us_per_existing_file"] = lit / loops / n_files * 1e6
            results["literal_us_per_missing_literal"] = nolit / loops / n_files * 1e6

        results["open_us_with_hook_outside_observation"] = (
            median_seconds(opens, repeat) / 1000 * 1e6
        )
        results.update(_end_to_end(root, paths, repeat))
    return results


def _end_to_end(root: Path, paths: list[Path], repeat: int) -> dict[str, float]:
    """A hit of a feature that read the files (re-validated) against a hit of the same
    result with nothing to re-validate."""
    from featurecache import FeatureCache

    fc = FeatureCache(catalog=f"sqlite:///{root / 'catalog.db'}", store=root / "artifacts")
    try:

        @fc.cached_feature(name="reads_files")
        def reads_files() -> pl.DataFrame:
            return pl.DataFrame({"n": [_body(paths)]})

        total = _body(paths)

        @fc.cached_feature(name="reads_nothing")
        def reads_nothing() -> pl.DataFrame:
            # The same closure (``paths``) as reads_files: equal code-identity costs.
            return pl.DataFrame({"n": [total + 0 * len(paths)]})

        reads_files()
        reads_nothing()
        fc.engine.flush()
        loops = 50
        with_files = median_seconds(lambda: [reads_files() for _ in range(loops)], repeat) / loops
        without = median_seconds(lambda: [reads_nothing() for _ in range(loops)], repeat) / loops
        fc.engine.flush()
    finally:
        fc.close()
    return {
        "hit_ms_with_observed_files": with_files * 1e3,
        "hit_ms_without": without * 1e3,
        "hit_extra_us_per_file": (with_files - without) / len(paths) * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--size-mb", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    results = run(args.files, args.size_mb, args.repeat)
    width = max(len(k) for k in results)
    for key, value in results.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
