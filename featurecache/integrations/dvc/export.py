"""``export_to_dvc``: bring a cached artifact into a DVC project, as ``dvc import-url`` does,
and pin it so no GC policy removes it.

DVC runs in a child process of this interpreter (``python -m dvc import-url``), so the DVC of
this environment is used, its messages never reach our stdout, and a DVC failure is one typed
error. The ``.dvc`` file it writes records the artifact's md5 and size, frozen (``dvc update``
is a no-op: artifacts are immutable). The copy in the workspace is checked against the file
hash the catalog recorded; on any failure the import is undone and the pin restored.

A local store is imported by path, an S3 store by ``s3://`` URL (which needs DVC's ``dvc-s3``
plugin). The artifact is pinned *before* DVC reads it: a GC run meanwhile must not take it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featurecache.catalog import Catalog
from featurecache.errors import ArtifactNotFoundError, DvcError, MissingDependencyError
from featurecache.hashing import hash_file_bytes
from featurecache.ops.artifact_refs import resolve_artifact_ref
from featurecache.store.base import ArtifactStore

_TIMEOUT_SECONDS = 3600.0


@dataclass(frozen=True)
class DvcExport:
    artifact_id: str
    feature: str | None
    source: str  # what DVC imported: a local path or a URL
    path: Path  # the imported file in the DVC workspace
    dvc_file: Path  # the .dvc file DVC wrote: commit it
    repo_root: Path
    size_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "artifact_id": self.artifact_id,
            "feature": self.feature,
            "source": self.source,
            "path": str(self.path),
            "dvc_file": str(self.dvc_file),
            "repo_root": str(self.repo_root),
            "size_bytes": self.size_bytes,
            "pinned": True,
        }


def dvc_repo_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` holding a ``.dvc/`` directory."""
    start = Path(os.path.abspath(start))
    for folder in (start, *start.parents):
        if (folder / ".dvc").is_dir():
            return folder
    return None


def export_to_dvc(catalog: Catalog, store: ArtifactStore, ref: str, dest: Path) -> DvcExport:
    """Import the artifact ``ref`` names (id, prefix or feature name) at ``dest`` (a file path,
    or an existing folder to put ``<feature>-<id12>.parquet`` in) and pin it."""
    artifact_id = resolve_artifact_ref(catalog, ref)
    artifact = catalog.get_artifact(artifact_id)
    if artifact is None:
        raise ArtifactNotFoundError(ref)
    features = sorted({entry.feature for entry in catalog.entries_for_artifact(artifact_id)})
    feature = features[0] if features else None
    dest = Path(os.path.abspath(dest))
    if dest.is_dir():
        dest = dest / f"{feature or 'artifact'}-{artifact_id[:12]}.parquet"
    root = dvc_repo_root(dest.parent)
    if root is None:
        raise DvcError(
            str(dest),
            "is not inside a DVC repository (no .dvc/ folder above it)",
            "Run `dvc init` in the project, or give a path inside one.",
        )
    if importlib.util.find_spec("dvc") is None:
        raise MissingDependencyError("dvc", "dvc", "featurecache export --dvc")
    local = store.local_path(artifact_id)
    if local is not None and not local.is_file():
        raise ArtifactNotFoundError(artifact_id, store.location)
    source = str(local) if local is not None else store.artifact_uri(artifact_id)

    catalog.set_pinned(artifact_id, True)
    dvc_file = dest.with_name(dest.name + ".dvc")
    imported = False
    try:
        _import_url(root, source, dest)
        imported = True
        _check_copy(dest, artifact.size_bytes, artifact.file_hash)
    except BaseException:
        if imported:
            for path in (dest, dvc_file):
                with contextlib.suppress(OSError):
                    path.unlink()
        if not artifact.pinned:
            catalog.set_pinned(artifact_id, False)
        raise
    return DvcExport(
        artifact_id=artifact_id,
        feature=feature,
        source=source,
        path=dest,
        dvc_file=dvc_file,
        repo_root=root,
        size_bytes=artifact.size_bytes,
    )


def _import_url(root: Path, source: str, dest: Path) -> None:
    command = [sys.executable, "-m", "dvc", "import-url", source, str(dest)]
    try:
        proc = subprocess.run(
            command,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DvcError(str(dest), "dvc import-url did not finish in an hour", "Retry.") from None
    if proc.returncode == 0:
        return
    output = (proc.stderr or "") + (proc.stdout or "")
    errors = [line.strip() for line in output.splitlines() if line.strip().startswith("ERROR")]
    message = " ".join(errors) or " ".join(output.strip().splitlines()[-3:]) or "no output"
    fix = "See DVC's message above."
    if source.startswith("s3://"):
        fix = "Importing from an S3 store needs DVC's S3 plugin: pip install dvc-s3."
    raise DvcError(str(dest), f"dvc import-url failed ({message})", fix)


def _check_copy(path: Path, size: int, file_hash: str) -> None:
    actual_size = path.stat().st_size
    actual_hash = hash_file_bytes(str(path)) if actual_size == size else None
    if actual_hash != file_hash:
        raise DvcError(
            str(path),
            "the imported file does not match the artifact's recorded size and hash",
            "The stored artifact is damaged: run `featurecache verify`, recompute it, retry.",
        )
