"""MLflow lineage, caller side: what the cache hands over on every hit and miss, the
``lineage()`` context manager, and the queue that a background thread drains.

The cache calls ``MlflowLineage.on_resolved`` on every hit and miss, so that call must cost
microseconds: it reads a contextvar, the caller thread's active MLflow run *only if mlflow is
already imported* (a process that never imported mlflow has no run to attach to), de-duplicates
and enqueues. It never imports mlflow and never waits for MLflow. Everything that talks to MLflow
lives in ``mlflow_sender`` and runs on one daemon thread, flushed by ``flush()`` and at exit.
"""

from __future__ import annotations

import atexit
import contextvars
import importlib.util
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from featurecache.errors import ConfigError
from featurecache.fingerprint import observed
from featurecache.hooks import ResolvedFeature, RunUsageCallback, Upstream
from featurecache.integrations.mlflow.scope import UPSTREAM_CONTEXT, LineageScope, QueuedEvent

if TYPE_CHECKING:
    from featurecache.fingerprint.types import InputFingerprint
    from featurecache.integrations.mlflow.sender import MlflowSender
    from featurecache.settings import Settings

log = logging.getLogger("featurecache.mlflow")

DEFAULT_CONTEXT = "training"
_MAX_CONTEXT = 500  # MLflow's limit on an input tag value
_MAX_SEEN = 100_000


@dataclass(frozen=True)
class _Binding:
    context: str = DEFAULT_CONTEXT
    run_id: str | None = None
    enabled: bool = True


_UNBOUND = _Binding()  # frozen, so sharing it as the default is safe
_BINDING: contextvars.ContextVar[_Binding] = contextvars.ContextVar(
    "featurecache_lineage", default=_UNBOUND
)


@contextmanager
def lineage(
    context: str | None = None, run_id: str | None = None, *, enabled: bool | None = None
) -> Iterator[None]:
    """Set how cached features resolved in this block are logged to MLflow.

    ``context`` names the use (``"training"`` by default, e.g. ``"eval"``); ``run_id`` binds
    the block to a run explicitly, which worker threads need because MLflow's active run is
    thread-local; ``enabled=False`` logs nothing. Unset arguments keep the enclosing values.
    Per thread and per asyncio task (a contextvar). A feature called inside another feature's
    body is an upstream of what the block asked for: its context is ``"upstream"``.
    """
    current = _BINDING.get()
    if context is not None and not (isinstance(context, str) and 0 < len(context) <= _MAX_CONTEXT):
        raise ConfigError(
            "lineage(context=…)",
            f"{context!r} is not a usable context",
            "Give a short non-empty string such as 'eval'.",
        )
    if run_id is not None and not (isinstance(run_id, str) and run_id):
        raise ConfigError(
            "lineage(run_id=…)", f"{run_id!r} is not a run id", "Pass run.info.run_id."
        )
    token = _BINDING.set(
        _Binding(
            context=current.context if context is None else context,
            run_id=current.run_id if run_id is None else run_id,
            enabled=current.enabled if enabled is None else enabled,
        )
    )
    try:
        yield
    finally:
        _BINDING.reset(token)


def _context(binding: _Binding) -> str:
    """The context of a call made now: ``upstream`` inside another feature's body (its
    observation is this thread's), else the one the enclosing ``lineage()`` names."""
    return UPSTREAM_CONTEXT if observed.current() is not None else binding.context


def _active_run() -> tuple[str, str] | None:
    """(run_id, experiment_id) of this thread's active MLflow run, without importing mlflow."""
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return None
    try:
        run = mlflow.active_run()
        if run is None:
            return None
        info = run.info
        return str(info.run_id), str(info.experiment_id)
    except Exception:  # noqa: BLE001 - a half-imported or odd mlflow must never fail a feature call
        return None


def _mlflow_tracking_uri() -> str | None:
    mlflow = sys.modules.get("mlflow")
    try:
        return None if mlflow is None else str(mlflow.get_tracking_uri())
    except Exception:  # noqa: BLE001 - same reason as _active_run
        return None


