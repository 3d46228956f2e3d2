"""Library versions in the code identity: the same-name fast path reads a distribution's
version from the metadata it already parsed, and agrees with ``importlib.metadata``."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

from featurecache.fingerprint.code import libraries


@pytest.mark.parametrize("module", ["polars", "pyarrow.parquet", "numpy", "xxhash"])
def test_versions_agree_with_importlib_metadata(module: str) -> None:
    versions = libraries.library_versions(module)
    assert versions
    for dist, version in versions.items():
        assert version == importlib.metadata.version(dist)


def test_a_fresh_process_reads_each_version_once() -> None:
    # In a fresh process (nothing cached yet): the version comes from the same-name lookup.
    code = (
        "import importlib.metadata as md\n"
        "from featurecache.fingerprint.code import libraries\n"
        "print(libraries.library_versions('polars'), md.version('polars'),"
        " 'polars' in libraries._READ_VERSIONS)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    versions, version, seeded = done.stdout.rsplit(" ", 2)
    assert versions == f"{{'polars': '{version}'}}" and seeded.strip() == "True"
