"""Path literals of a feature's code as observed inputs of its entries.

The code identity lists the path-like string literals of the code it walked
(``code.literals``). They are *not* inputs of the key: whether a file exists is not a property
of the call (a log the body appends to exists for every call but the first, on one host and
not on another), and a key that changes with it would make racing processes and other hosts
compute the same result again. Instead, when a miss has run, each literal is recorded with the
entry like a file the body opened (``observed_inputs``): an existing file or folder by its
fingerprint, a path that names nothing as ``absent``; every later lookup re-validates them
(a stat each when unchanged), so editing, creating or deleting such a file recomputes the entry.

Left out: a literal naming a file the body wrote (or a folder it wrote into): an output; the
file system's root, the working directory and its ancestors (``"./"``, ``"../"``); the
interpreter's folders and the cache's own files (``Exclusions``); and paths the key already
covers (a path argument).
"""

from __future__ import annotations

import os
import stat as statmod
from collections.abc import Iterable, Sequence
from pathlib import Path

from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.observed_inputs import (
    ABSENT,
    Exclusions,
    ObservedInput,
    is_covered,
    observe_path,
)


def literal_observations(
    literals: Sequence[str],
    files: FileFingerprinter,
    exclude: Exclusions,
    *,
    written: Iterable[str] = (),
    covered: Sequence[str] = (),
) -> list[ObservedInput]:
    """The observed inputs that ``literals`` add to an entry computed now."""
    if not literals:
        return []
    wrote = set(written)
    below_written = tuple(wrote)
    cwd = os.path.join(os.getcwd(), "")
    found: list[ObservedInput] = []
    for text in literals:
        absolute = os.path.abspath(os.path.expanduser(text))
        if absolute in wrote or exclude.excludes(absolute) or is_covered(absolute, covered):
            continue
        try:
            st = os.stat(absolute)
        except (OSError, ValueError):
            logical = files.logical_path(Path(absolute))
            found.append(ObservedInput(logical, ABSENT, ABSENT, f"no file {logical}"))
            continue
        if statmod.S_ISDIR(st.st_mode):
            folder = os.path.join(absolute, "")
            if cwd.startswith(folder) or exclude.excludes(folder):
                continue
            if any(path.startswith(folder) for path in below_written):
                continue  # the body wrote into it: its reads there are observed one by one
        elif not statmod.S_ISREG(st.st_mode):
            continue
        item, _ = observe_path(absolute, None, files)
        found.append(item)
    return found
