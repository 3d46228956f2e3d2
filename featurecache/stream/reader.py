"""``featurecache.open(ref)``: stream an artifact's rows in batches to a training loop.

    reader = featurecache.open(user_features(...))        # or an id, a prefix, a feature name
    for batch in reader.batches(4096, columns=["x", "y"], filter=pc.field("split") == "train"):
        ...                                                # a pyarrow.RecordBatch of 4096 rows

The artifact is verified when it is opened (``stream.source``). ``batches`` reads its row
groups through pyarrow's dataset reader (columns projected, ``filter`` pushed down to skip row
groups whose statistics exclude it, then applied row by row), decodes up to ``parallel`` row
groups at once in background threads, each at most ``prefetch`` batches ahead
(``stream.prefetch``), and cuts the rows into batches of exactly ``batch_size``
(``stream.batching``). ``shard=(i, n)`` reads every n-th row group starting at the i-th, so n
processes together read each row exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack

from featurecache.errors import ConfigError, MissingDependencyError
from featurecache.stream.batching import check_batch_size, check_shard
from featurecache.stream.plan import StreamPlan

if TYPE_CHECKING:
    import pyarrow as pa

    from featurecache.catalog.records import ArtifactRecord
    from featurecache.feature import FeatureCache
    from featurecache.stream.source import Source

BatchFormat = Literal["arrow", "polars", "pandas"]


class ReadOptions(TypedDict, total=False):
    """What to read and how far ahead: the keyword options of ``batches`` and ``to_torch``."""

    columns: Sequence[str] | None
    filter: Any  # a pyarrow.compute.Expression
    drop_last: bool
    parallel: int
    prefetch: int


_FORMATS = ("arrow", "polars", "pandas")


class ArtifactReader:
    """A verified artifact, ready to be streamed. Made by ``featurecache.open``."""

    def __init__(self, artifact: ArtifactRecord, source: Source) -> None:
        self.artifact_id = artifact.artifact_id
        self.num_rows = artifact.rows
        self._source = source
        fragment = source.open_fragment()
        self.schema: pa.Schema = fragment.physical_schema
        self.num_row_groups: int = fragment.num_row_groups

    def __repr__(self) -> str:
        return (
            f"<ArtifactReader {self.artifact_id[:12]}: {self.num_rows} rows, "
            f"{len(self.schema)} columns, {self.num_row_groups} row groups>"
        )

    def plan(self, batch_size: int, **options: Unpack[ReadOptions]) -> StreamPlan:
        """The checked arguments of ``batches`` (see there)."""
        for name in options.keys() - ReadOptions.__annotations__.keys():
            raise ConfigError(
                name,
                "is not an option of the artifact reader",
                f"Use batch_size, shard, format or: {', '.join(ReadOptions.__annotations__)}.",
            )
        return StreamPlan(
            source=self._source,
            row_groups=self.num_row_groups,
            batch_size=check_batch_size(batch_size),
            columns=self._checked_columns(options.get("columns")),
            filter=_checked_filter(options.get("filter")),
            drop_last=bool(options.get("drop_last", False)),
            parallel=_positive("parallel", options.get("parallel", 2)),
            prefetch=_positive("prefetch", options.get("prefetch", 2)),
        )

    def batches(
        self,
        batch_size: int = 65_536,
        *,
        shard: tuple[int, int] = (0, 1),
        format: BatchFormat = "arrow",
        **options: Unpack[ReadOptions],
    ) -> Generator[Any, None, None]:
        """The artifact's rows (of shard ``shard``), in file order, in batches of exactly
        ``batch_size`` rows (the last shorter, or dropped with ``drop_last=True``): pyarrow
        ``RecordBatch``es, or polars / pandas ``DataFrame``s with ``format``.

        ``columns``: the columns to read (default all). ``filter``: a
        ``pyarrow.compute`` expression (``pc.field("day") >= 3``), which may use columns not
        in ``columns``. ``parallel`` row groups (default 2) are decoded at once, each at most
        ``prefetch`` batches (default 2) ahead. Stop early with ``break`` / ``close()``: the
        background threads stop and are joined."""
        plan = self.plan(batch_size, **options)
        convert = _converter(format)
        return _converted(plan.rows(check_shard(shard)), convert)

    def to_torch(
        self,
        batch_size: int = 1024,
        *,
        shard: tuple[int, int] = (0, 1),
        transform: Callable[[pa.RecordBatch], Any] | None = None,
        **options: Unpack[ReadOptions],
    ) -> Any:
        """A ``torch.utils.data.IterableDataset`` over the artifact that splits its row groups
        across DataLoader workers (and, with ``shard=(rank, world_size)``, across processes
        first). Each item is one batch: a dict of column name -> tensor, or ``transform(batch)``
        for a pyarrow ``RecordBatch``. Use it with ``DataLoader(dataset, batch_size=None)``.
        The options are those of ``batches``; ``parallel`` defaults to 1 (one decoding thread
        in each worker process). Needs torch (``pip install 'featurecache[torch]'``)."""
        try:
            from featurecache.stream.torch import ArtifactDataset
        except ImportError as exc:
            if exc.name is None or not exc.name.startswith("torch"):
                raise
            raise MissingDependencyError(
                "torch", "torch", "featurecache.open(...).to_torch()"
            ) from None
        options.setdefault("parallel", 1)
        return ArtifactDataset(self.plan(batch_size, **options), check_shard(shard), transform)

    def _checked_columns(self, columns: Sequence[str] | None) -> tuple[str, ...] | None:
        if columns is None:
            return None
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise ConfigError(
                "columns",
                f"must be a list of column names, got {columns!r}",
                'Pass columns=["a", "b"].',
            )
        unknown = [c for c in columns if c not in self.schema.names]
        if unknown:
            raise ConfigError(
                "columns",
                f"artifact {self.artifact_id[:12]} has no column {', '.join(map(repr, unknown))}",
                f"Choose among: {', '.join(self.schema.names)}.",
            )
        return tuple(columns)


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(name, f"must be a whole number >= 1, got {value!r}", f"Pass {name}=2.")
    return value


def _checked_filter(filter: Any) -> Any:
    if filter is None:
        return None
    import pyarrow.compute as pc

    if not isinstance(filter, pc.Expression):
        raise ConfigError(
            "filter",
            f"must be a pyarrow.compute expression, got a {type(filter).__name__}",
            'Pass e.g. filter=pc.field("day") >= 3 (import pyarrow.compute as pc).',
        )
    return filter


def _converter(format: object) -> Callable[[pa.RecordBatch], Any]:
    if format == "arrow":
        return lambda batch: batch
    if format == "polars":
        import polars as pl

        return lambda batch: pl.from_arrow(batch)
    if format == "pandas":
        return lambda batch: batch.to_pandas()
    raise ConfigError(
        "format", f"must be one of {', '.join(_FORMATS)}, got {format!r}", 'Pass format="arrow".'
    )


def _converted(
    rows: Generator[pa.RecordBatch, None, None], convert: Callable[[Any], Any]
) -> Generator[Any, None, None]:
    # Closing this generator closes ``rows``, which stops and joins the prefetch threads.
    try:
        for batch in rows:
            yield convert(batch)
    finally:
        rows.close()


def open_artifact(ref: object, *, cache: FeatureCache | None = None) -> ArtifactReader:
    """A reader over the artifact ``ref`` names: an artifact id or a unique prefix of one, a
    feature's name (its most recent call's artifact), or a frame a cached feature returned.
    Verified before anything is read (``ArtifactCorruptError`` when it does not match the
    catalog); ``ArtifactNotFoundError`` / ``AmbiguousReferenceError`` for a bad reference,
    ``NotStreamableError`` for a composite result or an object that is no frame."""
    from featurecache.feature import default_cache
    from featurecache.stream.refs import artifact_for
    from featurecache.stream.source import artifact_source

    engine = (cache if cache is not None else default_cache()).engine
    artifact = artifact_for(engine, ref)
    return ArtifactReader(artifact, artifact_source(engine, artifact))
