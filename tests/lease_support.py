"""Waiting for a lease owner to notice it lost its lease, without betting on a sleep: its
heartbeat logs "lost the lease" (``featurecache.singleflight``) the moment it finds the row
taken, however loaded the machine is."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

LOST_WAIT_SECONDS = 120.0  # a bound for a wedged test, never the expected time


class _LossSeen(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "lost the lease" in record.getMessage():
            self.event.set()


@contextmanager
def lease_loss_seen() -> Iterator[threading.Event]:
    """An event set when this process's heartbeat finds one of its leases taken."""
    handler = _LossSeen()
    logger = logging.getLogger("featurecache.singleflight")
    logger.addHandler(handler)
    try:
        yield handler.event
    finally:
        logger.removeHandler(handler)
