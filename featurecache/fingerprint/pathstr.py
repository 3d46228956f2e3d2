"""Strings that name data: a ``str`` argument that names an existing file or folder, a glob
pattern that matches files, or an ``s3://`` object or prefix is fingerprinted by its text *and*
by the content it names. Real feature code passes data locations as strings
(``f"{folder}/bureau.csv"``, ``"data/"``, ``"data/train/*.parquet"``); hashing only their
text served stale results after the data changed.

Detection is the hot path (every ``str`` argument goes through it), so a string is tested in
this order, and most plain values stop at the first cheap test:

1. Text that cannot be a path a user meant (empty, longer than ``MAX_PATH_CHARS``, holding a
   NUL or a line break) or that is only dots, slashes and tildes (``"."``, ``"/"``, ``"./"``,
   ``"~"``: far more often a separator than a request to hash the working directory, the home
   folder or the whole disk) stays a value without a system call.
2. ``models:/…`` and ``runs:/…`` name an MLflow model, resolved through MLflow
   (``modeluri``): never a plain value, even when MLflow cannot resolve it (an error).
3. ``s3://bucket/key`` asks S3 (``s3object``): an object by its metadata as ``S3Path``, else
   the objects under the prefix ``key/``, else (a key holding ``*``, ``?`` or ``[``) the
   objects the pattern matches.
4. One ``os.stat`` (after ``~`` expansion; relative text is relative to the working
   directory): a regular file or a folder is fingerprinted exactly as ``pathlib.Path`` is
   (``FileFingerprinter``: content hashes behind the host-local stat cache; a folder is
   walked recursively and *nothing* is skipped, hidden files and ``.git`` included, because
   any file a reader of the folder might open must change the key).
5. Text holding ``*``, ``?`` or ``[`` and a letter or digit outside ``[...]`` is globbed (``recursive=True`` so ``**`` spans folders as
   in polars; ``include_hidden=True`` so a hidden file a reader's own globbing would pick up
   still counts): when it matches at least one path, the sorted matches with each file's
   content hash (matched folders walked) are the content. ``"*"``, ``"**"`` or ``"*.*"``
   alone stay values: they would hash the whole working directory.

Anything else names nothing and is a value, fingerprinted exactly as before strings could be
paths. An argument listed in ``@cached_feature(values=[...])`` skips all of this.
"""

from __future__ import annotations

import enum
import glob
import os
import re
import stat as statmod
from pathlib import Path

from featurecache.errors import UnsupportedInputError
from featurecache.fingerprint.files import FileFingerprinter, human_size
from featurecache.fingerprint.modeluri import fingerprint_model_uri, is_model_uri
from featurecache.fingerprint.types import InputFingerprint
from featurecache.hashing import HASH_ALGO, hash_struct

# The longest path Linux accepts (PATH_MAX); longer text is prose or data, never a location.
MAX_PATH_CHARS = 4096
_NEVER_IN_PATHS = re.compile(r"[\x00\n\r]")
_ONLY_DOTS_AND_SLASHES = re.compile(r"[./\\~]*")
_GLOB_MAGIC = re.compile(r"[*?\[]")
_CHAR_CLASS = re.compile(r"\[[^\]]*\]")
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")
_S3_SCHEME = "s3://"


def fingerprint_path_str(
    argument: str, text: str, files: FileFingerprinter
) -> InputFingerprint | None:
    """The fingerprint of ``text`` as the location it names, or None when it names nothing
    (the caller then hashes it as a plain value)."""
    what, local = _locate(text)
    if what == "s3":
        from featurecache.fingerprint.s3object import fingerprint_s3_str

        return fingerprint_s3_str(argument, text)
    if what == "model":
        return fingerprint_model_uri(argument, text)
    try:
        if what == "path":
            return _named_path(argument, text, local, files)
        if what == "glob":
            return _glob(argument, text, local, files)
    except PermissionError as exc:
        # Named but unreadable: hashing only the text could serve a stale result.
        raise UnsupportedInputError(
            argument,
            f"str {text!r}, which names {exc.filename or local} that cannot be read",
            ("readable files and folders",),
            "Make it readable, or list the argument in @cached_feature(values=[...]) to key "
            "on its text only.",
        ) from exc
    return None


