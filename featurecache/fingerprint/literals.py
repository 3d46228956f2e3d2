"""Path literals of a feature's code as inputs of its key, checked at each call.

The code identity lists the path-like string literals of the code it walked
(``code.literals``); here, those naming an existing file or folder (relative to the working
directory, or absolute) are fingerprinted like a path argument (stat cache: microseconds when
unchanged) and enter the key as inputs named ``file:<literal>``, a name no argument can have.
A function without such a literal gets no extra input, so its key is exactly what it was
before path literals were tracked.

A literal naming a file some body wrote is an output, not an input (``fingerprint.written``);
folders that cannot be a feature's data are skipped too: the file system's root, the working
directory and its ancestors (``"./"``, ``"../"``), and the interpreter's own folders.
"""

from __future__ import annotations

import os
import stat as statmod
from collections.abc import Sequence

from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.observed_inputs import Exclusions
from featurecache.fingerprint.types import InputFingerprint
from featurecache.fingerprint.written import WrittenPaths

LITERAL_PREFIX = "file:"


def literal_inputs(
    literals: Sequence[str],
    files: FileFingerprinter,
    exclude: Exclusions,
    written: WrittenPaths | None = None,
) -> dict[str, InputFingerprint]:
    """``{"file:data/labels.csv": fingerprint}`` for each literal naming an existing file or
    folder now, unless a body wrote it (``written``: an output); a literal that names nothing
    costs one failed stat."""
    found: dict[str, InputFingerprint] = {}
    if not literals:
        return found
    cwd = os.path.join(os.getcwd(), "")
    for text in literals:
        try:
            st = os.stat(text)
        except (OSError, ValueError):
            continue
        absolute = os.path.abspath(text)
        if statmod.S_ISDIR(st.st_mode):
            if cwd.startswith(os.path.join(absolute, "")) or exclude.excludes(
                os.path.join(absolute, "")
            ):
                continue
        elif not statmod.S_ISREG(st.st_mode) or exclude.excludes(absolute):
            continue
        if written is not None and written.covers(absolute, folder=statmod.S_ISDIR(st.st_mode)):
            continue
        name = LITERAL_PREFIX + text
        found[name] = files.fingerprint(name, text)
    return found
