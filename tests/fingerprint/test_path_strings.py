"""``str`` arguments that name a file, a folder or a glob are fingerprinted by their text and
the content they name; a ``str`` that names nothing keeps its value fingerprint exactly."""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from featurecache.errors import UnsupportedInputError
from featurecache.fingerprint import listing as listing_module
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.inputs import fingerprint_input
from featurecache.fingerprint.pathstr import could_be_path, glob_base, names_data
from featurecache.fingerprint.types import InputFingerprint
from featurecache.fingerprint.values import value_digest

HOUR_NS = 3600 * 10**9


def later_clock() -> int:
    """A clock an hour ahead: every file looks old enough to trust (no sleeping in tests)."""
    return time.time_ns() + HOUR_NS


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder that is also the working directory: relative strings resolve in it."""
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def files(project: Path, tmp_path: Path) -> Iterator[FileFingerprinter]:
    fingerprinter = FileFingerprinter(tmp_path / "state", project_root=project, clock=later_clock)
    yield fingerprinter
    fingerprinter.close()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def rewrite_keeping_stat_times(path: Path, data: bytes) -> None:
    """New bytes of the same size with the old mtime: only the content (and ctime) differ."""
    st = path.stat()
    assert len(data) == st.st_size
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def fp(value: object, files: FileFingerprinter, *, str_paths: bool = True) -> InputFingerprint:
    return fingerprint_input("arg", value, files=files, str_paths=str_paths)


def value_fingerprint(value: object) -> str:
    """What every plain value hashed to before strings could be paths (the golden rule)."""
    return f"xxh3_128:{value_digest(value)}"


# -- a file ------------------------------------------------------------------------------


def test_a_str_naming_a_file_counts_by_its_content(files: FileFingerprinter, project: Path) -> None:
    bureau = write(project / "data" / "bureau.csv", b"id,amount\n1,10\n")
    relative, absolute = "data/bureau.csv", str(bureau)

    first = fp(relative, files)
    assert first.kind == "file"
    assert first.value["text"] == relative and first.value["path"] == "data/bureau.csv"
    assert first.summary.startswith("str 'data/bureau.csv': file data/bureau.csv")
    assert first.source_uri == bureau.as_uri()
    # The text counts too: the body may use it (``path.replace(".csv", ".parquet")``).
    assert fp(absolute, files).fingerprint != first.fingerprint
    assert fp(Path(relative), files).fingerprint != first.fingerprint
    assert first.fingerprint != value_fingerprint(relative)
    assert fp(relative, files) == first  # stable while untouched

    rewrite_keeping_stat_times(bureau, b"id,amount\n1,11\n")
    assert fp(relative, files).fingerprint != first.fingerprint


def test_relative_text_is_relative_to_the_working_directory(
    files: FileFingerprinter, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project / "data" / "x.csv", b"1")
    assert fp("x.csv", files).kind == "value"
    monkeypatch.chdir(project / "data")
    assert fp("x.csv", files).kind == "file"


def test_tilde_is_expanded(
    files: FileFingerprinter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    write(home / "labels.csv", b"a")
    monkeypatch.setenv("HOME", str(home))
    found = fp("~/labels.csv", files)
    assert found.kind == "file" and found.value["text"] == "~/labels.csv"


# -- a folder ----------------------------------------------------------------------------


def test_a_str_naming_a_folder_counts_every_file_below_it(
    files: FileFingerprinter, project: Path
) -> None:
    train = project / "data" / "train"
    write(train / "2024-01-01.parquet", b"day one")
    write(train / "2024-01-02.parquet", b"day two")
    write(project / "data" / "labels.csv", b"y\n1\n")

    first = fp("data/", files)
    assert first.kind == "directory" and first.value["files"] == 3
    assert first.value["listing"] == {
        "data/labels.csv": first.value["listing"]["data/labels.csv"],
        "data/train/2024-01-01.parquet": first.value["listing"]["data/train/2024-01-01.parquet"],
        "data/train/2024-01-02.parquet": first.value["listing"]["data/train/2024-01-02.parquet"],
    }
    assert fp("data", files).fingerprint != first.fingerprint  # the text differs
    seen = {first.fingerprint}
    steps: list[Callable[[], object]] = [
        lambda: rewrite_keeping_stat_times(train / "2024-01-02.parquet", b"day 2!!"),
        lambda: write(train / "2024-01-03.parquet", b"day three"),
        lambda: (train / "2024-01-01.parquet").unlink(),
        # Nothing is skipped: a reader of the folder may read hidden and VCS files too.
        lambda: write(project / "data" / ".hidden.csv", b"h"),
        lambda: write(project / "data" / ".git" / "HEAD", b"ref"),
    ]
    for step in steps:
        step()
        now = fp("data/", files).fingerprint
        assert now not in seen
        seen.add(now)


def test_an_unchanged_folder_is_revalidated_from_the_stat_cache(
    files: FileFingerprinter, project: Path
) -> None:
    for day in range(20):
        write(project / "data" / f"{day:02}.csv", str(day).encode())
    first = fp("data", files)
    hashed = files.files_hashed
    assert fp("data", files) == first
    assert files.files_hashed == hashed  # nothing re-read: one stat per file


def test_a_huge_folder_stores_a_count_not_a_listing(
    files: FileFingerprinter, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing_module, "LISTED_FILES_MAX", 3)
    for day in range(3):
        write(project / "data" / f"{day}.csv", b"x")
    assert fp("data", files).value["listing"] is not None
    write(project / "data" / "3.csv", b"x")
    over = fp("data", files)
    assert over.value["listing"] is None and over.value["files"] == 4
    rewrite_keeping_stat_times(project / "data" / "3.csv", b"y")
    assert fp("data", files).fingerprint != over.fingerprint  # still keyed by every file


# -- a glob ------------------------------------------------------------------------------


def test_a_glob_counts_the_files_it_matches(files: FileFingerprinter, project: Path) -> None:
    train = project / "data" / "train"
    write(train / "a.parquet", b"aaa")
    write(train / "b.parquet", b"bbb")
    write(train / "notes.txt", b"not matched")

    first = fp("data/train/*.parquet", files)
    assert first.kind == "glob"
    assert set(first.value["listing"]) == {"data/train/a.parquet", "data/train/b.parquet"}
    assert first.source_uri == train.as_uri()

    write(train / "notes.txt", b"still not matched")
    assert fp("data/train/*.parquet", files) == first
    seen = {first.fingerprint}
    for step in (
        lambda: rewrite_keeping_stat_times(train / "b.parquet", b"BBB"),
        lambda: write(train / "c.parquet", b"ccc"),
        lambda: (train / "a.parquet").unlink(),
        lambda: write(train / ".d.parquet", b"hidden, but a reader's glob may see it"),
    ):
        step()
        now = fp("data/train/*.parquet", files).fingerprint
        assert now not in seen
        seen.add(now)


def test_recursive_and_character_class_globs(files: FileFingerprinter, project: Path) -> None:
    write(project / "data" / "2024" / "01" / "a.csv", b"1")
    write(project / "data" / "2025" / "b.csv", b"2")
    deep = fp("data/**/*.csv", files)
    assert set(deep.value["listing"]) == {"data/2024/01/a.csv", "data/2025/b.csv"}
    one_year = fp("data/202[5]/*.csv", files)
    assert set(one_year.value["listing"]) == {"data/2025/b.csv"}
    folders = fp("data/202?", files)  # a glob matching folders: their files count
    assert folders.value["files"] == 2


def test_a_glob_that_matches_nothing_is_a_value(files: FileFingerprinter, project: Path) -> None:
    for text in ("data/*.parquet", "what?", "SELECT * FROM clicks", "[a-z]+"):
        found = fp(text, files)
        assert found.kind == "value" and found.fingerprint == value_fingerprint(text)
    write(project / "data" / "a.parquet", b"1")
    assert fp("data/*.parquet", files).kind == "glob"  # a match appeared: the key changes


def test_glob_base() -> None:
    assert glob_base("data/train/*.parquet") == "data/train"
    assert glob_base("data/[ab]/x.csv") == "data"
    assert glob_base("*.csv") == "."
    assert glob_base("/srv/**/x") == "/srv"


# -- strings that name nothing -----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "user_id",
        "not/a/real/path",
        "mean",
        "2024-01-01",
        "https://example.com/x.csv",
        "a\nb",
        "x" * 5000,
        # Separators, not requests to hash the working directory or the disk.
        ".",
        "..",
        "/",
        "./",
        "//",
        "~",
        "~/",
        # Wildcards with no name in them: they would hash the whole working directory.
        "*",
        "**",
        "*.*",
        "?",
        "**/*",
        # A device: nothing to fingerprint.
        "/dev/null",
    ],
)
def test_a_str_that_names_nothing_keeps_its_value_fingerprint(
    files: FileFingerprinter, project: Path, text: str
) -> None:
    write(project / "data" / "x.csv", b"1")  # something a bare wildcard would match
    found = fp(text, files)
    assert found.kind == "value"
    assert found.fingerprint == value_fingerprint(text)
    assert found == fp(text, files, str_paths=False)
    assert not names_data(text)


def test_cheap_rejections_make_no_system_call() -> None:
    for text in ("", ".", "/", "a\x00b", "line\nbreak", "y" * 4097):
        assert not could_be_path(text)
    assert could_be_path("data/x.csv") and could_be_path("x.csv")


# -- containers and the opt-out ----------------------------------------------------------


def test_path_strings_inside_containers(files: FileFingerprinter, project: Path) -> None:
    a = write(project / "data" / "a.csv", b"1")
    write(project / "data" / "b.csv", b"2")
    shapes: list[object] = [
        ["data/a.csv", "data/b.csv"],
        ("data/a.csv", 3),
        {"train": "data/a.csv", "test": "data/b.csv"},
        {"data/a.csv"},
        {"nested": [["data/*.csv"]]},
    ]
    before = {}
    for shape in shapes:
        found = fp(shape, files)
        assert found.kind == "container", shape
        assert found.value["parts"], shape
        before[repr(shape)] = found.fingerprint
    rewrite_keeping_stat_times(a, b"9")
    for shape in shapes:
        assert fp(shape, files).fingerprint != before[repr(shape)], shape


def test_containers_of_strings_that_name_nothing_keep_their_value_fingerprint(
    files: FileFingerprinter, project: Path
) -> None:
    for value in (["user_id", "ts"], {"how": "left", "on": ["k"]}, ("a", 1), {"x", "y"}):
        found = fp(value, files)
        assert found.kind == "value" and found.fingerprint == value_fingerprint(value)


def test_str_paths_false_keeps_every_string_a_value(
    files: FileFingerprinter, project: Path
) -> None:
    write(project / "out" / "old.parquet", b"previous run")
    for value in ("out", "out/*.parquet", ["out"], {"dir": "out"}):
        found = fp(value, files, str_paths=False)
        assert found.kind == "value" and found.fingerprint == value_fingerprint(value)


def test_a_str_enum_member_stays_an_enum_value(files: FileFingerprinter, project: Path) -> None:
    class Split(enum.StrEnum):
        DATA = "data"

    (project / "data").mkdir()
    assert fp(Split.DATA, files).kind == "value"
    assert fp(Split.DATA, files).fingerprint == value_fingerprint(Split.DATA)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_folder_is_a_typed_error_naming_the_argument(
    files: FileFingerprinter, project: Path
) -> None:
    locked = project / "data" / "locked"
    write(locked / "x.csv", b"1")
    locked.chmod(0)
    try:
        with pytest.raises(UnsupportedInputError, match="values=") as raised:
            fp("data", files)
        assert raised.value.argument == "arg"
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("count", [3, 40])  # looked up one by one, and in one query
def test_an_unchanged_glob_is_revalidated_from_the_stat_cache(
    files: FileFingerprinter, project: Path, count: int
) -> None:
    for i in range(count):
        write(project / "data" / f"{i:02}.csv", b"x")
    write(project / "data" / "sub" / "deep.csv", b"y")
    first = fp("data/*", files)  # files, and a matched folder
    hashed = files.files_hashed
    assert first.value["files"] == count + 1
    assert fp("data/*", files) == first
    assert files.files_hashed == hashed