def names_data(text: str) -> bool:
    """Whether ``fingerprint_path_str`` would treat ``text`` as a location, without hashing
    anything (an ``s3://`` string still costs one request)."""
    what, _ = _locate(text)
    if what == "s3":
        from featurecache.fingerprint.s3object import fingerprint_s3_str

        return fingerprint_s3_str("", text) is not None
    if what == "model":
        return True
    if what == "glob":
        return (
            next(glob.iglob(text_local(text), recursive=True, include_hidden=True), None)
            is not None
        )
    return what == "path"


def _locate(text: str) -> tuple[str | None, str]:
    """``("s3" | "model" | "path" | "glob" | None, text with ~ expanded)``: what ``text`` may
    name."""
    if not could_be_path(text):
        return None, text
    if text[: len(_S3_SCHEME)].lower() == _S3_SCHEME:
        return "s3", text
    if is_model_uri(text):
        return "model", text
    local = text_local(text)
    try:
        st = os.stat(local)
    except (OSError, ValueError):  # names nothing, or nothing we may look at
        return ("glob" if _is_glob(local) else None), local
    if statmod.S_ISREG(st.st_mode) or statmod.S_ISDIR(st.st_mode):
        return "path", local
    return None, local  # a device or a fifo ("/dev/null"): nothing to fingerprint


def _is_glob(text: str) -> bool:
    """A wildcard pattern that names something: at least one letter or digit outside its
    ``[...]`` classes. ``"*"``, ``"**"`` or ``"?"`` alone would match the whole working
    directory, and such text is far more often a separator or a marker than a data location."""
    if _GLOB_MAGIC.search(text) is None:
        return False
    return _LETTER_OR_DIGIT.search(_CHAR_CLASS.sub("", text)) is not None


def text_local(text: str) -> str:
    return os.path.expanduser(text) if text.startswith("~") else text


def could_be_path(text: str) -> bool:
    """False for text that is never taken for a location (no system call)."""
    if isinstance(text, enum.Enum):
        return False  # a StrEnum member keeps the fingerprint of the Enum value it is
    return (
        0 < len(text) <= MAX_PATH_CHARS
        and _NEVER_IN_PATHS.search(text) is None
        and _ONLY_DOTS_AND_SLASHES.fullmatch(text) is None
    )


def _named_path(argument: str, text: str, local: str, files: FileFingerprinter) -> InputFingerprint:
    """A file or a folder: ``FileFingerprinter`` exactly as for a ``Path``, plus the text."""
    named = files.fingerprint(argument, local)
    return InputFingerprint(
        argument=argument,
        kind=named.kind,
        fingerprint=f"{HASH_ALGO}:{hash_struct(['path-str', text, named.fingerprint])}",
        summary=f"str {text!r}: {named.summary}",
        value={"text": text, **named.value},
        source_uri=named.source_uri,
    )


def _glob(
    argument: str, text: str, local: str, files: FileFingerprinter
) -> InputFingerprint | None:
    matches = sorted(glob.glob(local, recursive=True, include_hidden=True))
    if not matches:
        return None
    base = glob_base(local)
    tree = files.tree_content(matches, base)
    return InputFingerprint(
        argument=argument,
        kind="glob",
        fingerprint=f"{HASH_ALGO}:{hash_struct(['glob', text, tree.content])}",
        summary=f"glob {text!r} ({len(matches):,} matches, {tree.files:,} files, "
        f"{human_size(tree.size)})",
        value={
            "text": text,
            "content": tree.content,
            "matches": len(matches),
            "files": tree.files,
            "size": tree.size,
            "listing": tree.listing,
        },
        source_uri=Path(os.path.abspath(base)).as_uri(),
    )


def glob_base(pattern: str) -> str:
    """The folder every match of ``pattern`` lies under: its parts before the first one that
    holds a wildcard (``"data/train/*.parquet"`` → ``"data/train"``, ``"*.csv"`` → ``"."``)."""
    head = pattern
    while _GLOB_MAGIC.search(head):
        head = os.path.dirname(head)
    return head or "."
