"""File and directory fingerprints and the host-local stat cache."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from featurecache.errors import InputNotFoundError, UnsupportedInputError
from featurecache.fingerprint.files import DB_NAME, FileFingerprinter

HOUR_NS = 3600 * 10**9


def later_clock() -> int:
    """A clock an hour ahead: every file looks old enough to trust (no sleeping in tests)."""
    return time.time_ns() + HOUR_NS


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
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


def test_file_fingerprint_is_content_plus_project_relative_path(
    files: FileFingerprinter, project: Path
) -> None:
    a = write(project / "data" / "a.csv", b"x,y\n1,2\n")
    b = write(project / "data" / "b.csv", b"x,y\n1,2\n")
    fa, fb = files.fingerprint("src", a), files.fingerprint("src", b)
    assert fa.kind == "file" and fa.fingerprint.startswith("xxh3_128:")
    assert fa.value["content"] == fb.value["content"]  # same bytes...
    assert fa.fingerprint != fb.fingerprint  # ...at another path: another input
    assert fa.value["path"] == "data/a.csv"
    assert fa.source_uri == a.resolve().as_uri()
    assert fa.summary == "file data/a.csv (8 B)"
    write(a, b"x,y\n1,3\n")
    assert files.fingerprint("src", a).fingerprint != fa.fingerprint


def test_same_project_elsewhere_gives_the_same_fingerprint(tmp_path: Path) -> None:
    digests = set()
    for clone in ("alice", "bob"):
        root = tmp_path / clone
        path = write(root / "data" / "x.parquet", b"PAR1...")
        with FileFingerprinter(tmp_path / f"state-{clone}", project_root=root) as files:
            digests.add(files.fingerprint("p", path).fingerprint)
    assert len(digests) == 1


def test_unchanged_file_is_not_read_again(
    files: FileFingerprinter, project: Path, tmp_path: Path
) -> None:
    path = write(project / "big.bin", os.urandom(1 << 20))
    first = files.fingerprint("p", path)
    assert files.files_hashed == 1
    for _ in range(5):
        assert files.fingerprint("p", path).fingerprint == first.fingerprint
    assert files.files_hashed == 1 and files.cache_hits == 5
    # The entry is in the host-local SQLite cache, so a new process (here: a new instance)
    # trusts it too.
    with sqlite3.connect(tmp_path / "state" / DB_NAME) as db:
        rows = db.execute("SELECT path, size, digest FROM file_hashes").fetchall()
    assert rows == [(str(path), 1 << 20, first.value["content"])]
    other = FileFingerprinter(tmp_path / "state", project_root=project, clock=later_clock)
    assert other.fingerprint("p", path).fingerprint == first.fingerprint
    assert other.files_hashed == 0
    other.close()


def test_same_size_same_mtime_modification_is_rehashed(
    files: FileFingerprinter, project: Path
) -> None:
    path = write(project / "x.txt", b"aaaa")
    before = os.stat(path)
    first = files.fingerprint("p", path)
    write(path, b"bbbb")  # same size...
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # ...and the same mtime
    second = files.fingerprint("p", path)
    assert files.files_hashed == 2
    assert second.fingerprint != first.fingerprint


def test_recently_modified_files_are_not_trusted(project: Path, tmp_path: Path) -> None:
    """Racy git: a write within the same timestamp tick may leave the stat unchanged, so an
    entry for a file changed less than the racy window before it was hashed is not used."""
    path = write(project / "fresh.txt", b"data")
    with FileFingerprinter(tmp_path / "state", project_root=project) as files:  # real clock
        files.fingerprint("p", path)
        files.fingerprint("p", path)
        assert files.files_hashed == 2 and files.cache_hits == 0
    with FileFingerprinter(tmp_path / "state", project_root=project, clock=later_clock) as files:
        files.fingerprint("p", path)  # hashed well after the change: trusted from now on
        files.fingerprint("p", path)
        assert files.files_hashed == 1 and files.cache_hits == 1


def test_directory_is_a_merkle_hash_of_its_entries(files: FileFingerprinter, project: Path) -> None:
    folder = project / "data"
    write(folder / "a.csv", b"1")
    write(folder / "sub" / "b.csv", b"2")
    base = files.fingerprint("d", folder)
    assert base.kind == "directory"
    assert base.value["files"] == 2
    assert base.summary == "directory data (2 files, 2 B)"
    assert files.fingerprint("d", folder).fingerprint == base.fingerprint
    changes = [
        lambda: write(folder / "sub" / "b.csv", b"3"),
        lambda: (folder / "sub" / "b.csv").rename(folder / "sub" / "c.csv"),
        lambda: (folder / "empty").mkdir(),
        lambda: write(folder / ".hidden", b""),
    ]
    seen = {base.fingerprint}
    for change in changes:
        change()
        digest = files.fingerprint("d", folder).fingerprint
        assert digest not in seen
        seen.add(digest)


def test_directory_symlinks_cycles_and_broken_links(
    files: FileFingerprinter, project: Path
) -> None:
    folder = project / "data"
    target = write(project / "elsewhere" / "t.csv", b"t")
    (folder / "link.csv").symlink_to(target)
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "dangling").symlink_to(project / "missing")
    first = files.fingerprint("d", folder)
    write(target, b"changed")  # a symlinked file's content counts
    assert files.fingerprint("d", folder).fingerprint != first.fingerprint


def test_missing_path_names_the_argument(files: FileFingerprinter, project: Path) -> None:
    with pytest.raises(InputNotFoundError) as caught:
        files.fingerprint("clicks_path", project / "nope.csv")
    assert isinstance(caught.value, FileNotFoundError)
    assert "clicks_path" in str(caught.value) and caught.value.argument == "clicks_path"


def test_special_files_are_refused(files: FileFingerprinter, project: Path) -> None:
    fifo = project / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(UnsupportedInputError, match="pipe"):
        files.fingerprint("p", fifo)


def test_resolvers_answer_first(files: FileFingerprinter, project: Path) -> None:
    tracked = write(project / "tracked.bin", b"dvc")
    other = write(project / "other.bin", b"plain")
    calls: list[Path] = []

    def dvc_like(path: Path, st: os.stat_result) -> str | None:
        calls.append(path)
        return "md5:0123456789abcdef0123456789abcdef" if path.name == "tracked.bin" else None

    files.add_resolver(dvc_like)
    assert (
        files.fingerprint("p", tracked).value["content"] == "md5:0123456789abcdef0123456789abcdef"
    )
    assert files.fingerprint("p", other).value["content"].startswith("xxh3_128:")
    assert files.files_hashed == 1 and calls == [tracked, other]


def test_a_resolvers_answer_is_remembered_until_the_file_changes(
    files: FileFingerprinter, project: Path, tmp_path: Path
) -> None:
    """After a resolver answered, the stat cache answers for the unchanged file (in this and
    later processes) without asking the resolver (DVC's import costs a third of a second);
    a changed file asks again."""
    tracked = write(project / "tracked.bin", b"dvc")
    calls: list[bytes] = []

    def dvc_like(path: Path, st: os.stat_result) -> str | None:
        calls.append(path.read_bytes())
        return f"md5:{len(calls):032x}"

    files.add_resolver(dvc_like)
    first = files.fingerprint("p", tracked)
    assert files.fingerprint("p", tracked).fingerprint == first.fingerprint
    assert calls == [b"dvc"] and files.cache_hits == 1 and files.files_hashed == 0
    files.close()
    with FileFingerprinter(tmp_path / "state", project_root=project, clock=later_clock) as again:
        again.add_resolver(dvc_like)
        assert again.fingerprint("p", tracked).fingerprint == first.fingerprint
        assert calls == [b"dvc"] and again.cache_hits == 1
        write(tracked, b"DVC!")
        changed = again.fingerprint("p", tracked)
        assert calls == [b"dvc", b"DVC!"] and changed.fingerprint != first.fingerprint


def test_unusable_state_dir_warns_and_still_fingerprints(project: Path, tmp_path: Path) -> None:
    blocker = write(tmp_path / "not-a-dir", b"")
    path = write(project / "x", b"1")
    with FileFingerprinter(blocker / "state", clock=later_clock) as files:
        with pytest.warns(UserWarning, match="file hash cache"):
            first = files.fingerprint("p", path)
        assert files.fingerprint("p", path).fingerprint == first.fingerprint
        assert files.files_hashed == 2


def _worker(state: str, paths: list[str], queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    with FileFingerprinter(Path(state), clock=later_clock) as files:
        queue.put([files.fingerprint("p", Path(p)).fingerprint for p in paths for _ in range(3)])


@pytest.mark.slow  # racing worker processes
def test_concurrent_processes_share_the_cache(project: Path, tmp_path: Path) -> None:
    paths = [str(write(project / f"f{i}", os.urandom(1000))) for i in range(30)]
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(str(tmp_path / "state"), paths, queue)) for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert results[0] == results[1] == results[2]
    with sqlite3.connect(tmp_path / "state" / DB_NAME) as db:
        assert db.execute("SELECT count(*) FROM file_hashes").fetchone()[0] == 30
