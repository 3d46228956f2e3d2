"""Decorated functions shipped to worker processes hit the shared cache from there.

``concurrent.futures.ProcessPoolExecutor`` with the spawn and fork start methods, and the
by-reference pickling Dask and Ray use (pickle, cloudpickle): a ``Feature`` pickles as its
module and qualified name, never with its cache, catalog connection or any data. Shipping it
is the executor's business; featurecache itself still pickles nothing.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.e2e import SESSION
from tests.team_support import (
    BACKENDS,
    COUNTER,
    TeamBackend,
    clean_stderr,
    executions,
    team_backend,
)

pytestmark = pytest.mark.slow  # process pools (spawn and fork), PostgreSQL + moto S3 server

FEATURES = (
    COUNTER
    + '''
import polars as pl
from featurecache import FeatureCache, cached_feature

@cached_feature
def squares(n: int) -> pl.DataFrame:
    _count("squares")
    return pl.DataFrame({"i": list(range(n)), "sq": [i * i for i in range(n)]})

@cached_feature
def warm_up(n: int) -> pl.DataFrame:
    _count("warm_up")
    return pl.DataFrame({"w": list(range(n))})

explicit = FeatureCache()  # configured from the environment too, but a cache of its own

@explicit.cached_feature(name="cubes")
def cubes(n: int) -> pl.DataFrame:
    _count("cubes")
    return pl.DataFrame({"c": [i ** 3 for i in range(n)]})

def call_cloudpickled(blob, n):
    """What a Dask or Ray worker does with a task's function: cloudpickle.loads, then call."""
    import cloudpickle
    return cloudpickle.loads(blob)(n)
'''
)


@pytest.fixture(params=BACKENDS)
def team(request: pytest.FixtureRequest, tmp_path: Path) -> TeamBackend:
    backend = team_backend(request, tmp_path)
    backend.project.write("features.py", FEATURES)
    return backend


# The driver ships the decorated function itself to the pool: once, which computes in a worker,
# then six more times, which hit (in that worker, or after waiting for its lease in the other).
DRIVER = (
    SESSION
    + """
import hashlib, multiprocessing, os
from concurrent.futures import ProcessPoolExecutor
from features import squares, warm_up

def digest(frame):
    return hashlib.sha256(frame.write_csv().encode()).hexdigest()

if os.environ.get("TEAM_WARM") == "1":
    warm_up(5)  # the driver's cache is open (connections, threads) when the workers fork
context = multiprocessing.get_context(os.environ["TEAM_START_METHOD"])
with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
    first = pool.submit(squares, 300).result()
    rest = list(pool.map(squares, [300] * 6))
after = warm_up(5) if os.environ.get("TEAM_WARM") == "1" else None
print(json.dumps({
    "driver": str(os.getpid()),
    "digests": sorted({digest(frame) for frame in [first, *rest]}),
    "rows": [frame.height for frame in [first, *rest]],
    "session": _session(),
}))
"""
)

START_METHODS = [
    pytest.param("spawn", "0", id="spawn"),
    pytest.param("fork", "0", id="fork"),
    pytest.param("fork", "1", id="fork-after-use"),
]


@pytest.mark.parametrize(("method", "warm"), START_METHODS)
def test_a_process_pool_computes_once_in_a_worker_and_hits_from_the_others(
    team: TeamBackend, method: str, warm: str
) -> None:
    proc = team.run(DRIVER, TEAM_START_METHOD=method, TEAM_WARM=warm)
    assert proc.returncode == 0, proc.stderr
    clean_stderr(proc.stderr)
    result = json.loads(proc.stdout.strip().splitlines()[-1])

    computed_by = executions(team, "squares")
    assert len(computed_by) == 1 and computed_by[0] != result["driver"]  # once, in a worker
    assert len(result["digests"]) == 1 and result["rows"] == [300] * 7
    assert team.usage()["squares"] == (6, 1)  # the rest hit, in the workers
    if warm == "1":
        # The driver's own cache still works after forking.
        assert executions(team, "warm_up") == [result["driver"]]
        assert result["session"] == {"hits": 1, "misses": 1}
        assert team.usage()["warm_up"] == (1, 1)
    expected = ["squares", "warm_up"] if warm == "1" else ["squares"]
    assert [e[0] for e in team.entries()] == expected


PICKLING = (
    SESSION
    + """
import importlib.util, multiprocessing, pickle
from concurrent.futures import ProcessPoolExecutor
from features import squares, cubes, call_cloudpickled, explicit

out = {}
for when in ("before", "after"):  # pickles the same before and after the cache is opened
    if when == "after":
        squares(10), cubes(10)
    for feature in (squares, cubes):
        blob = pickle.dumps(feature)
        out[f"{feature.name}-{when}"] = [len(blob), pickle.loads(blob) is feature]
        assert b"polars" not in blob and b"sqlite" not in blob and b"postgres" not in blob
if importlib.util.find_spec("cloudpickle") is not None:
    import cloudpickle
    blob = cloudpickle.dumps(cubes)
    out["cloudpickle"] = [len(blob), cloudpickle.loads(blob) is cubes]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        frame = pool.submit(call_cloudpickled, blob, 10).result()
    out["cloudpickle_worker"] = frame["c"].to_list()[:4]
explicit.engine.publisher.flush()
mine = explicit.engine.session
sessions = {"default": _session(), "explicit": {"hits": mine.hits, "misses": mine.misses}}
print(json.dumps({"out": out, "sessions": sessions}))
"""
)


@pytest.mark.parametrize("team", [BACKENDS[0]], indirect=True)  # pickling is backend-blind
def test_features_pickle_by_reference_for_dask_and_ray(team: TeamBackend) -> None:
    result = team.run_json(PICKLING)
    out = result["out"]
    for name in ("squares", "cubes"):
        for when in ("before", "after"):
            size, same = out[f"{name}-{when}"]
            assert same, f"{name} ({when}) did not unpickle to the same feature"
            assert size < 120, f"{name} ({when}) pickles {size} bytes: more than a reference"
    assert result["sessions"] == {
        "default": {"hits": 0, "misses": 1},
        "explicit": {"hits": 0, "misses": 1},
    }
    if importlib.util.find_spec("cloudpickle") is None:
        pytest.skip("cloudpickle is not installed: its by-reference case is untested")
    size, same = out["cloudpickle"]
    assert same and size < 120
    assert out["cloudpickle_worker"] == [0, 1, 8, 27]
    assert len(executions(team, "cubes")) == 1  # the worker hit what the driver computed
    assert team.usage()["cubes"] == (1, 1)
