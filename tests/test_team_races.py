"""Single-flight through the real decorator, in racing processes, on SQLite + a local directory
and on PostgreSQL + S3 (moto): 16 callers of a cold key compute it once; a SIGKILLed owner is
taken over; ``wait=False`` callers both compute and agree on the published result.

Feature outputs here are random on every execution, so a caller that handed back anything but
the one published artifact would print a different digest.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.team_support import (
    BACKENDS,
    BARRIER,
    COUNTER,
    FAST_LEASES,
    TeamBackend,
    clean_stderr,
    executions,
    frame_digest,
    race,
    stop,
    team_backend,
    wait_for_file,
)

pytestmark = pytest.mark.slow  # 16 racing processes, SIGKILLs, PostgreSQL + the moto S3 server

FEATURES = (
    COUNTER
    + """
import secrets, time
import polars as pl
from featurecache import cached_feature

def _frame(n):
    return pl.DataFrame({"i": list(range(n)), "token": [secrets.token_hex(8) for _ in range(n)]})

@cached_feature
def contended(n: int) -> pl.DataFrame:
    _count("contended")
    time.sleep(1.0)  # every racer finds the lease taken and waits
    return _frame(n)

@cached_feature
def owner_dies(n: int) -> pl.DataFrame:
    _count("owner_dies")
    try:
        fd = os.open("owner.pid", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        pass  # the take-over computes straight away
    else:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        time.sleep(600)  # the test SIGKILLs the owner here
    return _frame(n)

@cached_feature(wait=False)
def impatient(n: int) -> pl.DataFrame:
    _count("impatient")
    # Both callers compute: wait (bounded) until the other one is computing too.
    deadline = time.monotonic() + 60
    while _executions("impatient") < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    return _frame(n)
"""
)


def racer(feature: str, n: int) -> str:
    return (
        BARRIER
        + f"""
from features import {feature}
_ready_then_wait()
frame = {feature}({n})
print(json.dumps({{"digest": _digest(frame), "rows": frame.height, "session": _session()}}))
"""
    )


@pytest.fixture(params=BACKENDS)
def team(request: pytest.FixtureRequest, tmp_path: Path) -> TeamBackend:
    backend = team_backend(request, tmp_path)
    backend.project.write("features.py", FEATURES)
    return backend


def only_entry(team: TeamBackend, feature: str) -> str:
    """The artifact id of ``feature``'s one and only cache entry (whose lease is gone: every
    racer has exited, and a lease outliving its holder's normal exit is a leak)."""
    entries = team.entries()
    assert [e[0] for e in entries] == [feature], entries
    assert team.lease_owners() == []  # an owner is host:pid:…, naming the leaking racer
    return entries[0][2]


def test_16_processes_racing_on_a_cold_key_compute_it_once(team: TeamBackend) -> None:
    running = race(team, racer("contended", 200), 16)
    try:
        outputs = [child.finish() for child in running]
    finally:
        stop(running)
    for out in outputs:
        assert out.returncode == 0, out.stderr
        clean_stderr(out.stderr)
    results = [json.loads(out.stdout.strip().splitlines()[-1]) for out in outputs]

    assert len(executions(team, "contended")) == 1
    assert {r["digest"] for r in results} == {results[0]["digest"]}
    assert [r["rows"] for r in results] == [200] * 16
    assert sum(r["session"]["misses"] for r in results) == 1
    assert sum(r["session"]["hits"] for r in results) == 15
    artifact_id = only_entry(team, "contended")
    assert [a.artifact_id for a in team.artifacts()] == [artifact_id]
    assert [o.artifact_id for o in team.stored()] == [artifact_id]
    # What every caller got is the published artifact.
    assert frame_digest(team.artifact_frame(artifact_id)) == results[0]["digest"]
    assert team.usage() == {"contended": (15, 1)}


def test_a_sigkilled_owner_is_taken_over_and_every_caller_finishes(team: TeamBackend) -> None:
    running = race(team, racer("owner_dies", 100), 5, **FAST_LEASES)
    try:
        owner_pid = int(wait_for_file(team.project.root / "owner.pid", running))
        [owner] = [child for child in running if child.pid == owner_pid]
        os.kill(owner_pid, signal.SIGKILL)
        outputs = {child.pid: child.finish() for child in running}
    finally:
        stop(running)

    assert outputs.pop(owner.pid).returncode == -signal.SIGKILL
    for out in outputs.values():
        assert out.returncode == 0, out.stderr
        clean_stderr(out.stderr)
    results = [json.loads(out.stdout.strip().splitlines()[-1]) for out in outputs.values()]
    pids = executions(team, "owner_dies")
    assert len(pids) == 2 and pids[0] == str(owner_pid)  # the owner, then one take-over
    assert {r["digest"] for r in results} == {results[0]["digest"]}
    assert sum(r["session"]["misses"] for r in results) == 1
    assert sum(r["session"]["hits"] for r in results) == 3
    artifact_id = only_entry(team, "owner_dies")
    assert [o.artifact_id for o in team.stored()] == [artifact_id]
    assert frame_digest(team.artifact_frame(artifact_id)) == results[0]["digest"]


def test_wait_false_callers_both_compute_and_return_the_published_result(
    team: TeamBackend,
) -> None:
    running = race(team, racer("impatient", 50), 2)
    try:
        outputs = [child.finish() for child in running]
    finally:
        stop(running)
    for out in outputs:
        assert out.returncode == 0, out.stderr
        clean_stderr(out.stderr)
    results = [json.loads(out.stdout.strip().splitlines()[-1]) for out in outputs]

    assert len(executions(team, "impatient")) == 2
    assert [r["session"]["misses"] for r in results] == [1, 1]
    artifact_id = only_entry(team, "impatient")  # one row for the key: the first commit won
    published = frame_digest(team.artifact_frame(artifact_id))
    # The loser hands back the winner's result, not its own (different) computation.
    assert [r["digest"] for r in results] == [published, published]
