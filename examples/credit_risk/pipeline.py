"""Credit-risk features written the way public notebooks write them: data locations as plain
``str`` (a folder, an f-string path), a file read by a hard-coded path inside the body, a
feature that returns a ``pandas.Series`` and a split that returns a
``(X_train, X_test, y_train, y_test)`` tuple. Only the decorators are featurecache."""

from __future__ import annotations

import numpy as np
import pandas as pd

from featurecache import cached_feature


@cached_feature
def applications(folder: str) -> pd.DataFrame:
    return pd.read_csv(f"{folder}/application_train.csv")


@cached_feature
def bureau_features(folder: str) -> pd.DataFrame:
    bureau = pd.read_csv(f"{folder}/bureau.csv")
    active = bureau[bureau["CREDIT_ACTIVE"] == "Active"]
    return (
        active.groupby("SK_ID_CURR")
        .agg(
            BUREAU_ACTIVE_COUNT=("AMT_CREDIT_SUM", "size"),
            BUREAU_ACTIVE_SUM=("AMT_CREDIT_SUM", "sum"),
            BUREAU_LAST_DAYS=("DAYS_CREDIT", "max"),
        )
        .reset_index()
    )


@cached_feature
def age_years(app: pd.DataFrame) -> pd.Series:
    return (-app["DAYS_BIRTH"] / 365.25).round(1).rename("AGE_YEARS")


@cached_feature
def labels() -> pd.Series:
    # The notebook habit: a hard-coded path read inside the body.
    return pd.read_csv("data/labels.csv").set_index("SK_ID_CURR")["TARGET"]


@cached_feature
def model_table(app: pd.DataFrame, bureau: pd.DataFrame, age: pd.Series) -> pd.DataFrame:
    table = app.merge(bureau, on="SK_ID_CURR", how="left").fillna({"BUREAU_ACTIVE_COUNT": 0})
    table["AGE_YEARS"] = age.to_numpy()
    table["CREDIT_INCOME_RATIO"] = table["AMT_CREDIT"] / table["AMT_INCOME_TOTAL"]
    return table.set_index("SK_ID_CURR")


@cached_feature
def split(
    table: pd.DataFrame, target: pd.Series, test_size: float = 0.25, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    test = rng.random(len(table)) < test_size
    numeric = table.select_dtypes("number")
    y = target.loc[table.index]
    return numeric[~test], numeric[test], y[~test], y[test]
