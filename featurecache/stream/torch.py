"""The torch adapter of the artifact reader (``featurecache[torch]``; imported only by
``ArtifactReader.to_torch``).

``ArtifactDataset`` is an ``IterableDataset`` whose items are whole batches: each DataLoader
worker reads its own share of the artifact's row groups (``get_worker_info``: worker ``w`` of
``W``, inside the process's own ``shard=(rank, world_size)``, reads shard
``(rank * W + w, world_size * W)``), so an epoch yields every row exactly once. Batches keep
the requested size; each worker's last batch may be shorter (or dropped with ``drop_last``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import IterableDataset, get_worker_info

from featurecache.errors import NotStreamableError

if TYPE_CHECKING:
    import pyarrow as pa

    from featurecache.stream.plan import StreamPlan


class ArtifactDataset(IterableDataset[Any]):
    """Batches of an artifact for ``DataLoader(dataset, batch_size=None, num_workers=…)``."""

    def __init__(
        self,
        plan: StreamPlan,
        shard: tuple[int, int],
        transform: Callable[[pa.RecordBatch], Any] | None,
    ) -> None:
        self.plan = plan
        self.shard = shard
        self.transform = transform

    def worker_shard(self) -> tuple[int, int]:
        """This DataLoader worker's shard (the dataset's own outside a worker)."""
        index, count = self.shard
        info = get_worker_info()
        if info is None:
            return index, count
        return index * info.num_workers + info.id, count * info.num_workers

    def __iter__(self) -> Iterator[Any]:
        convert = self.transform if self.transform is not None else as_tensors
        rows = self.plan.rows(self.worker_shard())
        try:
            for batch in rows:
                yield convert(batch)
        finally:
            rows.close()


def as_tensors(batch: pa.RecordBatch) -> dict[str, torch.Tensor]:
    """Column name -> tensor, for numeric and boolean columns without nulls (one copy of the
    batch: a tensor must own writable memory, Arrow's buffers are read-only)."""
    import pyarrow.types as pat

    out: dict[str, torch.Tensor] = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        kind = column.type
        if not (pat.is_integer(kind) or pat.is_floating(kind) or pat.is_boolean(kind)):
            raise NotStreamableError(
                f"column {name!r} ({kind})",
                "only numeric and boolean columns become tensors",
                "Select columns=[...] of numbers, or pass to_torch(transform=fn) that turns "
                "each pyarrow RecordBatch into what your model takes.",
            )
        if column.null_count:
            raise NotStreamableError(
                f"column {name!r}",
                f"it has {column.null_count} nulls in this batch, which a tensor cannot hold",
                "Fill them in the feature, or pass to_torch(transform=fn) to choose a value.",
            )
        values = column.to_numpy(zero_copy_only=False)
        if not values.flags.writeable:  # a view of Arrow's buffer: torch wants to own it
            values = values.copy()
        out[name] = torch.from_numpy(values)
    return out
