"""`why` names the file that changed inside a file, folder, glob or list-of-paths argument,
from real fingerprints of real files."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from featurecache.fingerprint import listing as listing_module
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.inputs import fingerprint_input
from featurecache.fingerprint.types import InputFingerprint
from featurecache.ops.key_diff import explain_change
from featurecache.ops.key_diff_wording import file_changes
from tests.ops.test_key_diff import entry


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    (root / "data" / "train").mkdir(parents=True)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def files(project: Path, tmp_path: Path) -> Iterator[FileFingerprinter]:
    with FileFingerprinter(
        tmp_path / "state", project_root=project, clock=lambda: time.time_ns() + 3600 * 10**9
    ) as fingerprinter:
        yield fingerprinter


def why(argument: str, before: InputFingerprint, after: InputFingerprint) -> list[str]:
    """The `why` lines between two calls whose only input is ``argument``."""
    return explain_change(
        entry(inputs={argument: before}), entry(inputs={argument: after})
    ).messages()


def test_a_folder_argument_names_the_changed_added_and_removed_files(
    files: FileFingerprinter, project: Path
) -> None:
    train = project / "data" / "train"
    (train / "2024-01-01.parquet").write_bytes(b"one")
    (train / "2024-01-02.parquet").write_bytes(b"two")
    before = fingerprint_input("folder", "data/train", files=files)
    (train / "2024-01-02.parquet").write_bytes(b"TWO")
    (train / "2024-01-03.parquet").write_bytes(b"three")
    (train / "2024-01-01.parquet").unlink()
    after = fingerprint_input("folder", "data/train", files=files)

    assert why("folder", before, after) == [
        "argument `folder`: file data/train/2024-01-01.parquet removed; "
        "file data/train/2024-01-02.parquet changed; file data/train/2024-01-03.parquet added"
    ]


def test_a_file_and_a_glob_argument(files: FileFingerprinter, project: Path) -> None:
    path = project / "data" / "bureau.csv"
    path.write_bytes(b"a,b\n1,2\n")
    file_before = fingerprint_input("path", "data/bureau.csv", files=files)
    glob_before = fingerprint_input("pattern", "data/*.csv", files=files)
    st = path.stat()
    path.write_bytes(b"a,b\n1,3\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

    assert why("path", file_before, fingerprint_input("path", "data/bureau.csv", files=files)) == [
        "argument `path`: file data/bureau.csv changed"
    ]
    assert why("pattern", glob_before, fingerprint_input("pattern", "data/*.csv", files=files)) == [
        "argument `pattern`: file data/bureau.csv changed"
    ]


def test_a_path_object_folder_names_its_files_too(files: FileFingerprinter, project: Path) -> None:
    (project / "data" / "a.csv").write_bytes(b"1")
    before = fingerprint_input("folder", project / "data", files=files)
    (project / "data" / "b.csv").write_bytes(b"2")
    after = fingerprint_input("folder", project / "data", files=files)
    assert why("folder", before, after) == ["argument `folder`: file data/b.csv added"]


def test_a_list_of_paths_names_the_part(files: FileFingerprinter, project: Path) -> None:
    (project / "data" / "a.csv").write_bytes(b"1")
    (project / "data" / "b.csv").write_bytes(b"2")
    before = fingerprint_input("paths", ["data/a.csv", "data/b.csv"], files=files)
    (project / "data" / "b.csv").write_bytes(b"3")
    after = fingerprint_input("paths", ["data/a.csv", "data/b.csv"], files=files)
    assert why("paths", before, after) == ["argument `paths`: paths[1]: file data/b.csv changed"]


def test_past_the_listing_cap_why_counts_files(
    files: FileFingerprinter, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing_module, "LISTED_FILES_MAX", 2)
    for name in "abc":
        (project / "data" / f"{name}.csv").write_bytes(b"1")
    before = fingerprint_input("folder", "data", files=files)
    (project / "data" / "a.csv").write_bytes(b"2")
    edited = fingerprint_input("folder", "data", files=files)
    (project / "data" / "d.csv").write_bytes(b"2")
    added = fingerprint_input("folder", "data", files=files)

    assert why("folder", before, edited) == [
        "argument `folder`: a file among 3 changed (too many to name each)"
    ]
    assert why("folder", edited, added) == [
        "argument `folder`: 3 → 4 files (too many to name each)"
    ]


def test_many_changed_files_are_counted_after_ten(files: FileFingerprinter, project: Path) -> None:
    before = fingerprint_input("folder", "data", files=files)
    for i in range(12):
        (project / "data" / f"{i:02}.csv").write_bytes(b"1")
    after = fingerprint_input("folder", "data", files=files)
    (line,) = why("folder", before, after)
    assert line.count(" added;") == 10 and line.endswith("2 more files changed, added or removed")


def test_frames_and_values_keep_their_wording() -> None:
    frame = {"kind": "polars", "fingerprint": "xxh3_128:" + "a" * 32, "value": None}
    assert file_changes(frame, {**frame, "fingerprint": "xxh3_128:" + "b" * 32}) == []
