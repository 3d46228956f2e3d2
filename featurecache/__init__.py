"""featurecache: cache feature-engineering functions as immutable, content-addressed Parquet.

    from featurecache import cached_feature

    @cached_feature
    def sessions(clicks: pl.DataFrame, gap_minutes: int = 30) -> pl.DataFrame: ...

Importing this package is cheap: polars, pyarrow, SQLAlchemy and every optional dependency
are imported on first use, never here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featurecache.errors import (
    AmbiguousReferenceError,
    ArtifactCorruptError,
    ArtifactNotFoundError,
    CatalogError,
    CatalogVersionError,
    CodeIdentityError,
    CodeIdentityWarning,
    ConfigError,
    DvcError,
    FeatureCacheError,
    InputMutatedWarning,
    InputNotFoundError,
    InvalidArtifactIdError,
    InvalidS3UrlError,
    LeaseLostError,
    MissingDependencyError,
    MlflowUnavailableError,
    ModelUriError,
    NotStreamableError,
    RunRecordIncompleteError,
    ServingFeatureMissingError,
    StoreCapabilityError,
    StoreError,
    TrainServeSkewError,
    UnknownFeatureError,
    UnknownRunError,
    UnsupportedInputError,
    UnsupportedOutputError,
    WaitTimeoutError,
)
from featurecache.feature import (
    Feature,
    FeatureCache,
    FeatureOptions,
    cached_feature,
    default_cache,
)
from featurecache.fingerprint.observed_inputs import ObservedInputWarning
from featurecache.results.annotations import UnsupportedReturnAnnotationError
from featurecache.usage import FeatureTotals, SessionSnapshot, session_stats

if TYPE_CHECKING:
    from featurecache.fingerprint.registry import register_fingerprint
    from featurecache.fingerprint.s3object import S3Path
    from featurecache.integrations.dvc.path import DvcPath
    from featurecache.integrations.mlflow.lineage import lineage, mlflow_dataset
    from featurecache.integrations.mlflow.serving import check_serving
    from featurecache.ops.skew import serving_manifest
    from featurecache.ops.why import why
    from featurecache.stream.reader import ArtifactReader, open_artifact

    # An assignment, not ``import … as open``: type checkers export it without ``__all__``.
    open = open_artifact

__version__ = "0.1.0"

# ``featurecache.open`` (the artifact reader) is public but left out of ``__all__``: a star
# import would otherwise shadow the builtin ``open``.

__all__ = [
    "AmbiguousReferenceError",
    "ArtifactCorruptError",
    "ArtifactNotFoundError",
    "ArtifactReader",
    "CatalogError",
    "CatalogVersionError",
    "CodeIdentityError",
    "CodeIdentityWarning",
    "ConfigError",
    "DvcError",
    "DvcPath",
    "Feature",
    "FeatureCache",
    "FeatureCacheError",
    "FeatureOptions",
    "FeatureTotals",
    "InputMutatedWarning",
    "InputNotFoundError",
    "InvalidArtifactIdError",
    "InvalidS3UrlError",
    "LeaseLostError",
    "MissingDependencyError",
    "MlflowUnavailableError",
    "ModelUriError",
    "NotStreamableError",
    "ObservedInputWarning",
    "RunRecordIncompleteError",
    "S3Path",
    "ServingFeatureMissingError",
    "SessionSnapshot",
    "StoreCapabilityError",
    "StoreError",
    "TrainServeSkewError",
    "UnknownFeatureError",
    "UnknownRunError",
    "UnsupportedInputError",
    "UnsupportedOutputError",
    "UnsupportedReturnAnnotationError",
    "WaitTimeoutError",
    "__version__",
    "cached_feature",
    "check_serving",
    "default_cache",
    "lineage",
    "mlflow_dataset",
    "register_fingerprint",
    "serving_manifest",
    "session_stats",
    "why",
]


def __getattr__(name: str) -> Any:
    if name == "S3Path":
        from featurecache.fingerprint.s3object import S3Path

        return S3Path
    if name == "DvcPath":
        from featurecache.integrations.dvc.path import DvcPath

        return DvcPath
    if name == "register_fingerprint":
        from featurecache.fingerprint.registry import register_fingerprint

        return register_fingerprint
    if name == "open":
        from featurecache.stream.reader import open_artifact

        return open_artifact
    if name == "ArtifactReader":
        from featurecache.stream.reader import ArtifactReader

        return ArtifactReader
    if name == "why":
        from featurecache.ops.why import why

        return why
    if name == "check_serving":
        from featurecache.integrations.mlflow.serving import check_serving

        return check_serving
    if name == "serving_manifest":
        from featurecache.ops.skew import serving_manifest

        return serving_manifest
    if name in ("lineage", "mlflow_dataset"):
        from featurecache.integrations.mlflow import lineage as mlflow_lineage

        return getattr(mlflow_lineage, name)
    raise AttributeError(f"module 'featurecache' has no attribute {name!r}")
