"""The listener protocol integrations implement, and how the engine finds them.

The engine reports every resolved call (hit or miss) to its listeners as a ``ResolvedFeature``
and asks its file resolvers for content hashes before hashing a file itself. It never imports
an integration: listeners and resolvers come from factories named here by import path, loaded
only when the settings ask for them (MLflow lineage when a tracking URI is configured) or, for
resolvers, on the engine's first need. Third-party code adds its own with ``add_listener_factory``
and ``add_resolver_factory``.
"""

from __future__ import annotations

import copy
import importlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

if TYPE_CHECKING:
    import os
    from pathlib import Path

    from featurecache.catalog.records import Hit, LineageEdge
    from featurecache.fingerprint.files import FileResolver
    from featurecache.settings import Settings


class Upstream(NamedTuple):
    """An input of a materialisation: an upstream artifact or a source file/object."""

    argument: str
    digest: str  # upstream artifact id, or a fingerprint ("xxh3_128:…", "md5:…")
    source_uri: str | None
    is_artifact: bool


@dataclass(frozen=True)
class ResolvedFeature:
    """One cached feature call as a listener sees it (the engine builds one per hit or miss)."""

    feature: str
    artifact_id: str  # 32 hex: the MLflow dataset digest
    artifact_uri: str  # file:///… or s3://…: where the artifact lies (never uploaded)
    key_id: str
    code_digest: str
    code_source: str  # the function's source (misses; empty on hits)
    rows: int
    columns: int
    schema: Sequence[Mapping[str, Any]]  # [{"name", "type", "nullable"}]
    kind: Literal["hit", "miss"]
    upstream: tuple[Upstream, ...] = ()  # misses: what the feature run consumed
    # A composite result: its structure (``results.codec``) and its parts' artifact ids.
    structure: Mapping[str, Any] | None = None
    part_ids: tuple[str, ...] = ()
    # The key's input components, {argument: {"kind", "value", "summary", …}} (``keys``):
    # MLflow logs the plain ones ("value", config objects) as the feature run's params.
    inputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


class CallListener(Protocol):
    """What the engine calls on every resolved call. ``on_resolved`` is on the hit path and
    must cost microseconds: queue, never wait on a network."""

    def capture(self) -> Any:
        """The calling thread's context, for an event reported later from another thread (a
        background publish); handed back as ``on_resolved(scope=…)``."""
        ...

    def on_resolved(self, event: ResolvedFeature, scope: Any = None) -> None: ...

    def flush(self, timeout: float | None = 30.0) -> bool: ...

    def close(self, timeout: float | None = 30.0) -> bool: ...


# (run_id, artifact_id, context, tracking_uri): how a listener records that a run used an
# artifact (the catalog's ``record_run_usage``).
RunUsageCallback = Callable[[str, str, str, str], None]
ListenerFactory = Callable[["Settings", RunUsageCallback], "CallListener | None"]
ResolverFactory = Callable[[Any], "FileResolver"]


@dataclass(frozen=True)
class _Builtin:
    """A built-in integration's factory by import path (``module:attribute``), imported only
    when ``wanted(settings)``: a cache that configures no MLflow never imports its module."""

    spec: str
    wanted: Callable[[Settings], bool]


def _mlflow_configured(settings: Settings) -> bool:
    # ``lineage_from_settings`` returns None without a tracking URI: nothing to import for.
    return bool(settings.mlflow_tracking_uri)


_LISTENER_FACTORIES: list[_Builtin | ListenerFactory] = [
    _Builtin("featurecache.integrations.mlflow.lineage:lineage_from_settings", _mlflow_configured),
]
# Built-in resolvers, by import path: imported when the first file is hashed (``_Deferred``).
_RESOLVER_FACTORIES: list[str | ResolverFactory] = [
    "featurecache.integrations.dvc.state:DvcStateResolver",
]


def add_listener_factory(factory: ListenerFactory) -> None:
    """Register ``factory(settings, on_run_usage)``, called when a cache opens; it returns a
    listener, or None when its integration is not configured."""
    _LISTENER_FACTORIES.append(factory)


def add_resolver_factory(factory: ResolverFactory) -> None:
    """Register ``factory(aliases)``, called when a cache opens; it returns a file resolver
    (``resolver(path, stat) -> fingerprint | None``)."""
    _RESOLVER_FACTORIES.append(factory)


def _load(spec: str | Callable[..., Any]) -> Callable[..., Any]:
    if not isinstance(spec, str):
        return spec
    module, _, attribute = spec.partition(":")
    factory: Callable[..., Any] = getattr(importlib.import_module(module), attribute)
    return factory


def listeners_for(settings: Settings, on_run_usage: RunUsageCallback) -> tuple[CallListener, ...]:
    """The listeners these settings turn on (none, unless an integration is configured)."""
    factories = [
        _load(factory.spec) if isinstance(factory, _Builtin) else factory
        for factory in _LISTENER_FACTORIES
        if not isinstance(factory, _Builtin) or factory.wanted(settings)
    ]
    listeners = (factory(settings, on_run_usage) for factory in factories)
    return tuple(listener for listener in listeners if listener is not None)


class _Deferred:
    """A built-in resolver made on its first question (the first file hashed), so opening a
    cache imports no integration module. Its attributes are the resolver's."""

    def __init__(self, spec: str, aliases: Any) -> None:
        self._spec = spec
        self._aliases = aliases
        self._made: FileResolver | None = None
        self._lock = threading.Lock()

    def resolver(self) -> FileResolver:
        if self._made is None:
            with self._lock:
                if self._made is None:
                    self._made = _load(self._spec)(self._aliases)
        assert self._made is not None
        return self._made

    def __call__(self, path: Path, st: os.stat_result) -> str | None:
        return self.resolver()(path, st)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.resolver(), name)


def resolvers_for(aliases: Any) -> tuple[FileResolver, ...]:
    """The file resolvers asked before a file is hashed (DVC's recorded hashes)."""
    return tuple(
        _Deferred(spec, aliases) if isinstance(spec, str) else spec(aliases)
        for spec in _RESOLVER_FACTORIES
    )


def resolved_event(
    hit: Hit,
    kind: Literal["hit", "miss"],
    *,
    code_source: str,
    upstream: tuple[Upstream, ...] = (),
) -> ResolvedFeature:
    """A listener's view of a call that ended in ``hit`` (the catalog row it resolved to)."""
    artifact = hit.artifact
    return ResolvedFeature(
        feature=hit.entry.feature,
        artifact_id=artifact.artifact_id,
        artifact_uri=artifact.uri,
        key_id=hit.entry.key_id,
        code_digest=hit.entry.code_digest,
        code_source=code_source,
        rows=artifact.rows,
        columns=artifact.columns,
        # Copies: the catalog may hand the same records to later lookups (``direct``).
        schema=copy.deepcopy(artifact.schema),
        kind=kind,
        upstream=upstream,
        structure=copy.deepcopy(artifact.structure),
        part_ids=tuple(part.artifact_id for part in hit.parts),
        inputs=copy.deepcopy(hit.entry.components.get("inputs") or {}),
    )


def upstream_of(
    edges: Sequence[LineageEdge], artifact_uri: Callable[[str], str]
) -> tuple[Upstream, ...]:
    """A miss's inputs as listeners see them: the same edges the catalog records."""
    return tuple(
        Upstream(
            edge.argument, edge.upstream_artifact_id, artifact_uri(edge.upstream_artifact_id), True
        )
        if edge.upstream_artifact_id
        else Upstream(edge.argument, edge.fingerprint, edge.source_uri, False)
        for edge in edges
    )
