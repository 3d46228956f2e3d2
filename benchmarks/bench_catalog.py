"""Catalog lookup latency: build a SQLite catalog with many entries, then time
``Catalog.lookup`` (the hot path of every cache hit) for random keys.

    python benchmarks/bench_catalog.py [entries]      # default 1,000,000

Prints one JSON object: median / p90 / p99 lookup latency in milliseconds for hits and for
misses, and the cost of recording a hit. The catalog is built once under
``benchmarks/work/`` and reused by later runs of the same size. A program, not a test: the
numbers depend on the machine.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from featurecache.catalog import Catalog
from featurecache.catalog.database import run_write
from featurecache.catalog.models import Artifact, CacheEntry, CodeVersion, Feature
from featurecache.hashing import hash_struct

WORK = Path(__file__).resolve().parent / "work"
FEATURES = 50
CHUNK = 20_000


def key_of(i: int) -> str:
    return hash_struct(["bench-key", i])


def artifact_of(i: int) -> str:
    return hash_struct(["bench-artifact", i])


def _rows(
    start: int, stop: int, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    artifacts, entries = [], []
    for i in range(start, stop):
        feature = f"feature_{i % FEATURES}"
        artifact_id = artifact_of(i)
        artifacts.append(
            {
                "artifact_id": artifact_id,
                "uri": f"file:///cache/artifacts/{artifact_id[:2]}/{artifact_id[2:]}.parquet",
                "rows": 1000 + i,
                "columns": 5,
                "schema": [{"name": f"c{c}", "type": "int64", "nullable": True} for c in range(5)],
                "size_bytes": 10_000 + i,
                "file_hash": hash_struct(["bench-file", i]),
                "compute_seconds": 1.5,
                "created_at": now,
                "last_used_at": now,
                "hits": 0,
                "pinned": False,
                "deleted_at": None,
            }
        )
        entries.append(
            {
                "key_id": key_of(i),
                "feature": feature,
                "code_digest": hash_struct(["bench-code", i % FEATURES]),
                "artifact_id": artifact_id,
                "return_kind": "polars",
                "components": {
                    "key_scheme": "1",
                    "feature": feature,
                    "code_digest": hash_struct(["bench-code", i % FEATURES]),
                    "inputs": {"gap_minutes": {"kind": "value", "value": i, "summary": str(i)}},
                },
                "created_at": now,
                "last_used_at": now,
                "hits": 0,
            }
        )
    return artifacts, entries


def build(catalog: Catalog, entries: int) -> float:
    """Fill ``catalog`` up to ``entries`` entries (bulk inserts); returns seconds spent."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    have = catalog.engine.connect().execute(select(func.count()).select_from(CacheEntry)).scalar()
    if have == entries:
        return 0.0
    if have:
        raise SystemExit(f"{catalog.url} holds {have} entries, not {entries}: delete it")

    def seed(conn: Any) -> None:
        conn.execute(
            insert(Feature), [{"name": f"feature_{f}", "created_at": now} for f in range(FEATURES)]
        )
        conn.execute(
            insert(CodeVersion),
            [
                {
                    "code_digest": hash_struct(["bench-code", f]),
                    "feature": f"feature_{f}",
                    "source": "def f(x): return x",
                    "components": {},
                    "created_at": now,
                }
                for f in range(FEATURES)
            ],
        )

    run_write(catalog.engine, seed, what="seeding")
    for start in range(0, entries, CHUNK):
        artifacts, rows = _rows(start, min(start + CHUNK, entries), now)

        def chunk(conn: Any, artifacts: Any = artifacts, rows: Any = rows) -> None:
            conn.execute(insert(Artifact), artifacts)
            conn.execute(insert(CacheEntry), rows)

        run_write(catalog.engine, chunk, what="bulk insert")
    return time.perf_counter() - started


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 4),
        "p90_ms": round(pick(0.90) * 1000, 4),
        "p99_ms": round(pick(0.99) * 1000, 4),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 4),
    }


def run(entries: int = 1_000_000, samples: int = 20_000, seed: int = 0) -> dict[str, Any]:
    """Build (or reuse) an ``entries``-entry SQLite catalog and time lookups on it."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"catalog-{entries}.db"
    catalog = Catalog.open(f"sqlite:///{path}")
    try:
        build_seconds = build(catalog, entries)
        rng = random.Random(seed)
        for i in rng.sample(range(entries), min(1000, entries)):  # warm the pool and cache
            catalog.lookup(key_of(i))
        hits: list[float] = []
        for i in (rng.randrange(entries) for _ in range(samples)):
            key = key_of(i)
            started = time.perf_counter()
            found = catalog.lookup(key)
            hits.append(time.perf_counter() - started)
            assert found is not None and found.artifact.artifact_id == artifact_of(i)
        misses: list[float] = []
        for i in range(samples // 4):
            key = hash_struct(["absent", i])
            started = time.perf_counter()
            assert catalog.lookup(key) is None
            misses.append(time.perf_counter() - started)
        events: list[float] = []
        for i in (rng.randrange(entries) for _ in range(1000)):
            started = time.perf_counter()
            catalog.record_event(
                "hit",
                key_id=key_of(i),
                feature=f"feature_{i % FEATURES}",
                artifact_id=artifact_of(i),
                duration_seconds=0.001,
                compute_seconds=1.5,
            )
            events.append(time.perf_counter() - started)
        return {
            "entries": entries,
            "catalog_bytes": path.stat().st_size,
            "build_seconds": round(build_seconds, 1),
            "lookup_hit": _summary(hits),
            "lookup_miss": _summary(misses),
            "record_hit_event": _summary(events),
        }
    finally:
        catalog.close()


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000), indent=2))
