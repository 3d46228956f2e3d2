"""The listing kept with a folder, glob or ``s3://`` prefix fingerprint: ``{path: short
content hash}`` of its files, so that ``featurecache why`` can name the file that changed,
added or removed. It is stored with the key's components in the catalog, hence capped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# ``why`` names the changed file of a folder or glob argument from a listing stored with the
# key's components; past this many files only the count and the Merkle digest are stored, so
# a folder of 100,000 files does not put megabytes into every catalog row.
LISTED_FILES_MAX = 500
# The listing shows a prefix of each file's content hash: enough to tell an edit, and the full
# hashes are already inside the Merkle digest that makes the key.
_LISTED_DIGEST_CHARS = 16


@dataclass(frozen=True)
class TreeContent:
    """What a set of files and folders hashed to (a glob's matches)."""

    content: str  # algorithm-prefixed Merkle digest of every entry
    files: int
    size: int
    listing: dict[str, str] | None  # file path -> short content hash; None past the cap


def file_listing(entries: Sequence[Sequence[Any]], *, prefix: str) -> dict[str, str] | None:
    """``{path: short content hash}`` of the regular files among walk ``entries`` (their paths
    joined to ``prefix``), or None when there are more than ``LISTED_FILES_MAX``."""
    listing: dict[str, str] = {}
    for entry in entries:
        if entry[0] != "file":
            continue
        if len(listing) == LISTED_FILES_MAX:
            return None
        name = f"{prefix.rstrip('/')}/{entry[1]}" if prefix else str(entry[1])
        listing[name] = str(entry[2]).rpartition(":")[2][:_LISTED_DIGEST_CHARS]
    return listing