class MlflowLineage:
    """Consumption and production edges for one cache. Thread-safe; cheap until used."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str = "featurecache",
        on_run_usage: RunUsageCallback | None = None,
        *,
        window_seconds: float = 0.2,
        exit_timeout: float = 10.0,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.on_run_usage = on_run_usage
        self.window_seconds = window_seconds
        self.exit_timeout = exit_timeout
        self._seen: set[tuple[str, str, str]] = set()
        self._run_uris: dict[str, str] = {}
        self._closed = False
        self._warned = False
        self._sender: MlflowSender | None = None
        self._reset_queue()
        # Registered now rather than when the thread starts: atexit runs last-in first-out, so
        # this flush runs after the handlers registered later (the background publisher's),
        # whose late misses still reach MLflow.
        atexit.register(self._at_exit)

    def _reset_queue(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._items: deque[QueuedEvent] = deque()
        self._pending = 0  # queued + being sent
        self._flush_requested = False
        self._stop = False
        self._thread: threading.Thread | None = None

    # -- caller side (hot path) ---------------------------------------------------------

    def capture(self) -> LineageScope:
        """The calling thread's scope, for an event that will be reported from another thread
        (a background publish): capture on the caller, pass it to ``on_resolved(scope=…)``."""
        binding = _BINDING.get()
        run_id, experiment_id, uri = binding.run_id, None, None
        if run_id is None:
            active = _active_run()
            if active is not None:
                run_id, experiment_id = active
                uri = self._uri_of(run_id)
        return LineageScope(_context(binding), run_id, uri, experiment_id, binding.enabled)

    def on_resolved(self, event: ResolvedFeature, scope: LineageScope | None = None) -> None:
        """Record a hit or miss. Microseconds: never imports mlflow, never waits for MLflow."""
        if self._closed:
            return
        if scope is None:
            binding = _BINDING.get()
            if not binding.enabled:
                return
            if event.kind == "hit":
                # The common hit: no run to attach to, or its edge is already logged.
                run_id = binding.run_id
                if run_id is None:
                    active = _active_run()
                    if active is None:
                        return
                    run_id = active[0]
                if (run_id, event.artifact_id, _context(binding)) in self._seen:
                    return
            scope = self.capture()
        if not scope.enabled:
            return
        consume = False
        if scope.run_id is not None:
            edge = (scope.run_id, event.artifact_id, scope.context)
            if edge not in self._seen:
                if len(self._seen) >= _MAX_SEEN:
                    self._seen.clear()  # bounded memory; a repeat costs one deduped MLflow edge
                self._seen.add(edge)
                consume = True
        if consume or event.kind == "miss":
            self._enqueue(QueuedEvent(event, scope, consume))

    def _uri_of(self, run_id: str) -> str:
        uri = self._run_uris.get(run_id)
        if uri is None:
            # The active run lives where mlflow points now; read once per run.
            uri = _mlflow_tracking_uri() or self.tracking_uri
            self._run_uris[run_id] = uri
        return uri

    def _enqueue(self, item: QueuedEvent) -> None:
        if self._pid != os.getpid():
            # A forked child: the parent's thread, lock and HTTP connections are not ours.
            self._reset_queue()
            self._sender = None
        with self._cond:
            self._items.append(item)
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="featurecache-mlflow", daemon=True
                )
                self._thread.start()
            elif len(self._items) == 1:
                self._cond.notify_all()

    # -- background side ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._stop:
                    self._cond.wait()
                if not self._items:
                    return
                # One send per window: later events of the same run join this batch.
                deadline = time.monotonic() + self.window_seconds
                while not (self._flush_requested or self._stop):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                batch = list(self._items)
                self._items.clear()
            try:
                self._send(batch)
            finally:
                with self._cond:
                    self._pending -= len(batch)
                    if self._pending == 0:
                        self._flush_requested = False
                    self._cond.notify_all()

    def _send(self, batch: list[QueuedEvent]) -> None:
        try:
            if self._sender is None:
                from featurecache.integrations.mlflow.sender import MlflowSender

                self._sender = MlflowSender(self.tracking_uri, self.experiment, self.on_run_usage)
            self._sender.send(batch)
        except Exception as exc:  # noqa: BLE001 - lineage must never take its thread down
            if not self._warned:
                self._warned = True
                log.warning(
                    "featurecache: MLflow lineage failed (%s); %d events dropped, feature calls "
                    "are not affected",
                    exc,
                    len(batch),
                )

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Send everything queued now; True when nothing is left within ``timeout``."""
        with self._cond:
            if self._pending == 0:
                return True
            self._flush_requested = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush, stop the thread and ignore later events. True when everything was sent."""
        done = self.flush(timeout)
        with self._cond:
            self._closed = True
            self._stop = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and done:
            thread.join(timeout)
        atexit.unregister(self._at_exit)
        return done

    def _at_exit(self) -> None:
        if not self.flush(self.exit_timeout):
            log.warning(
                "featurecache: MLflow lineage still had %d events to send after %.0f s at exit; "
                "they were dropped",
                self._pending,
                self.exit_timeout,
            )


def upstream_from_inputs(
    inputs: Mapping[str, InputFingerprint], artifact_uri: Callable[[str], str] | None = None
) -> tuple[Upstream, ...]:
    """The ``upstream`` of a miss from its input fingerprints: cached frames (by artifact id)
    and files/objects (by fingerprint). ``artifact_uri`` maps an artifact id to its URI."""
    out = []
    for name, fp in inputs.items():
        if fp.upstream_artifact_id:
            uri = artifact_uri(fp.upstream_artifact_id) if artifact_uri else fp.source_uri
            out.append(Upstream(name, fp.upstream_artifact_id, uri, True))
        elif fp.source_uri:
            out.append(Upstream(name, fp.fingerprint, fp.source_uri, False))
    return tuple(out)


_warned_missing = False


def lineage_from_settings(
    settings: Settings, on_run_usage: RunUsageCallback | None = None
) -> MlflowLineage | None:
    """The lineage for these settings, or None when no tracking URI is configured (or mlflow
    is not installed, which is warned about once)."""
    global _warned_missing
    uri = settings.mlflow_tracking_uri
    if not uri:
        return None
    if importlib.util.find_spec("mlflow") is None:
        if not _warned_missing:
            _warned_missing = True
            log.warning(
                "featurecache: MLFLOW_TRACKING_URI is set but mlflow is not installed; lineage "
                "is off. Install featurecache[mlflow] (pip install 'featurecache[mlflow]')."
            )
        return None
    return MlflowLineage(uri, settings.mlflow_experiment, on_run_usage)


def mlflow_dataset(artifact: Any, feature: str | None = None) -> Any:
    """An ``mlflow.data`` Dataset for a cached artifact (a ``Hit``, a ``ResolvedFeature`` or an
    ``ArtifactRecord`` with ``feature=``), e.g. for ``mlflow.log_metric(..., dataset=…)``.
    Needs mlflow (imported here, on purpose)."""
    from featurecache.integrations.mlflow.entities import feature_dataset

    return feature_dataset(artifact, feature)
