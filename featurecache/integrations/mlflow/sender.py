"""MLflow lineage, background side: turns queued hits and misses into MLflow calls.

Runs only on the lineage's daemon thread, so it may import mlflow (0.7-2.6 s) and wait for the
server. Per batch and tracking server: one feature run per miss (created with explicit run ids
through ``MlflowClient``, never the user's thread-local active run), then one
``log_inputs`` per consuming run. MLflow being down costs lineage, never a feature call: the
first failure is a warning, later ones are debug lines, and a dead server is detected by a
short ``/health`` probe instead of MLflow's own retries (about four minutes per request).
"""

from __future__ import annotations

import functools
import getpass
import logging
import re
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from mlflow import MlflowClient
from mlflow.entities import Dataset as DatasetEntity
from mlflow.entities import DatasetInput, Param, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_USER

from featurecache.integrations.mlflow.entities import (
    Producer,
    artifact_entity,
    dataset_input,
    run_url,
    upstream_entity,
)
from featurecache.integrations.mlflow.params import feature_params
from featurecache.integrations.mlflow.scope import UPSTREAM_CONTEXT

if TYPE_CHECKING:
    from featurecache.hooks import ResolvedFeature, RunUsageCallback
    from featurecache.integrations.mlflow.scope import QueuedEvent

log = logging.getLogger("featurecache.mlflow")

