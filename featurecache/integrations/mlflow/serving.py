"""``featurecache.check_serving``: the train/serve skew guard over both records of a run.

Which features a run used, and with which code, is read from the catalog first (it needs the
shared catalog; it has every code identity component), else from the run's MLflow dataset
inputs (a serving host with MLflow access only). The catalog records which artifacts a run
used, not which key: where it cannot tell (an artifact GC collected, or identical output from
two code versions) and MLflow is configured, the run's own MLflow record decides. mlflow is
imported only when MLflow is read; the comparison itself is ``ops.skew``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from featurecache.errors import ConfigError, MissingDependencyError, NoCacheError, UnknownRunError
from featurecache.ops.skew import SkewReport, TrainedFeature, compare, serving_features

if TYPE_CHECKING:
    from featurecache.catalog import Catalog
    from featurecache.feature import Feature, FeatureCache
    from featurecache.settings import Settings

SourceChoice = Literal["auto", "catalog", "mlflow"]
SOURCES = ("auto", "catalog", "mlflow")


def check_serving(
    run_id: str,
    features: Feature[..., Any] | Sequence[Feature[..., Any]] = (),
    *,
    modules: Sequence[str] = (),
    cache: FeatureCache | None = None,
    source: SourceChoice = "auto",
    tracking_uri: str | None = None,
) -> SkewReport:
    """Compare the code of every feature MLflow run ``run_id`` used with the code this process
    runs now. Features are found by the name the run recorded among ``features``, then among
    every feature defined in this process (import ``modules`` first to define them).
    ``report.exit_code`` is 0 when all are the same, 1 when one differs, 2 when one is not
    defined here; ``report.raise_for_skew()`` raises in the last two cases.
    ``UnknownRunError`` when no record of the run's features is found."""
    from featurecache.feature import default_cache, defined_features

    if not isinstance(run_id, str) or not run_id.strip():
        raise ConfigError("run_id", f"{run_id!r} is not a run id", "Pass run.info.run_id.")
    if source not in SOURCES:
        raise ConfigError("source", f"{source!r} is not a source", f"Use one of {SOURCES}.")
    given = _features_arg(features)
    import_modules(modules)
    settings = (cache or default_cache()).settings
    uri = tracking_uri or settings.mlflow_tracking_uri
    defined = {f.name for f in given} | {f.name for f in defined_features()}
    catalog = _existing_catalog(settings, required=source == "catalog")
    try:
        trained, unknown, used = _trained(run_id, catalog, uri, source, defined)
        if catalog is not None and used != "catalog":
            trained = _with_catalog_code(trained, catalog)
    finally:
        if catalog is not None:
            catalog.close()
    serving = serving_features(sorted({item.feature for item in trained}), given)
    return compare(run_id, trained, serving, source=used, unknown_artifacts=unknown)


def _features_arg(features: object) -> list[Feature[..., Any]]:
    """``features=``: decorated functions (one, or a list of them)."""
    from featurecache.feature import Feature

    if isinstance(features, Feature):
        return [features]
    items = list(cast("Iterable[Any]", features))
    for item in items:
        if not isinstance(item, Feature):
            raise ConfigError(
                "features",
                f"{item!r} is not a @cached_feature function",
                "Pass the decorated functions (features=[user_features, sessionize]).",
            )
    return items


def import_modules(modules: Sequence[str]) -> None:
    """Import each module, so that the features it defines are known to this process."""
    if isinstance(modules, str):
        modules = [modules]
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(
                "module",
                f"cannot import {name!r} ({exc})",
                "Name a module importable from here (run from the project folder, or put it on "
                "PYTHONPATH).",
            ) from None


def _trained(
    run_id: str, catalog: Catalog | None, uri: str | None, source: str, defined: set[str]
) -> tuple[list[TrainedFeature], list[str], str]:
    """(trained features, artifacts the catalog cannot attribute, which record was used)."""
    from featurecache.ops.skew import trained_from_catalog

    if source == "mlflow":
        return _from_mlflow(uri, run_id), [], "mlflow"
    trained: list[TrainedFeature] = []
    unknown: list[str] = []
    if catalog is not None:
        trained, unknown = trained_from_catalog(catalog, run_id, defined)
    if source == "catalog":
        if not trained and not unknown:
            raise UnknownRunError(run_id, "the catalog")
        return trained, unknown, "catalog"
    unsure = bool(unknown) or any(item.alternatives for item in trained)
    if (trained or unknown) and not (unsure and uri):
        return trained, unknown, "catalog"
    if not uri:
        where = "the catalog" if catalog is not None else "any catalog (none exists here)"
        raise UnknownRunError(run_id, f"{where}, and MLflow is not configured")
    return _from_mlflow(uri, run_id), [], "mlflow" if catalog is None else "catalog+mlflow"


def _from_mlflow(uri: str | None, run_id: str) -> list[TrainedFeature]:
    if not uri:
        raise ConfigError(
            "source",
            "reading the run from MLflow needs a tracking URI",
            "Set MLFLOW_TRACKING_URI (or pass tracking_uri=…).",
        )
    try:
        from featurecache.integrations.mlflow.run_features import trained_from_mlflow
    except ImportError:
        raise MissingDependencyError("mlflow", "mlflow", "Reading a run from MLflow") from None
    trained = trained_from_mlflow(uri, run_id)
    if not trained:
        raise UnknownRunError(run_id, f"MLflow at {uri}")
    return trained


def _with_catalog_code(trained: list[TrainedFeature], catalog: Catalog) -> list[TrainedFeature]:
    """MLflow's record holds digests; the catalog's code versions hold their components."""
    from dataclasses import replace

    wanted = sorted({item.code_digest for item in trained if item.code is None})
    if not wanted:
        return trained
    known = {record.code_digest: record.components for record in catalog.code_versions(wanted)}
    return [
        replace(item, code=known[item.code_digest])
        if item.code is None and known.get(item.code_digest)
        else item
        for item in trained
    ]


def _existing_catalog(settings: Settings, *, required: bool) -> Catalog | None:
    """The configured catalog when it exists (never created here); with ``required``, a
    missing one is a ``NoCacheError``."""
    from featurecache.catalog import Catalog
    from featurecache.catalog.database import safe_url
    from featurecache.ops.presence import catalog_exists

    if catalog_exists(settings):
        return Catalog.open(
            settings.catalog_url, connect_timeout_seconds=settings.remote_timeout_seconds
        )
    if required:
        root = str(settings.project) if settings.project is not None else "none"
        raise NoCacheError(safe_url(settings.catalog_url), root)
    return None
