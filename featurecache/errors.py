"""The one exception tree of featurecache.

Every error says what went wrong, where, and what to do about it, carries its data as
attributes, and also subclasses the matching built-in so callers can catch either.
"""

from __future__ import annotations

from collections.abc import Sequence


class FeatureCacheError(Exception):
    """Base of every error raised by featurecache."""


class ConfigError(FeatureCacheError, ValueError):
    """A setting (argument, environment variable or pyproject entry) is invalid."""

    def __init__(self, setting: str, problem: str, fix: str) -> None:
        self.setting = setting
        self.problem = problem
        self.fix = fix
        super().__init__(f"{setting}: {problem}. {fix}")


class MissingDependencyError(FeatureCacheError, ImportError):
    """An optional dependency is needed for what was asked."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        self.purpose = purpose
        super().__init__(
            f"{purpose} needs the '{package}' package: install featurecache[{extra}] "
            f"(pip install 'featurecache[{extra}]')"
        )


class UnsupportedInputError(FeatureCacheError, TypeError):
    """A feature argument has a type whose content cannot be fingerprinted.

    The message starts with what to do (``hint``), then says what was refused (``type_name``,
    with where inside the argument, and the object holding it: ``owner``), and ends with the
    list of supported types, which is long."""

    def __init__(
        self,
        argument: str,
        type_name: str,
        supported: Sequence[str],
        hint: str = "",
        *,
        owner: str | None = None,
    ) -> None:
        self.argument = argument
        self.type_name = type_name
        self.supported = tuple(supported)
        self.hint = hint
        self.owner = owner  # module.qualname of the config object holding the refused value
        remedy = hint or "Pass plain values, frames or paths instead (or convert it to one)."
        held = f", held by a {owner}" if owner else ""
        message = (
            f"argument {argument!r}: {remedy} (featurecache cannot fingerprint {type_name}{held}.)"
        )
        if self.supported:
            message += f" Supported: {', '.join(self.supported)}."
        super().__init__(message)


class UnsupportedOutputError(FeatureCacheError, TypeError):
    """A feature function returned something featurecache cannot store."""

    def __init__(self, feature: str, type_name: str, supported: Sequence[str]) -> None:
        self.feature = feature
        self.type_name = type_name
        self.supported = tuple(supported)
        super().__init__(
            f"feature {feature!r} returned {type_name}, which featurecache cannot store; nothing "
            f"was cached. Return one of: {', '.join(self.supported)}."
        )


class CodeIdentityError(FeatureCacheError, TypeError):
    """strict=True: something the feature's code refers to cannot be hashed reliably."""

    def __init__(self, feature: str, problems: Sequence[str]) -> None:
        self.feature = feature
        self.problems = tuple(problems)
        super().__init__(
            f"feature {feature!r} (strict=True) refers to what featurecache cannot follow: "
            + "; ".join(self.problems)
            + ". Add the values to depends_on=[...], leave them out with ignore=[...], "
            "or drop strict=True."
        )


class CatalogError(FeatureCacheError, RuntimeError):
    """The catalog database could not be used."""


class ArtifactBeingSweptError(CatalogError):
    """A publish found its artifact's row claimed by a GC sweep that is deleting the file: the
    row must not be revived (it would be live without its file); publish again once it is gone."""

    def __init__(self, artifact_id: str) -> None:
        self.artifact_id = artifact_id
        super().__init__(f"artifact {artifact_id} is being deleted by a garbage collection")


class CatalogVersionError(CatalogError):
    """The catalog schema is older or newer than this version of featurecache understands."""

    def __init__(self, url: str, found: str | None, expected: str, fix: str) -> None:
        self.url = url
        self.found = found
        self.expected = expected
        super().__init__(
            f"catalog {url} is at schema revision {found or 'none'}, this featurecache "
            f"expects {expected}. {fix}"
        )


class ArtifactNotFoundError(FeatureCacheError, LookupError):
    """An artifact (or a reference to one) does not exist."""

    def __init__(self, ref: str, where: str = "") -> None:
        self.ref = ref
        self.where = where
        suffix = f" in {where}" if where else ""
        super().__init__(f"no artifact matches {ref!r}{suffix}; list them with: featurecache ls")


class AmbiguousReferenceError(FeatureCacheError, LookupError):
    """A short artifact id prefix matches more than one artifact."""

    def __init__(self, ref: str, candidates: Sequence[str]) -> None:
        self.ref = ref
        self.candidates = tuple(candidates)
        shown = ", ".join(c[:12] for c in self.candidates[:5])
        super().__init__(
            f"{ref!r} matches {len(self.candidates)} artifacts ({shown}…); give more characters"
        )


