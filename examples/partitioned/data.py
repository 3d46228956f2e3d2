"""A clickstream in daily hive partitions: ``data/clicks/day=YYYY-MM-DD/clicks.parquet``.

    python data.py --days 365 --events 20000     # a year, 7.3 M events
    python data.py --days 366 --events 20000     # one more day (the others are kept)

Deterministic: day ``i`` is generated from seed ``i``, so a day's file is the same bytes
however often it is generated, and an existing day is never rewritten.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
CLICKS = HERE / "data" / "clicks"
FIRST_DAY = date(2025, 1, 1)
USERS = 5_000
# The day each user stops coming back (some never do within the data): the churn to predict.
LAST_DAY = np.random.default_rng(2025).integers(20, 600, USERS)


def day_name(i: int) -> str:
    return (FIRST_DAY + timedelta(days=i)).isoformat()


def generate_day(i: int, events: int) -> pl.DataFrame:
    rng = np.random.default_rng(i)
    start = datetime.combine(FIRST_DAY + timedelta(days=i), datetime.min.time())
    # Users are more or less active, and absent after their last day.
    activity = rng.power(0.7, USERS) * (i <= LAST_DAY)
    users = rng.choice(USERS, size=events, p=activity / activity.sum())
    seconds = np.sort(rng.integers(0, 86_400, size=events))
    return pl.DataFrame(
        {
            "user_id": users.astype("int32"),
            "ts": [start + timedelta(seconds=int(s)) for s in seconds],
            "page": rng.integers(0, 50, size=events).astype("int16"),
        }
    )


def generate(days: int, events: int, root: Path = CLICKS) -> list[Path]:
    """Days ``0 .. days-1`` under ``root``; only the missing ones are written. Returns the
    new folders."""
    written = []
    for i in range(days):
        folder = root / f"day={day_name(i)}"
        if (folder / "clicks.parquet").exists():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".clicks.parquet.tmp"
        generate_day(i, events).write_parquet(tmp)
        tmp.rename(folder / "clicks.parquet")
        written.append(folder)
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    print(f"{len(generate(args.days, args.events))} new day(s) in {CLICKS}")