MAX_INPUTS_PER_CALL = 1000  # MLflow's MAX_DATASETS_PER_BATCH
PROBE_TIMEOUT = 2.0
DOWN_SECONDS = 15.0  # after a failed probe, drop lineage for this long before probing again
# The server refused the edge itself (e.g. an unknown run id): it was not a use of the artifact.
_REJECTED = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "INVALID_STATE"}
_NOTE = "mlflow.note.content"
Usage = tuple[str, str, str, str]  # run_id, artifact_id, context, tracking_uri


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def _safe_name(feature: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", feature) or "feature"


class MlflowSender:
    """Sends batches to MLflow. Not thread-safe: used by one background thread."""

    def __init__(
        self, tracking_uri: str, experiment: str, on_run_usage: RunUsageCallback | None
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.on_run_usage = on_run_usage
        self._clients: dict[str, MlflowClient] = {}
        self._experiments: dict[str, str] = {}  # tracking uri -> our experiment's id
        self._run_experiments: dict[str, str] = {}  # run id -> its experiment id
        self._names: dict[str, str] = {}  # artifact id -> feature name, as seen in this process
        self._producers: dict[str, Producer] = {}  # artifact id -> feature run created here
        self._down_until: dict[str, float] = {}
        self._warned = False
        self._warned_callback = False
        self.failures = 0

    # -- entry point --------------------------------------------------------------------

    def send(self, batch: list[QueuedEvent]) -> None:
        by_uri: dict[str, list[QueuedEvent]] = {}
        for item in batch:
            self._names[item.event.artifact_id] = item.event.feature
            for part_id in item.event.part_ids:
                # A downstream feature's input is a part: it keeps its composite's name.
                self._names.setdefault(part_id, item.event.feature)
            by_uri.setdefault(item.scope.tracking_uri or self.tracking_uri, []).append(item)
        for uri, items in by_uri.items():
            usages: list[Usage] = []
            if self._reachable(uri):
                self._send_to(uri, items, usages)
            else:
                # The runs are real even if MLflow cannot hear of their inputs now.
                usages.extend(
                    (run_id, aid, context, uri)
                    for run_id, used in _uses(items).items()
                    for aid, contexts in used.items()
                    for context in contexts
                )
            self._report(usages)

    def _send_to(self, uri: str, items: list[QueuedEvent], usages: list[Usage]) -> None:
        client = self._client(uri)
        # Production first, so consumption profiles can name the producing run.
        for item in items:
            if item.event.kind == "miss":
                try:
                    usages.extend(self._produce(client, uri, item))
                except Exception as exc:  # noqa: BLE001 - MLflow errors never reach feature calls
                    self._fail(uri, exc)
        self._consume(client, uri, items, usages)

    def _consume(
        self, client: MlflowClient, uri: str, items: list[QueuedEvent], usages: list[Usage]
    ) -> None:
        """The consumption edges of a batch: one ``log_inputs`` per consuming run. MLflow
        keeps one input per (dataset, run), the first it is sent: a run that used an artifact
        in two contexts gets it with the first context its code named, and "upstream" only
        when the training code never called that feature itself; the catalog still hears of
        each direct use."""
        entities: dict[str, DatasetEntity] = {}
        for item in items:
            aid = item.event.artifact_id
            if item.consume and aid not in entities:
                entities[aid] = artifact_entity(item.event, self._producers.get(aid))
        for run_id, used in _uses(items).items():
            inputs = [dataset_input(entities[aid], ctxs[0]) for aid, ctxs in used.items()]
            if self._log_inputs(client, uri, run_id, inputs):
                usages.extend((run_id, aid, ctx, uri) for aid, ctxs in used.items() for ctx in ctxs)

    def _log_inputs(
        self, client: MlflowClient, uri: str, run_id: str, inputs: list[DatasetInput]
    ) -> bool:
        """True when the edges count as recorded uses (sent, or lost only to an outage)."""
        try:
            for start in range(0, len(inputs), MAX_INPUTS_PER_CALL):
                client.log_inputs(run_id, datasets=inputs[start : start + MAX_INPUTS_PER_CALL])
        except MlflowException as exc:
            self._fail(uri, exc)
            return exc.error_code not in _REJECTED
        except Exception as exc:  # noqa: BLE001 - MLflow errors never reach feature calls
            self._fail(uri, exc)
        return True

    # -- production runs ----------------------------------------------------------------

    def _produce(self, client: MlflowClient, uri: str, item: QueuedEvent) -> list[Usage]:
        event, scope = item.event, item.scope
        parent = scope.run_id
        experiment_id = None
        if parent is not None:
            experiment_id = scope.experiment_id or self._experiment_of(client, parent)
        if experiment_id is None:
            experiment_id = self._experiment_id(client)
        tags = {
            "fc.kind": "feature",
            "fc.feature": event.feature,
            "fc.code_hash": event.code_digest,
            "fc.cache_key": event.key_id,
            "fc.artifact_id": event.artifact_id,
            "fc.artifact_uri": event.artifact_uri,
            MLFLOW_USER: _user(),
            _NOTE: self._note(event),
        }
        if parent is not None:
            tags[MLFLOW_PARENT_RUN_ID] = parent
        params, left_out = feature_params(event.inputs)
        if left_out:
            tags["fc.params_left_out"] = str(left_out)
        run = client.create_run(
            experiment_id, tags=tags, run_name=f"feature:{event.feature}@{event.code_digest[:8]}"
        )
        run_id = run.info.run_id
        producer = Producer(run_id, run_url(uri, experiment_id, run_id))
        try:
            if params:
                client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
            inputs = [
                dataset_input(
                    upstream_entity(
                        up,
                        self._names.get(up.digest) if up.is_artifact else None,
                        self._producers.get(up.digest) if up.is_artifact else None,
                    ),
                    "source",
                )
                for up in event.upstream
            ]
            inputs.append(dataset_input(artifact_entity(event, producer), "output"))
            client.log_inputs(run_id, datasets=inputs)
            if event.code_source:
                client.log_text(
                    run_id, event.code_source, f"feature_code/{_safe_name(event.feature)}.py"
                )
        finally:
            # The materialisation itself succeeded, whatever part of its record got through.
            _end_run(client, run_id)
        self._producers[event.artifact_id] = producer
        for part_id in event.part_ids:
            self._producers.setdefault(part_id, producer)
        usages: list[Usage] = [(run_id, event.artifact_id, "output", uri)]
        usages.extend((run_id, up.digest, "source", uri) for up in event.upstream if up.is_artifact)
        return usages

    def _note(self, event: ResolvedFeature) -> str:
        """The feature run's description (markdown): what it made and from what."""
        shape = (
            f"a composite of {event.columns} parts"
            if event.structure is not None
            else f"{event.rows:,} rows × {event.columns} columns"
        )
        lines = [
            f"Materialisation of feature `{event.feature}` by featurecache ({shape}).",
            "",
            f"- artifact `{event.artifact_id}` at `{event.artifact_uri}`",
            f"- cache key `{event.key_id}`, code `{event.code_digest}`",
        ]
        for up in event.upstream:
            what = "artifact" if up.is_artifact else "source"
            line = f"- input `{up.argument}`: {what} `{up.digest}`"
            if up.source_uri:
                line += f" at `{up.source_uri}`"
            producer = self._producers.get(up.digest)
            if producer is not None:
                run = f"`{producer.run_id}`"
                line += f", produced by run {f'[{run}]({producer.url})' if producer.url else run}"
            lines.append(line)
        return "\n".join(lines)

    def _experiment_of(self, client: MlflowClient, run_id: str) -> str | None:
        """The experiment of an explicitly bound run (feature runs join it as children)."""
        if run_id not in self._run_experiments:
            try:
                self._run_experiments[run_id] = client.get_run(run_id).info.experiment_id
            except MlflowException as exc:
                self._fail(client.tracking_uri, exc)
                return None
        return self._run_experiments[run_id]

    def _experiment_id(self, client: MlflowClient) -> str:
        uri = client.tracking_uri
        if uri in self._experiments:
            return self._experiments[uri]
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is None:
            try:
                experiment_id = client.create_experiment(self.experiment)
            except MlflowException:
                experiment = client.get_experiment_by_name(self.experiment)  # lost a race
                if experiment is None:
                    raise
                experiment_id = experiment.experiment_id
        elif experiment.lifecycle_stage == "deleted":
            raise RuntimeError(
                f"MLflow experiment {self.experiment!r} is deleted: restore it "
                "or set FEATURECACHE_MLFLOW_EXPERIMENT to another name"
            )
        else:
            experiment_id = experiment.experiment_id
        self._experiments[uri] = experiment_id
        return experiment_id

    # -- plumbing -----------------------------------------------------------------------

    def _client(self, uri: str) -> MlflowClient:
        client = self._clients.get(uri)
        if client is None:
            client = self._clients[uri] = MlflowClient(tracking_uri=uri)
        return client

    def _reachable(self, uri: str) -> bool:
        """False when an HTTP tracking server does not answer; any HTTP answer counts."""
        if not uri.startswith(("http://", "https://")):
            return True
        now = time.monotonic()
        if self._down_until.get(uri, 0.0) > now:
            return False
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=PROBE_TIMEOUT):
                pass
        except urllib.error.HTTPError:
            pass  # it answered: auth or routing is MLflow's business
        except (OSError, ValueError) as exc:  # URLError, refused, timeout, bad URL
            self._down_until[uri] = now + DOWN_SECONDS
            self._fail(uri, exc)
            return False
        self._down_until.pop(uri, None)
        return True

    def _fail(self, uri: str, exc: BaseException) -> None:
        self.failures += 1
        if self._warned:
            log.debug("featurecache: MLflow lineage error at %s: %s", uri, _short(exc))
            return
        self._warned = True
        log.warning(
            "featurecache: could not record MLflow lineage at %s (%s); feature calls are not "
            "affected. Further MLflow errors are logged at debug level.",
            uri,
            _short(exc),
        )

    def _report(self, usages: list[Usage]) -> None:
        if self.on_run_usage is None:
            return
        for run_id, artifact_id, context, uri in dict.fromkeys(usages):
            try:
                self.on_run_usage(run_id, artifact_id, context, uri)
            except Exception as exc:  # noqa: BLE001 - bookkeeping must not stop lineage
                if not self._warned_callback:
                    self._warned_callback = True
                    log.warning("featurecache: could not record an MLflow run's use: %s", exc)


def _uses(items: list[QueuedEvent]) -> dict[str, dict[str, list[str]]]:
    """run id -> artifact id -> the contexts of its consumption edges in ``items``, in the
    order they came: the direct ones only, when the training code called the feature itself
    as well as through another feature ("upstream")."""
    uses: dict[str, dict[str, list[str]]] = {}
    for item in items:
        run_id = item.scope.run_id
        if item.consume and run_id is not None:
            contexts = uses.setdefault(run_id, {}).setdefault(item.event.artifact_id, [])
            if item.scope.context not in contexts:
                contexts.append(item.scope.context)
    for used in uses.values():
        for aid, contexts in used.items():
            used[aid] = [c for c in contexts if c != UPSTREAM_CONTEXT] or contexts
    return uses


def _end_run(client: MlflowClient, run_id: str) -> None:
    # MlflowClient.set_terminated prints "View run …" to stdout for HTTP servers, which would
    # corrupt the output of a `--json` command or a user's script; the store call beneath it
    # is the same request without the print.
    store: Any = getattr(getattr(client, "_tracking_client", None), "store", None)
    if store is not None and hasattr(store, "update_run_info"):
        store.update_run_info(
            run_id, RunStatus.from_string("FINISHED"), int(time.time() * 1000), None
        )
    else:
        client.set_terminated(run_id, "FINISHED")


@functools.cache
def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "unknown"
