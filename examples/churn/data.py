"""Deterministic synthetic data for the churn demo: a clickstream and a demographics table.

Users have a latent engagement level and a churn propensity; churners fade out towards the end
of the observation window, so the features the pipeline computes do predict the label.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl

START = datetime(2026, 1, 1)  # noqa: DTZ001 - clickstream times are naive local times
DAYS = 90
PAGES = ["home", "search", "product", "cart", "checkout", "account", "help", "blog"]
ACTIONS = ["view", "click", "scroll", "add_to_cart", "purchase", "logout"]


def generate(
    out_dir: Path, events: int = 5_000_000, users: int = 200_000, seed: int = 7
) -> tuple[Path, Path]:
    """Write ``clicks.parquet`` and ``demographics.parquet`` under ``out_dir`` (idempotent)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    clicks_path = out_dir / "clicks.parquet"
    demo_path = out_dir / "demographics.parquet"
    rng = np.random.default_rng(seed)

    engagement = rng.gamma(shape=2.0, scale=1.0, size=users)
    churn_risk = 1 / (1 + np.exp(-(rng.normal(0, 1.2, users) - 0.4 * np.log1p(engagement))))
    churner = rng.random(users) < churn_risk
    weights = engagement / engagement.sum()
    user = rng.choice(users, size=events, p=weights).astype(np.int32)

    # Events cluster into visits (a few minutes apart); churners' visits are squeezed into
    # the early part of the window.
    visits_per_user = 8
    horizon = np.where(churner, rng.uniform(0.35, 0.8, users), 1.0)
    visit_start = rng.random((users, visits_per_user)) * horizon[:, None] * DAYS * 86_400
    visit = rng.integers(0, visits_per_user, events)
    offset = rng.exponential(240.0, events)
    seconds = (visit_start[user, visit] + offset).astype(np.int64)
    ts = np.datetime64(START, "us") + (seconds * 1_000_000).astype("timedelta64[us]")

    page = rng.choice(len(PAGES), size=events, p=[0.25, 0.2, 0.25, 0.1, 0.05, 0.07, 0.03, 0.05])
    action = rng.choice(len(ACTIONS), size=events, p=[0.5, 0.25, 0.15, 0.06, 0.02, 0.02])
    duration = np.round(rng.lognormal(mean=2.5, sigma=1.0, size=events), 2)
    # Realistic dirt: negative and missing durations, duplicated events, unknown pages.
    duration[rng.random(events) < 0.01] = -1.0
    dup = rng.random(events) < 0.005

    clicks = pl.DataFrame(
        {
            "user_id": user,
            "ts": ts,
            "page": pl.Series(np.array(PAGES)[page]),
            "action": pl.Series(np.array(ACTIONS)[action]),
            "duration_s": duration,
        }
    )
    clicks = pl.concat([clicks, clicks.filter(pl.Series(dup))])
    clicks = clicks.with_columns(
        pl.when(pl.col("duration_s") < 0)
        .then(None)
        .otherwise(pl.col("duration_s"))
        .alias("duration_s")
    )
    clicks.write_parquet(clicks_path, compression="zstd")

    demographics = pl.DataFrame(
        {
            "user_id": np.arange(users, dtype=np.int32),
            "age": rng.integers(18, 80, users).astype(np.int16),
            "country": pl.Series(
                np.array(["DE", "FR", "US", "GB", "IN", "BR"])[rng.integers(0, 6, users)]
            ),
            "plan": pl.Series(
                np.array(["free", "basic", "pro"])[rng.choice(3, users, p=[0.6, 0.3, 0.1])]
            ),
            "signup_days_ago": rng.integers(1, 2000, users).astype(np.int32),
        }
    )
    demographics.write_parquet(demo_path)
    return clicks_path, demo_path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--users", type=int, default=200_000)
    args = parser.parse_args()
    print(generate(args.out, args.events, args.users))
