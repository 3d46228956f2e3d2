"""A TCP endpoint on 127.0.0.1 that accepts connections and never answers: what a hung S3
endpoint or PostgreSQL server looks like to a client (the connect succeeds, no reply comes).

``answer_head=True`` makes it answer HTTP HEAD requests with 404 Not Found (an object that does
not exist yet) and hang on everything else, so a publish gets past its first HEAD and hangs on
the upload itself.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class BlackHole:
    """Accepts on a loopback port in a daemon thread; keeps every connection open, silent."""

    def __init__(self, *, answer_head: bool = False) -> None:
        self.answer_head = answer_head
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self.accepted = 0
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="blackhole", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            with self._lock:
                self.accepted += 1
                self._connections.append(conn)
            if self.answer_head:
                threading.Thread(target=self._serve_head, args=(conn,), daemon=True).start()

    def _serve_head(self, conn: socket.socket) -> None:
        """Answer HEAD requests with 404; read and ignore anything else."""
        buffer = b""
        try:
            while not self._closed.is_set():
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffer += chunk
                while b"\r\n\r\n" in buffer:
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    if head.split(b" ", 1)[0].upper() == b"HEAD":
                        conn.sendall(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                            b"x-amz-request-id: blackhole\r\n\r\n"
                        )
                    else:
                        buffer = b""  # a request with a body: hang on it (never answer)
        except OSError:
            return

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for conn in self._connections:
                with suppress(OSError):
                    conn.close()
            self._connections.clear()


@contextmanager
def black_hole(*, answer_head: bool = False) -> Iterator[BlackHole]:
    hole = BlackHole(answer_head=answer_head)
    try:
        yield hole
    finally:
        hole.close()
