"""Two cached features: per-order cleaning, then per-user aggregates of the cleaned orders.

Training chains them through the cache (``user_features(clean_orders(orders))``); the service
chains the undecorated functions (``feature.func``) on the rows of one request, so serving never
touches the cache, and checks at start-up that this code is the code the model was trained
with. Each feature takes the previous one's output as an argument (rather than calling it in
its body) so that the online path can compose the plain functions.
"""

from __future__ import annotations

import polars as pl

from featurecache import cached_feature
from shop_features.helpers import clean_amount


@cached_feature
def clean_orders(orders: pl.DataFrame) -> pl.DataFrame:
    return orders.with_columns(clean_amount(pl.col("amount")).alias("amount"))


@cached_feature
def user_features(orders: pl.DataFrame) -> pl.DataFrame:
    return (
        orders.group_by("user_id", maintain_order=True)
        .agg(
            pl.len().alias("orders"),
            pl.col("amount").sum().alias("spent"),
            pl.col("amount").max().alias("largest"),
        )
        .sort("user_id")
    )


def features_of(orders: pl.DataFrame) -> pl.DataFrame:
    """The training path: both features through the cache."""
    return user_features(clean_orders(orders))


def features_online(orders: pl.DataFrame) -> pl.DataFrame:
    """The serving path: the same code, undecorated, on a request's rows."""
    return user_features.func(clean_orders.func(orders))


FEATURES = [clean_orders, user_features]
COLUMNS = ["orders", "spent", "largest"]
