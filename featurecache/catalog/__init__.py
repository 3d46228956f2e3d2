"""The catalog: a SQL database that maps keys to artifacts and records lineage, usage, MLflow
runs and single-flight leases. ``Catalog`` (the façade in ``facade.py``) is the only way the
rest of featurecache talks to it; ``records`` holds the values that cross the boundary.

``Catalog`` is imported on first use, so importing ``featurecache.catalog.records`` does not
import SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from featurecache.catalog.facade import Catalog

__all__ = ["Catalog"]


def __getattr__(name: str) -> Any:
    if name == "Catalog":
        from featurecache.catalog.facade import Catalog

        return Catalog
    raise AttributeError(f"module 'featurecache.catalog' has no attribute {name!r}")
