"""The benchmark workload: a deterministic, mixed-type input frame written once as Parquet.

``numpy.random.default_rng(SEED)`` drives every column, so the same row count always gives the
same data; the file lives in ``benchmarks/work/`` (gitignored) and is reused while its sidecar
says it was made by this generator version with this row count.

12 columns, about 100 bytes a row in memory (10 M rows ≈ 1 GB): ints of four widths, floats,
a bool, a sorted timestamp, short categorical strings and a longer free-text string, with nulls
in four columns. ``event_id`` and ``ts`` grow with the row number, so a filter on either selects
a contiguous run of Parquet row groups (the lazy-hit scenario relies on it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

SEED = 20240611
GENERATOR_VERSION = 2
WORK_DIR = Path(__file__).resolve().parent / "work"

COUNTRIES = [f"{a}{b}" for a in "ABCDEFGH" for b in "ABCDEFGH"]  # 64 two-letter codes
CHANNELS = ["organic", "paid_search", "social", "email", "referral", "display", "affiliate"]
WORDS = [
    "fast",
    "slow",
    "delivery",
    "broken",
    "great",
    "refund",
    "late",
    "early",
    "price",
    "quality",
    "size",
    "colour",
    "fits",
    "small",
    "large",
    "return",
    "again",
    "never",
    "always",
    "support",
    "friendly",
    "package",
    "damaged",
    "perfect",
    "cheap",
    "expensive",
    "recommend",
    "disappointed",
    "happy",
    "gift",
    "battery",
    "screen",
    "sound",
]


def input_path(rows: int, work_dir: Path = WORK_DIR) -> Path:
    return work_dir / f"input-{rows}.parquet"


def _comment_pool(rng: np.random.Generator, size: int) -> list[str]:
    """Distinct-ish free-text comments of 3 to 9 words (about 35 characters on average)."""
    lengths = rng.integers(3, 10, size)
    picks = rng.integers(0, len(WORDS), int(lengths.sum()))
    pool: list[str] = []
    start = 0
    for n in lengths.tolist():
        pool.append(" ".join(WORDS[i] for i in picks[start : start + n].tolist()))
        start += n
    return pool


def _with_nulls(series: pl.Series, rng: np.random.Generator, share: float) -> pl.Series:
    mask = pl.Series(rng.random(len(series)) < share)
    return pl.select(pl.when(mask).then(None).otherwise(series).alias(series.name)).to_series()


def generate(rows: int, seed: int = SEED) -> pl.DataFrame:
    """The input frame for ``rows`` rows; identical for identical arguments."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00", "us")
    # Sorted timestamps: ~3 s apart on average, so 10 M rows span about a year.
    gaps = rng.integers(0, 6_000_000, rows, dtype=np.int64)
    ts = start + np.cumsum(gaps).astype("timedelta64[us]")
    pool = pl.Series("comment", _comment_pool(rng, 50_000))
    columns = [
        pl.Series("event_id", np.arange(rows, dtype=np.int64)),
        pl.Series("user_id", rng.integers(0, max(rows // 20, 1), rows, dtype=np.int64)),
        pl.Series("item_id", rng.integers(0, 200_000, rows, dtype=np.int32)),
        pl.Series("qty", rng.integers(1, 50, rows, dtype=np.int16)),
        pl.Series("status", rng.integers(0, 5, rows, dtype=np.int8)),
        _with_nulls(pl.Series("price", rng.lognormal(3.0, 1.0, rows)), rng, 0.05),
        pl.Series("score", rng.standard_normal(rows).astype(np.float32)),
        pl.Series("is_mobile", rng.random(rows) < 0.6),
        pl.Series("ts", ts),
        pl.Series("country", COUNTRIES).gather(rng.integers(0, len(COUNTRIES), rows)),
        _with_nulls(
            pl.Series("channel", CHANNELS).gather(rng.integers(0, len(CHANNELS), rows)), rng, 0.02
        ),
        _with_nulls(pool.gather(rng.integers(0, len(pool), rows)), rng, 0.10),
    ]
    return pl.DataFrame(columns)


def ensure_input(rows: int, work_dir: Path = WORK_DIR) -> Path:
    """Write the input Parquet for ``rows`` unless an identical one is already there."""
    path = input_path(rows, work_dir)
    sidecar = path.with_suffix(".json")
    stamp = {"rows": rows, "seed": SEED, "generator_version": GENERATOR_VERSION}
    if path.is_file() and sidecar.is_file():
        try:
            if json.loads(sidecar.read_text()) == stamp:
                return path
        except ValueError:
            pass
    work_dir.mkdir(parents=True, exist_ok=True)
    frame = generate(rows)
    tmp = path.with_suffix(".tmp")
    frame.write_parquet(tmp, compression="zstd", row_group_size=1_000_000, statistics=True)
    tmp.replace(path)
    sidecar.write_text(json.dumps(stamp))
    return path


if __name__ == "__main__":
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(ensure_input(count))
