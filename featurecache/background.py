"""The one lifecycle every background queue shares (the publisher, usage events): closed at
interpreter exit before concurrent.futures stops taking work, and forgotten in a forked child.

A forked child inherits its parent's queues as copied memory, but not their threads: flushing
them at the child's exit would write the parent's work a second time (usage events counted
twice) or wait for threads that do not exist. So after a fork every registered queue drops
what it inherited (``forget_after_fork``) and is unregistered; it registers again if the child
uses it.

Also whether this process is a worker that its pool may terminate (``may_be_terminated``):
there, results are published before the call returns, not in the background.

``ProcessPool``: a thread pool made on first use in each process (a forked child has none of
its parent's pool threads, so it makes its own).

And whether this process is a fork-started child at all (registered at ``import
featurecache``): polars' thread pool does not survive fork(), so in such a child artifacts are
written and read through pyarrow, which re-creates its own pool after a fork.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol


class BackgroundQueue(Protocol):
    def close(self) -> None:
        """Finish (or hand off) everything queued; called once at exit."""
        ...

    def forget_after_fork(self) -> None:
        """Drop what was inherited from the parent: its items, locks and threads."""
        ...


class ProcessPool:
    """A thread pool of ``workers`` threads named ``prefix…``, made on first use and made
    again in a forked child, which inherits the pool object but not its threads (a submit
    there would wait forever)."""

    def __init__(self, prefix: str, workers: int) -> None:
        self.prefix = prefix
        self._workers = workers
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0

    def get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix=self.prefix)
                self._pid = os.getpid()
            return self._pool


_open: weakref.WeakSet[BackgroundQueue] = weakref.WeakSet()
_forked = False


def register(queue: BackgroundQueue) -> None:
    """Close ``queue`` at exit (and make it forget its items in a forked child)."""
    _open.add(queue)


def unregister(queue: BackgroundQueue) -> None:
    _open.discard(queue)


def _close_all() -> None:
    for queue in list(_open):
        queue.close()


def _after_fork_in_child() -> None:
    global _forked
    _forked = True
    for queue in list(_open):
        queue.forget_after_fork()
    _open.clear()


def process_gone(pid: int) -> bool:
    """True when no live process ``pid`` exists on this host (exited, or exited and not yet
    reaped). False when unsure: this process, one we may not signal, and Windows (where
    ``os.kill`` would end it)."""
    if sys.platform == "win32" or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists, but we may not signal it
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """Linux: the process has exited and waits to be reaped (``os.kill`` still finds it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            stat = stat_file.read()
    except OSError:
        return False
    # "pid (command) state ...": the command may itself contain ") ".
    end = stat.rfind(b")")
    return end != -1 and stat[end + 2 : end + 3] == b"Z"


def in_forked_child() -> bool:
    return _forked


def may_be_terminated() -> bool:
    """True in a worker process that its pool may end without running exit hooks, so work
    queued in the background there may never be done: a multiprocessing child
    (``multiprocessing.Pool`` terminates its workers at ``__exit__``; every child leaves
    through ``os._exit``; concurrent.futures' process pool workers are such children too), a
    Dask worker, a Ray worker. Only looks at modules the process has already imported."""
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is not None and multiprocessing.parent_process() is not None:
        return True
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        try:
            distributed.get_worker()
        except Exception:  # noqa: BLE001 - not in a Dask worker (ValueError), or an old Dask
            pass
        else:
            return True
    ray = sys.modules.get("ray")
    if ray is not None:
        try:
            worker_module = ray._private.worker
            return bool(worker_module.global_worker.mode == worker_module.WORKER_MODE)
        except Exception:  # noqa: BLE001 - a Ray without these internals: assume a driver
            return False
    return False


# Pending work must finish before concurrent.futures' own exit hook, after which no thread
# pool accepts work (a publish to S3 uploads its parts through one): threading's exit hooks run
# before atexit's, last registered first, and concurrent.futures.thread registers its hook when
# it is imported, which is done here first. atexit is the fallback where that hook is missing.
import concurrent.futures.thread  # noqa: E402, F401 - its exit hook must be registered before ours

try:
    threading._register_atexit(_close_all)  # type: ignore[attr-defined]
except (AttributeError, RuntimeError):
    atexit.register(_close_all)
os.register_at_fork(after_in_child=_after_fork_in_child)
