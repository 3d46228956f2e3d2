"""Paths that bodies write: outputs, never inputs of a key.

A path literal in a feature's code may name a file the body *writes* (a log, an export:
``open("calls.log", "a")``, ``df.to_csv("out/report.csv")``). Were it an input, every run
would change it and the next key with it: the feature would never hit. When a miss writes a
file that one of its path literals names (or that lies under a folder one names), the path is
remembered here, host-wide, and ``fingerprint.literals`` leaves it out of every key from then
on. A body that reads such a file is still covered: the read is an observed input of its
entry (``fingerprint.observed_inputs``), re-validated at each lookup.

Kept in ``<state_dir>/written-paths.json`` (host-local, like the stat cache): read once per
process, rewritten (temp file + rename) when a new path is learned. Two processes learning at
once may lose one's addition; that costs one extra miss later, never a wrong result.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

FILE_NAME = "written-paths.json"
_MAX_PATHS = 10_000


class WrittenPaths:
    """The host's set of absolute paths bodies wrote that their code names as literals."""

    def __init__(self, state_dir: Path) -> None:
        self._file = Path(state_dir) / FILE_NAME
        self._lock = threading.Lock()
        self._paths: set[str] | None = None

    def _loaded(self) -> set[str]:
        if self._paths is None:
            try:
                data = json.loads(self._file.read_text())
                self._paths = (
                    {p for p in data if isinstance(p, str)} if isinstance(data, list) else set()
                )
            except (OSError, ValueError):
                self._paths = set()
        return self._paths

    def covers(self, absolute: str, *, folder: bool) -> bool:
        """Whether ``absolute`` was written by a body (a folder: any file below it)."""
        with self._lock:
            paths = self._loaded()
            if not paths:
                return False
            if not folder:
                return absolute in paths
            below = os.path.join(absolute, "")
            return any(path.startswith(below) for path in paths)

    def learn(self, written: Iterable[str], literals: Sequence[str]) -> None:
        """Remember the written paths that a literal of the code names (or lies above)."""
        if not literals:
            return
        targets = {os.path.abspath(text) for text in literals}
        folders = tuple(os.path.join(target, "") for target in targets)
        new = {p for p in written if p in targets or p.startswith(folders)}
        if not new:
            return
        with self._lock:
            paths = self._loaded()
            if new <= paths:
                return
            paths.update(new)
            self._save(sorted(paths)[:_MAX_PATHS])

    def _save(self, paths: list[str]) -> None:
        with contextlib.suppress(OSError):  # best effort: a cache of what is an output
            self._file.parent.mkdir(parents=True, exist_ok=True)
            temp = self._file.with_name(f"{FILE_NAME}.{os.getpid()}.tmp")
            temp.write_text(json.dumps(paths))
            os.replace(temp, self._file)
