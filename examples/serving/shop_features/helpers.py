"""Plain helpers of the features. Editing one changes the code identity of every feature that
uses it: ``featurecache check-serving`` then names it ("helper `clean_amount` changed")."""

from __future__ import annotations

import polars as pl


def clean_amount(amount: pl.Expr) -> pl.Expr:
    """Refunds (negative amounts) count as zero; amounts are in euros."""
    return pl.when(amount < 0).then(0.0).otherwise(amount)
