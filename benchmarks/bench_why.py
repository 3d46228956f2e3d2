"""``featurecache why`` latency on a feature with a long history: build a SQLite catalog with
many keys of one feature (each used a few times), then time ``why_in_catalog`` for the latest
key and for ``--args``, which search the feature's latest ``SCAN_LIMIT`` keys.

    python benchmarks/bench_why.py [keys] [events_per_key]      # default 5,000 and 3

Prints one JSON object: the median and p90 in milliseconds of each. A program, not a test:
the numbers depend on the machine.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from featurecache.catalog import Catalog
from featurecache.catalog.queries import UsageEvent
from featurecache.catalog.records import ArtifactRecord, CodeVersionRecord, EntryRecord
from featurecache.hashing import hash_struct
from featurecache.ops.why import why_in_catalog
from featurecache.ops.why_match import SCAN_LIMIT

FEATURE = "deep"
RUNS = 20


def _components(i: int, code: str) -> dict[str, Any]:
    """About what a real key stores: a code identity with a few dependencies, three inputs."""
    return {
        "key_scheme": "1",
        "feature": FEATURE,
        "code_digest": code,
        "code": {
            "function": {"qualname": FEATURE, "digest": code, "body": code, "file": "f.py"},
            "dependencies": {
                f"pipeline.util:helper_{d}": {"kind": "function", "digest": hash_struct(["dep", d])}
                for d in range(5)
            },
            "libraries": {"polars": "2.1.0", "numpy": "2.3.0"},
        },
        "inputs_digest": hash_struct(["inputs", i]),
        "inputs": {
            "df": {"kind": "polars", "fingerprint": "xxh3_128:" + hash_struct(["df", i % 7])},
            "depth": {"kind": "value", "fingerprint": hash_struct(["d", i % 10]), "value": i % 10},
            "label": {"kind": "value", "fingerprint": hash_struct(["l"]), "value": "x"},
        },
    }


def build(catalog: Catalog, keys: int, events_per_key: int) -> None:
    start = datetime.now(UTC) - timedelta(days=30)
    events: list[UsageEvent] = []
    for i in range(keys):
        code = hash_struct(["code", i // 50])  # a code edit every 50 keys
        key_id, artifact_id = hash_struct(["key", i]), hash_struct(["artifact", i])
        catalog.publish(
            EntryRecord(key_id, FEATURE, code, artifact_id, "polars", _components(i, code)),
            ArtifactRecord(artifact_id, f"file:///{artifact_id}", 10, 2, [], 100, "h", 0.1),
            [],
            CodeVersionRecord(code, FEATURE, "def deep(df, depth, label): ..."),
        )
        for n in range(events_per_key):
            at = start + timedelta(seconds=i * 10 + n)
            events.append(UsageEvent("hit", key_id, FEATURE, artifact_id, 0.001, 0.1, at=at))
        if len(events) >= 5_000:
            catalog.record_events(events)
            events = []
    catalog.record_events(events)


def timed(fn: Callable[[], object]) -> dict[str, float]:
    samples = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p90_ms": round(samples[int(len(samples) * 0.9) - 1], 2),
    }


def main() -> None:
    keys = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    events_per_key = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog.open(f"sqlite:///{Path(tmp) / 'catalog.db'}")
        try:
            t0 = time.perf_counter()
            build(catalog, keys, events_per_key)
            built = time.perf_counter() - t0
            result = {
                "keys": keys,
                "usage_events": keys * events_per_key,
                "scan_limit": SCAN_LIMIT,
                "build_seconds": round(built, 1),
                # The query alone: what the old `why` read (2 keys) and what it reads now.
                "recent_entries_2": timed(lambda: catalog.recent_entries(FEATURE, limit=2)),
                "recent_entries_scan": timed(
                    lambda: catalog.recent_entries(FEATURE, limit=SCAN_LIMIT)
                ),
                "why_latest": timed(lambda: why_in_catalog(catalog, FEATURE)),
                "why_args_latest_match": timed(
                    lambda: why_in_catalog(catalog, FEATURE, {"depth": (keys - 1) % 10})
                ),
                "why_args_no_match": timed(
                    lambda: _no_match(catalog)  # the whole window searched, then the error
                ),
            }
        finally:
            catalog.close()
    print(json.dumps(result))


def _no_match(catalog: Catalog) -> None:
    from featurecache.ops.why_match import NoMatchingCallError

    try:
        why_in_catalog(catalog, FEATURE, {"depth": 99})
    except NoMatchingCallError:
        return
    raise AssertionError("depth=99 matched a key")


if __name__ == "__main__":
    main()
