"""A small home-credit style dataset: applications, bureau records and labels as CSV files,
the way the Kaggle credit-risk notebooks lay them out (``data/*.csv``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def generate(folder: Path, applicants: int = 20_000, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ids = np.arange(100_000, 100_000 + applicants)
    pd.DataFrame(
        {
            "SK_ID_CURR": ids,
            "DAYS_BIRTH": -rng.integers(20 * 365, 70 * 365, applicants),
            "AMT_INCOME_TOTAL": rng.lognormal(11, 0.5, applicants).round(2),
            "AMT_CREDIT": rng.lognormal(12.5, 0.6, applicants).round(2),
            "NAME_CONTRACT_TYPE": rng.choice(["Cash loans", "Revolving loans"], applicants),
        }
    ).to_csv(folder / "application_train.csv", index=False)
    records = applicants * 5
    pd.DataFrame(
        {
            "SK_ID_CURR": rng.choice(ids, records),
            "CREDIT_ACTIVE": rng.choice(["Active", "Closed"], records),
            "AMT_CREDIT_SUM": rng.lognormal(11, 1.0, records).round(2),
            "DAYS_CREDIT": -rng.integers(1, 3000, records),
        }
    ).to_csv(folder / "bureau.csv", index=False)
    risk = rng.random(applicants)
    pd.DataFrame({"SK_ID_CURR": ids, "TARGET": (risk < 0.08).astype("int64")}).to_csv(
        folder / "labels.csv", index=False
    )