class ArtifactCorruptError(FeatureCacheError, ValueError):
    """A stored artifact does not match what the catalog recorded for it."""

    def __init__(self, artifact_id: str, reason: str) -> None:
        self.artifact_id = artifact_id
        self.reason = reason
        super().__init__(f"artifact {artifact_id} is corrupt: {reason}")


class NotStreamableError(FeatureCacheError, TypeError):
    """``featurecache.open`` was given something that names no single Parquet artifact: a
    value of a type the cache does not store as a frame, or a composite result (a tuple or
    dict of results), whose parts are opened one by one."""

    def __init__(self, ref: str, problem: str, fix: str) -> None:
        self.ref = ref
        self.problem = problem
        self.fix = fix
        super().__init__(f"cannot stream {ref}: {problem}. {fix}")


class StoreError(FeatureCacheError, OSError):
    """The artifact store could not complete an operation."""


class StoreCapabilityError(StoreError):
    """The artifact store lacks a capability that shared mode needs (e.g. conditional create)."""


class PartitionNotStoredError(FeatureCacheError, RuntimeError):
    """A partition of a partitioned feature was computed but could not be stored, so the
    partitioned result cannot name its artifact."""

    def __init__(self, feature: str, key_id: str) -> None:
        self.feature = feature
        self.key_id = key_id
        super().__init__(
            f"partition of {feature!r} (key {key_id[:12]}) was computed but not stored: the "
            "cache is read-only or its store or catalog refused the write (see the warning "
            "above). A partitioned feature needs a writable cache: fix the store or catalog, "
            "or unset FEATURECACHE_READ_ONLY, and run again"
        )


