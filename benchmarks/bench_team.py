"""The cost of a hit in team mode: PostgreSQL + S3 against SQLite + a local directory.

In-process repeated hits (process start-up and the first open excluded) of a small and a medium
artifact through ``FeatureCache.cached_feature``, with the two halves of a hit timed apart: the
catalog lookup, the artifact read from the store, and the usage event a hit records. S3 is moto's server on 127.0.0.1, started
here; the PostgreSQL catalog lives in a fresh schema dropped at the end. Loopback numbers: a
real network adds its round trips to the PostgreSQL and S3 columns.

Run: ``python benchmarks/bench_team.py [--repeat N] [--small ROWS] [--medium ROWS]``;
``run()`` returns the results as a dict. It is a program, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from featurecache import FeatureCache

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BUCKET = "featurecache-bench"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "featurecache-bench",
    "AWS_SECRET_ACCESS_KEY": "featurecache-bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def make_frame(rows: int) -> pl.DataFrame:
    """Five columns of mixed types, ~30 bytes a row: ids, a category, a float, a timestamp."""
    rng = np.random.default_rng(20240611)
    return pl.DataFrame(
        {
            "user_id": rng.integers(0, 100_000, rows),
            "item_id": rng.integers(0, 5_000, rows).astype(np.int32),
            "amount": rng.random(rows),
            "country": rng.choice(np.array(["DE", "FR", "US", "JP"]), rows),
            "ts": np.datetime64("2026-01-01T00:00:00", "us") + np.arange(rows) * 1_000_000,
        }
    ).with_columns(pl.col("country").cast(pl.Categorical))


def bench_team(rows: int) -> pl.DataFrame:
    """The feature whose hits are timed."""
    return make_frame(rows)


# -- services ---------------------------------------------------------------------------------


@contextlib.contextmanager
def moto_server(log_path: Path) -> Iterator[str]:
    """moto's S3 server in a subprocess on a free loopback port; yields its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    url = f"http://127.0.0.1:{port}"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto did not start (log: {log_path})") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def aws_environment(endpoint_url: str) -> Iterator[None]:
    """Point boto3 (and polars' object_store) at the endpoint with dummy credentials."""
    changes = {**AWS_ENV, "AWS_ENDPOINT_URL": endpoint_url}
    saved = {name: os.environ.get(name) for name in [*changes, "AWS_PROFILE"]}
    os.environ.update(changes)
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def pg_schema(base_url: str) -> Iterator[str]:
    """A catalog URL in a fresh PostgreSQL schema, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    libpq = make_url(base_url).set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"fc_bench_{secrets.token_hex(4)}"
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- measurement ------------------------------------------------------------------------------


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(catalog: str, store: str, sizes: dict[str, int], repeat: int) -> dict[str, Any]:
    """Median hit, lookup and read milliseconds per size, on one cache."""
    cache = FeatureCache(catalog=catalog, store=store, background_publish=False)
    feature: Any = cache.cached_feature(bench_team)
    results: dict[str, Any] = {}
    try:
        engine = cache.engine
        for name, rows in sizes.items():
            feature(rows)  # the miss that publishes
            key, _inputs = engine.key_for(feature, (rows,), {})
            hit = engine.catalog.lookup(key.key_id)
            assert hit is not None
            artifact_id = hit.artifact.artifact_id
            feature(rows)  # warm: connections, code identity, page cache
            record = partial(
                engine.catalog.record_event,
                "hit",
                key_id=key.key_id,
                feature=feature.name,
                artifact_id=artifact_id,
                duration_seconds=0.0,
                compute_seconds=0.0,
            )
            results[name] = {
                "rows": rows,
                "artifact_bytes": hit.artifact.size_bytes,
                "hit_ms": _median_ms(partial(feature, rows), repeat),
                "lookup_ms": _median_ms(partial(engine.catalog.lookup, key.key_id), repeat),
                "read_ms": _median_ms(partial(engine.store.read_bytes, artifact_id), repeat),
                "record_ms": _median_ms(record, repeat),
            }
        results["session"] = {"hits": engine.session.hits, "misses": engine.session.misses}
    finally:
        cache.close()
    return results


def run(small: int = 100_000, medium: int = 2_000_000, repeat: int = 15) -> dict[str, Any]:
    sizes = {"small": small, "medium": medium}
    pg_base = os.environ.get("FEATURECACHE_TEST_PG_URL", DEFAULT_PG_URL)
    results: dict[str, Any] = {"repeat": repeat, "load": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="bench-team-") as folder:
        work = Path(folder)
        results["sqlite+local"] = measure(
            f"sqlite:///{work / 'catalog.db'}", str(work / "artifacts"), sizes, repeat
        )
        with moto_server(work / "moto.log") as endpoint, aws_environment(endpoint):
            import boto3

            boto3.session.Session().client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
            with pg_schema(pg_base) as catalog_url:
                results["postgres+s3"] = measure(catalog_url, f"s3://{BUCKET}/bench", sizes, repeat)
    results["ratio"] = {
        name: results["postgres+s3"][name]["hit_ms"] / results["sqlite+local"][name]["hit_ms"]
        for name in sizes
    }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--medium", type=int, default=2_000_000)
    args = parser.parse_args(argv)
    results = run(args.small, args.medium, args.repeat)
    print(f"median of {results['repeat']} in-process hits  (load {results['load']:.1f})")
    print(
        f"{'backend':<14}{'size':<8}{'rows':>11}{'MB':>7}{'hit ms':>9}"
        f"{'lookup ms':>11}{'read ms':>9}{'record ms':>11}"
    )
    for backend in ("sqlite+local", "postgres+s3"):
        for size in ("small", "medium"):
            r = results[backend][size]
            print(
                f"{backend:<14}{size:<8}{r['rows']:>11,}{r['artifact_bytes'] / 1e6:>7.1f}"
                f"{r['hit_ms']:>9.1f}{r['lookup_ms']:>11.2f}{r['read_ms']:>9.1f}"
                f"{r['record_ms']:>11.2f}"
            )
    for size, ratio in results["ratio"].items():
        print(f"postgres+s3 / sqlite+local hit, {size}: x{ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
