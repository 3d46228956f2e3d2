"""Which lease owners are known dead (``singleflight.owner_is_dead``) and which processes may
be terminated by their pool (``background.may_be_terminated``)."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys

import pytest

from featurecache import background
from featurecache.singleflight import new_owner, owner_is_dead

HOST = socket.gethostname()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: the pid names no process (until it is reused)
    return child.pid


def test_only_a_missing_process_on_this_host_is_dead() -> None:
    pid = dead_pid()
    assert owner_is_dead(f"{HOST}:{pid}:abcd1234")
    assert owner_is_dead(f"{HOST}:{pid}:abcd1234:140245")  # the engine's per-thread owner
    assert not owner_is_dead(f"another-{HOST}:{pid}:abcd1234")  # another host: unknown
    assert not owner_is_dead(new_owner())  # this process
    assert not owner_is_dead(f"{HOST}:{os.getppid()}:abcd1234")  # alive
    assert not owner_is_dead(f"{HOST}:notapid:abcd1234")
    assert not owner_is_dead("crashed-owner")
    assert not owner_is_dead(f"{HOST}:0:abcd1234")  # os.kill(0) would mean our group


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_an_unreaped_child_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
        assert owner_is_dead(f"{HOST}:{child.pid}:abcd1234")
    finally:
        child.wait()


def test_an_ordinary_process_is_not_a_terminable_worker() -> None:
    assert not background.may_be_terminated()


def _report(queue: multiprocessing.Queue[bool]) -> None:
    queue.put(background.may_be_terminated())


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_multiprocessing_child_is_a_terminable_worker(method: str) -> None:
    ctx = multiprocessing.get_context(method)
    queue: multiprocessing.Queue[bool] = ctx.Queue()
    child = ctx.Process(target=_report, args=(queue,))
    child.start()
    try:
        assert queue.get(timeout=300) is True
    finally:
        child.join(timeout=300)