class LeaseLostError(FeatureCacheError, RuntimeError):
    """This process no longer owns the lease for a key it was computing; it must not publish."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(
            f"lost the lease on key {key_id[:12]} while computing it (could not renew it in time); "
            "the result was not published. Raise FEATURECACHE_LEASE_SECONDS if computations "
            "stall the heartbeat."
        )


class WaitTimeoutError(FeatureCacheError, TimeoutError):
    """Waiting for another process to finish computing a key took longer than allowed."""

    def __init__(self, feature: str, key_id: str, seconds: float, owner: str) -> None:
        self.feature = feature
        self.key_id = key_id
        self.seconds = seconds
        self.owner = owner
        super().__init__(
            f"waited {seconds:.0f}s for {owner} to compute {feature} (key {key_id[:12]}); "
            "raise FEATURECACHE_WAIT_TIMEOUT or call with wait=False to compute here"
        )


class InputNotFoundError(FeatureCacheError, FileNotFoundError):
    """A path argument (local file or s3:// object) names something that does not exist."""

    def __init__(self, argument: str, location: str) -> None:
        self.argument = argument
        self.location = location
        super().__init__(
            f"argument {argument!r} names {location}, which does not exist; "
            "check the path (and, for s3://, the bucket, credentials and AWS_ENDPOINT_URL)"
        )


class InvalidArtifactIdError(FeatureCacheError, ValueError):
    """A string given as an artifact id is not 32 lowercase hex characters."""

    def __init__(self, artifact_id: str) -> None:
        self.artifact_id = artifact_id
        super().__init__(
            f"{artifact_id!r} is not an artifact id (32 lowercase hex characters); "
            "resolve short ids with: featurecache show <prefix>"
        )


class InvalidS3UrlError(FeatureCacheError, ValueError):
    """An s3:// URL is malformed (scheme, bucket name or key)."""

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        self.problem = problem
        super().__init__(f"{url!r} is not a valid s3:// object URL: {problem}")


class CodeIdentityWarning(UserWarning):
    """Something a feature's code refers to cannot be hashed reliably (strict=False)."""


class InputMutatedWarning(UserWarning):
    """A feature's body changed one of its arguments in place during a miss. The change is not
    replayed on a hit (the body does not run), so the caller's object differs between the two."""

    def __init__(self, feature: str, argument: str, change: str, fix: str) -> None:
        self.feature = feature
        self.argument = argument  # "df", or where inside an argument: "cfg.train", "dfs[0]"
        self.change = change
        self.fix = fix
        super().__init__(
            f"feature {feature!r} changed its argument {argument!r} in place ({change}); "
            f"its change is not replayed on a hit, where the body does not run: {fix}"
        )

    def __reduce__(self) -> tuple[type[InputMutatedWarning], tuple[str, str, str, str]]:
        # Rebuilt from its fields, not from the message (a worker process may send it back).
        return type(self), (self.feature, self.argument, self.change, self.fix)


class UnknownFeatureError(FeatureCacheError, LookupError):
    """No call of the named feature is recorded in the catalog."""

    def __init__(self, feature: str) -> None:
        self.feature = feature
        super().__init__(
            f"no call of feature {feature!r} is recorded in this catalog; "
            "list the features with: featurecache stats"
        )


class DvcError(FeatureCacheError, RuntimeError):
    """DVC could not do what was asked: no DVC repository, an unknown revision, a failed
    import."""

    def __init__(self, where: str, problem: str, fix: str) -> None:
        self.where = where
        self.problem = problem
        self.fix = fix
        super().__init__(f"{where}: {problem}. {fix}")


class NoCacheError(FeatureCacheError, LookupError):
    """A command that only reads a cache found none where the configuration points: it says
    where it looked and does not create one there."""

    def __init__(self, location: str, project_root: str) -> None:
        self.location = location
        self.project_root = project_root
        super().__init__(
            f"no featurecache cache at {location} (project root: {project_root}); "
            "run your features first or set FEATURECACHE_CATALOG"
        )


class UnknownRunError(FeatureCacheError, LookupError):
    """``check_serving``: no use of a cached feature by this run is recorded where it looked
    (the catalog, MLflow, or both)."""

    def __init__(self, run_id: str, where: str) -> None:
        self.run_id = run_id
        self.where = where
        super().__init__(
            f"no cached feature used by run {run_id!r} is recorded in {where}; check the run "
            "id (the training run's run.info.run_id) and that its features ran inside it"
        )


class ServingFeatureMissingError(FeatureCacheError, LookupError):
    """``check_serving``: features the training run used are not defined in this process, so
    their code cannot be compared (a check that skipped them would pass silently)."""

    def __init__(self, run_id: str, features: Sequence[str]) -> None:
        self.run_id = run_id
        self.features = tuple(features)
        names = ", ".join(f"`{name}`" for name in self.features)
        super().__init__(
            f"run {run_id!r} used {names}, not defined in this process; import the module that "
            "defines them (featurecache check-serving RUN_ID --module my_pkg.features, or "
            "check_serving(run_id, features=[...]))"
        )


class TrainServeSkewError(FeatureCacheError, RuntimeError):
    """The code of features a model was trained with differs from the code this process
    serves with (``SkewReport.raise_for_skew``)."""

    def __init__(self, run_id: str, differences: Sequence[str]) -> None:
        self.run_id = run_id
        self.differences = tuple(differences)
        super().__init__(f"train/serve skew against run {run_id!r}: " + "; ".join(self.differences))


class RunRecordIncompleteError(FeatureCacheError, LookupError):
    """``check_serving``: the catalog records artifacts a run used but no longer which feature
    made them (GC collected them, or their entries were cleared), and MLflow was not read."""

    def __init__(self, run_id: str, artifact_ids: Sequence[str]) -> None:
        self.run_id = run_id
        self.artifact_ids = tuple(artifact_ids)
        shown = ", ".join(artifact_id[:12] for artifact_id in self.artifact_ids)
        super().__init__(
            f"run {run_id!r} used artifacts the catalog no longer attributes to a feature "
            f"({shown}: collected or cleared); read the run's record from MLflow "
            "(set MLFLOW_TRACKING_URI; check-serving --source mlflow)"
        )


class MlflowUnavailableError(FeatureCacheError, ConnectionError):
    """MLflow was needed (to read a run's record) and did not answer or refused."""

    def __init__(self, tracking_uri: str, problem: str) -> None:
        self.tracking_uri = tracking_uri
        self.problem = problem
        super().__init__(
            f"MLflow at {tracking_uri} could not be read ({problem}); start the tracking server "
            "or point MLFLOW_TRACKING_URI at it"
        )


class ModelUriError(FeatureCacheError, LookupError):
    """A ``models:/`` or ``runs:/`` argument could not be resolved to a model (MLflow is not
    installed or configured, the model, version or alias does not exist, the URI is malformed).
    Hashing its text instead would serve a stale result once an alias moves."""

    def __init__(self, argument: str, uri: str, problem: str, fix: str) -> None:
        self.argument = argument
        self.uri = uri
        self.problem = problem
        self.fix = fix
        super().__init__(f"argument {argument!r}: {fix} (cannot resolve {uri!r}: {problem})")
