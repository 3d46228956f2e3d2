"""Whether this process is a fork-started child (registered at ``import featurecache``, so a
child knows even when the parent used polars before featurecache's I/O was ever loaded).

polars' thread pool does not survive fork(): in such a child, featurecache writes and reads
artifacts through pyarrow, which re-creates its own pool after a fork.
"""

from __future__ import annotations

import os

_forked = False


def _mark_forked() -> None:
    global _forked
    _forked = True


os.register_at_fork(after_in_child=_mark_forked)


def in_forked_child() -> bool:
    return _forked
