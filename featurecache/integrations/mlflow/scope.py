"""Where a lineage event's edges go (``LineageScope``, read on the caller's thread) and an event
queued for the sender with its scope (``QueuedEvent``): shared by ``lineage`` and ``sender``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from featurecache.hooks import ResolvedFeature

# The context of a feature resolved inside another feature's body (an upstream of what the
# training code asked for), whatever context the block around the outer call names.
UPSTREAM_CONTEXT = "upstream"


@dataclass(frozen=True)
class LineageScope:
    """Where an event's edges go, read in the thread that made the call."""

    context: str
    run_id: str | None  # the consuming run (active or bound); None: no consumption edge
    tracking_uri: str | None  # where that run lives; None: the lineage's own URI
    experiment_id: str | None  # the run's experiment when known (feature runs become children)
    enabled: bool = True


class QueuedEvent(NamedTuple):
    event: ResolvedFeature
    scope: LineageScope
    consume: bool  # log a consumption edge into scope.run_id (misses also produce a run)
