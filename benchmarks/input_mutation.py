"""Cost of the input-mutation guard (``featurecache.fingerprint.mutation``) per miss, on a
1,000,000-row x 20-column input: the metadata check that is always on, and the content re-check
of ``FEATURECACHE_CHECK_INPUT_MUTATION=1``, next to what the cache key already pays to
fingerprint the same input once.

Run: ``python benchmarks/input_mutation.py [--rows N] [--repeat K]``. ``run(rows)`` returns the
numbers as a dict. The guard's cost is ``watch_inputs`` (before the body) plus ``check`` (after),
with a body that changes nothing, so that what is timed is exactly what every miss adds. The
full check reuses the key's fingerprint of a top-level frame as its "before", so its cost is
one more fingerprint of each frame/array argument, after the body.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from timing import median_seconds

import featurecache
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.inputs import fingerprint_input
from featurecache.fingerprint.mutation import watch_inputs
from featurecache.fingerprint.types import InputFingerprint


@dataclass(frozen=True)
class _Call:
    """What the guard reads of the engine's ``Call``."""

    feature: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    inputs: Mapping[str, InputFingerprint]


def _body(df: Any) -> None:
    """The feature whose argument is watched (only its name and signature are used)."""


def _pandas(rows: int) -> pd.DataFrame:
    """20 columns: 10 float64, 5 int64, 2 strings, a bool, a timestamp, a category."""
    rng = np.random.default_rng(20261207)
    data: dict[str, Any] = {f"f{i}": rng.random(rows) for i in range(10)}
    data |= {f"i{i}": rng.integers(0, 1_000_000, rows) for i in range(5)}
    words = np.array(["alpha", "beta", "gamma", "delta"], dtype=object)
    data |= {f"s{i}": words[rng.integers(0, 4, rows)] for i in range(2)}
    data["flag"] = rng.random(rows) > 0.5
    data["ts"] = pd.date_range("2026-01-01", periods=rows, freq="s")
    data["cat"] = pd.Categorical(words[rng.integers(0, 4, rows)])
    return pd.DataFrame(data)


def _measure(name: str, value: Any, files: FileFingerprinter, repeat: int) -> dict[str, float]:
    feature = featurecache.cached_feature(_body)
    key_fp = fingerprint_input("df", value, files=files)  # what building the key costs
    key_seconds = median_seconds(lambda: fingerprint_input("df", value, files=files), repeat)
    call = _Call(feature, (value,), {}, {"df": key_fp})

    def cheap() -> None:
        assert not watch_inputs(call).check()

    def full() -> None:
        assert not watch_inputs(call, full=True, files=files).check()

    cheap_seconds = median_seconds(cheap, max(repeat, 200))
    full_seconds = median_seconds(full, repeat)
    return {
        "key_fingerprint_s": key_seconds,
        "metadata_check_us": cheap_seconds * 1e6,
        "full_check_s": full_seconds,
    }


def run(rows: int = 1_000_000, repeat: int = 5) -> dict[str, dict[str, float]]:
    pdf = _pandas(rows)
    inputs: dict[str, Any] = {
        "pandas DataFrame": pdf,
        "polars DataFrame": pl.from_pandas(pdf),
        "numpy float64 array": np.random.default_rng(7).random((rows, 20)),
    }
    with tempfile.TemporaryDirectory() as tmp:
        files = FileFingerprinter(Path(tmp) / "state", project_root=Path(tmp))
        try:
            return {name: _measure(name, v, files, repeat) for name, v in inputs.items()}
        finally:
            files.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    results = run(args.rows, args.repeat)
    print(f"input-mutation guard, {args.rows:,} rows (medians of {args.repeat}+ runs)")
    print(f"{'input':<22}{'key fingerprint':>17}{'metadata check':>16}{'full check':>12}")
    for name, r in results.items():
        print(
            f"{name:<22}{r['key_fingerprint_s']:>15.3f} s{r['metadata_check_us']:>13.1f} µs"
            f"{r['full_check_s']:>10.3f} s"
        )


if __name__ == "__main__":
    main()
