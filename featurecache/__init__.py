"""featurecache: cache feature-engineering functions as immutable, content-addressed Parquet."""

__version__ = "0.1.0"
