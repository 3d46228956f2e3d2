"""Files a body reads: path literals found in code, reads recorded while a body runs, which of
them count as inputs, their re-validation, and the wording ``why`` uses for them. Real files,
real readers (polars, pandas, numpy), real SQLite; the end-to-end, fresh-process tests are in
``tests/test_observed_inputs.py``."""

from __future__ import annotations

import ast
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from featurecache import FeatureCache
from featurecache.fingerprint import observed
from featurecache.fingerprint.code.identity import code_identity
from featurecache.fingerprint.code.literals import (
    literals_in_node,
    literals_in_value,
    looks_like_path,
)
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.literals import literal_observations
from featurecache.fingerprint.observed_inputs import (
    Exclusions,
    ObservedInputWarning,
    first_change,
    recorded_of,
    settle,
)
from featurecache.ops.observed_diff import compare_observed, observed_changes

# -- path literals in code --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("data/labels.csv", True),
        ("labels.csv", True),
        ("/abs/folder/", True),
        ("data\\win.csv", True),
        ("user_id", False),  # a column name: never stat'ed
        ("data", False),  # a bare word: documented limit
        ("s3://bucket/x.csv", False),
        ("data/{name}.csv", False),
        ("data/*.parquet", False),
        ("two\nlines.csv", False),
        ("", False),
        ("1.5", False),
    ],
)
def test_what_looks_like_a_path(text: str, expected: bool) -> None:
    assert looks_like_path(text) is expected


def test_literals_leave_out_docstrings_and_f_string_pieces() -> None:
    tree = ast.parse(
        'def f(x):\n    "docs/readme.md"\n    y = f"data/{x}.csv"\n'
        '    return read("data/labels.csv", sep=",")\n'
    )
    assert literals_in_node(tree) == ["data/labels.csv"]


def test_literals_in_module_constants() -> None:
    assert literals_in_value("data/a.csv") == ["data/a.csv"]
    assert literals_in_value(["a.csv", "col", 3]) == ["a.csv"]
    assert literals_in_value({"train": "data/train.parquet"}) == ["data/train.parquet"]
    assert literals_in_value(3) == []


LABELS = "data/labels.csv"


def _helper() -> str:
    return "data/helper.csv"


def _reads_literals() -> object:
    return (LABELS, _helper(), "data/direct.csv", "user_id")


def _no_literals(x: int) -> int:
    return x + 1


def test_code_identity_lists_literals_of_the_function_its_helpers_and_constants() -> None:
    identity = code_identity(_reads_literals)
    assert set(identity.path_literals) == {"data/labels.csv", "data/helper.csv", "data/direct.csv"}
    assert code_identity(_no_literals).path_literals == ()


def test_ignore_leaves_a_literal_out() -> None:
    identity = code_identity(_reads_literals, ignore=["data/direct.csv"])
    assert "data/direct.csv" not in identity.path_literals


@pytest.fixture
def files(tmp_path: Path) -> Iterator[FileFingerprinter]:
    with FileFingerprinter(tmp_path / "state", project_root=tmp_path) as fingerprinter:
        yield fingerprinter


@pytest.fixture
def in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "labels.csv").write_text("y\n1\n")
    return tmp_path


NO_EXCLUSIONS = Exclusions(prefixes=())


def test_literals_are_observed_as_files_folders_or_absent_paths(
    in_project: Path, files: FileFingerprinter
) -> None:
    found = literal_observations(
        ["data/labels.csv", "data/missing.csv", "../", "./", "data/"], files, NO_EXCLUSIONS
    )
    assert [(item.path, item.kind) for item in found] == [
        ("data/labels.csv", "file"),
        ("data/missing.csv", "absent"),
        ("data", "directory"),
    ]
    # A path the body wrote is an output; a folder it wrote into is read file by file.
    written = [str(in_project / "data" / "labels.csv")]
    assert (
        literal_observations(["data/labels.csv", "data/"], files, NO_EXCLUSIONS, written=written)
        == []
    )
    # A path argument already in the key is not recorded twice.
    covered = (str(in_project / "data"),)
    assert literal_observations(["data/labels.csv"], files, NO_EXCLUSIONS, covered=covered) == []


def test_an_absent_literal_that_appears_makes_the_entry_stale(
    in_project: Path, files: FileFingerprinter
) -> None:
    recorded = [
        item.to_json() for item in literal_observations(["data/extra.csv"], files, NO_EXCLUSIONS)
    ]
    assert first_change(recorded, files) is None
    (in_project / "data" / "extra.csv").write_text("x\n")
    assert first_change(recorded, files) == "data/extra.csv"
    assert compare_observed(
        recorded,
        literal_observations(["data/extra.csv"], files, NO_EXCLUSIONS)[0:1]
        and [
            item.to_json()
            for item in literal_observations(["data/extra.csv"], files, NO_EXCLUSIONS)
        ],
    ) == ["file data/extra.csv exists now"]


# -- recording reads --------------------------------------------------------------------


def test_reads_are_recorded_only_inside_the_observing_thread(in_project: Path) -> None:
    path = str(in_project / "data" / "labels.csv")
    other = str(in_project / "data" / "other.csv")
    Path(other).write_text("z\n")
    Path(path).read_text()  # outside: not recorded
    with observed.observing() as reads:
        Path(path).read_text()
        reader = threading.Thread(target=Path(other).read_text)  # another thread: not seen
        reader.start()
        reader.join()
        (in_project / "data" / "out.csv").write_text("w\n")
        os.close(os.open(str(in_project / "data" / "flags.bin"), os.O_WRONLY | os.O_CREAT))
    assert list(reads.read) == [path]
    assert reads.written == {
        str(in_project / "data" / "out.csv"),
        str(in_project / "data" / "flags.bin"),
    }
    assert observed.current() is None


def test_native_readers_are_recorded_through_their_wrappers(in_project: Path) -> None:
    parquet = in_project / "data" / "events.parquet"
    pl.DataFrame({"v": [1]}).write_parquet(parquet)
    np.save(in_project / "data" / "arr.npy", np.arange(3))
    with observed.observing() as reads:
        pl.read_parquet(str(parquet))
        pl.scan_csv("data/labels.csv").collect()
        pd.read_csv(in_project / "data" / "labels.csv")
        np.load(in_project / "data" / "arr.npy")
        pl.read_parquet("data/*.parquet")
    data = {path for path in reads.read if not Exclusions.for_cache([]).excludes(path)}
    assert data == {
        str(parquet),
        str(in_project / "data" / "labels.csv"),
        str(in_project / "data" / "arr.npy"),
    }
    assert list(reads.globs) == [str(in_project / "data" / "*.parquet")]
    assert pl.read_parquet.__featurecache_reader__ is not None  # type: ignore[attr-defined]


def test_a_remote_location_given_to_a_reader_is_unseen() -> None:
    with observed.observing() as reads:
        reads.note_source("s3://bucket/data.parquet")
    assert "s3://bucket/data.parquet" in reads.unseen


def test_a_nested_observation_adds_its_reads_to_the_outer_one(in_project: Path) -> None:
    path = str(in_project / "data" / "labels.csv")
    with observed.observing() as outer:
        with observed.observing() as inner:
            Path(path).read_text()
        assert path in inner.read
    assert path in outer.read


# -- which reads are inputs ---------------------------------------------------------------


def test_settle_keeps_data_and_drops_code_written_covered_and_own_files(
    in_project: Path, files: FileFingerprinter
) -> None:
    cache = in_project / ".featurecache"
    cache.mkdir()
    (cache / "state.db").write_text("x")
    (in_project / "data" / "arg.csv").write_text("a\n")
    (in_project / "helper.py").write_text("X = 1\n")
    with observed.observing() as reads:
        for name in ("data/labels.csv", "data/arg.csv", "helper.py", ".featurecache/state.db"):
            Path(name).read_text()
        Path("data/labels.csv").read_text()
        Path("data/written.csv").write_text("w")
        Path("data/written.csv").read_text()
    items, problems = settle(
        reads,
        files=files,
        exclude=Exclusions.for_cache([cache]),
        covered=[str(in_project / "data" / "arg.csv")],
    )
    assert [(i.path, i.kind) for i in items] == [("data/labels.csv", "file")]
    assert items[0].fingerprint is not None
    assert problems == {}
    assert Exclusions.for_cache([]).excludes(os.path.join(sys.prefix, "lib", "x.txt"))


def test_a_file_changed_or_gone_before_its_fingerprint_is_never_fresh(
    in_project: Path, files: FileFingerprinter
) -> None:
    (in_project / "data" / "gone.csv").write_text("g\n")
    with observed.observing() as reads:
        Path("data/labels.csv").read_text()
        Path("data/gone.csv").read_text()
    (in_project / "data" / "labels.csv").write_text("y\n2\n")  # changed after the read
    os.remove(in_project / "data" / "gone.csv")
    items, problems = settle(reads, files=files, exclude=NO_EXCLUSIONS, covered=[])
    assert {i.path: i.fingerprint for i in items} == {
        "data/gone.csv": None,
        "data/labels.csv": None,
    }
    assert set(problems) == {"data/gone.csv", "data/labels.csv"}
    assert first_change([i.to_json() for i in items], files) == "data/gone.csv"


# -- re-validation ----------------------------------------------------------------------


def test_revalidation_sees_a_same_size_edit_with_the_mtime_set_back(
    in_project: Path, files: FileFingerprinter
) -> None:
    labels = in_project / "data" / "labels.csv"
    with observed.observing() as reads:
        labels.read_text()
    items, _ = settle(reads, files=files, exclude=NO_EXCLUSIONS, covered=[])
    recorded = [i.to_json() for i in items]
    assert first_change(recorded, files) is None
    before = labels.stat()
    labels.write_text("y\n9\n")
    os.utime(labels, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert labels.stat().st_size == before.st_size
    assert first_change(recorded, files) == "data/labels.csv"


def test_a_glob_changes_when_a_matching_file_is_added(
    in_project: Path, files: FileFingerprinter
) -> None:
    pl.DataFrame({"v": [1]}).write_parquet(in_project / "data" / "a.parquet")
    with observed.observing() as reads:
        pl.read_parquet("data/*.parquet")
    items, _ = settle(reads, files=files, exclude=NO_EXCLUSIONS, covered=[])
    recorded = [i.to_json() for i in items]
    assert [i["kind"] for i in recorded] == ["file", "glob"]
    assert first_change(recorded, files) is None
    pl.DataFrame({"v": [2]}).write_parquet(in_project / "data" / "b.parquet")
    assert first_change(recorded, files) == "data/*.parquet"


# -- the engine, in process (fresh processes: tests/test_observed_inputs.py) ---------------


def test_a_file_changed_while_the_body_reads_it_warns_and_recomputes(in_project: Path) -> None:
    fc = FeatureCache(catalog=f"sqlite:///{in_project / 'c.db'}", store=in_project / "a")
    runs: list[int] = []
    target = in_project / "data" / "moving.txt"
    target.write_text("1\n")
    try:

        @fc.cached_feature(ignore=["runs", "target"])
        def moving() -> pl.DataFrame:
            runs.append(1)
            value = target.read_text()
            # A thread the body starts is not observed: its write is what "changed while
            # read" looks like.
            writer = threading.Thread(target=target.write_text, args=("22\n",))
            writer.start()
            writer.join()
            return pl.DataFrame({"v": [value]})

        with pytest.warns(ObservedInputWarning, match="moving.txt"):
            moving()
        fc.engine.flush()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            moving()  # never fresh: recomputed (and warned about only once)
        fc.engine.flush()
        assert len(runs) == 2
    finally:
        fc.close()


def test_a_nested_hit_makes_the_outer_feature_depend_on_its_files(in_project: Path) -> None:
    fc = FeatureCache(catalog=f"sqlite:///{in_project / 'c.db'}", store=in_project / "a")
    source = in_project / "data" / "inner.txt"
    source.write_text("a\n")
    try:

        @fc.cached_feature(ignore=["source"])
        def inner() -> pl.DataFrame:
            return pl.DataFrame({"v": [source.read_text()]})

        @fc.cached_feature
        def outer() -> pl.DataFrame:
            return inner().with_columns(pl.lit(1).alias("w"))

        inner()  # the inner result is cached first: outer's body only gets a hit
        fc.engine.flush()
        assert outer()["v"].to_list() == ["a\n"]
        fc.engine.flush()
        hit = fc.engine.catalog.recent_entries(outer.name, limit=1)[0]
        assert [item["path"] for item in recorded_of(hit.components)] == ["data/inner.txt"]
        source.write_text("b\n")
        assert outer()["v"].to_list() == ["b\n"]
    finally:
        fc.close()


# -- wording for why --------------------------------------------------------------------


def test_why_wording() -> None:
    before = [
        {"path": "data/labels.csv", "kind": "file", "fingerprint": "a"},
        {"path": "data/old.csv", "kind": "file", "fingerprint": "o"},
    ]
    after = [
        {"path": "data/labels.csv", "kind": "file", "fingerprint": "b"},
        {"path": "data/*.parquet", "kind": "glob", "fingerprint": "g"},
    ]
    assert compare_observed(before, after) == [
        "file data/labels.csv changed",
        "glob data/*.parquet is read now",
        "file data/old.csv is no longer read",
    ]
    assert observed_changes({"observed": {"files": after, "replaced": before}})[0] == (
        "file data/labels.csv changed"
    )
    assert observed_changes({"observed": {"files": after}}) == []
    gone = [{"path": "data/labels.csv", "kind": "absent", "fingerprint": "absent"}]
    assert compare_observed(before[:1], gone) == ["file data/labels.csv is gone"]


# -- literals that name outputs ---------------------------------------------------------


def test_a_literal_the_body_writes_is_an_output_not_an_input(in_project: Path) -> None:
    runs: list[int] = []

    def make(fc: FeatureCache) -> Any:
        @fc.cached_feature(name="logged", ignore=["runs"])
        def logged() -> pl.DataFrame:
            runs.append(1)
            with open("data/run.log", "a") as log:  # a literal the body writes, every run
                log.write("ran\n")
            return pl.DataFrame({"v": [1]})

        return logged

    for _ in range(3):  # a new cache each time: what was learned must come from disk
        fc = FeatureCache(catalog=f"sqlite:///{in_project / 'c.db'}", store=in_project / "a")
        try:
            make(fc)()
            fc.engine.flush()
        finally:
            fc.close()
    assert len(runs) == 1


def test_a_literal_output_keeps_the_key_stable_across_hosts_and_races(in_project: Path) -> None:
    # The counter pattern (a module constant naming a log the body appends to): the first call
    # runs before the file exists, every later one after. Two hosts (their own state folders,
    # one shared catalog and store) and racing processes must all compute the same key: were the
    # file an input of the key whenever it exists, the second host (or a process that started
    # after the first wrote it) would recompute it (seen: 16 racing processes computed twice).
    runs: list[int] = []

    def make(fc: FeatureCache) -> Any:
        @fc.cached_feature(name="counted", ignore=["runs"])
        def counted() -> pl.DataFrame:
            runs.append(1)
            with open("data/calls.log", "a") as log:
                log.write("ran\n")
            return pl.DataFrame({"v": [1]})

        return counted

    keys = []
    for host in ("one", "two", "three"):
        fc = FeatureCache(
            catalog=f"sqlite:///{in_project / 'c.db'}",
            store=in_project / "a",
            state_dir=in_project / f"state-{host}",
        )
        try:
            feature = make(fc)
            keys.append(fc.engine.key_for(feature, (), {})[0].key_id)
            feature()
            fc.engine.flush()
        finally:
            fc.close()
    assert len(set(keys)) == 1
    assert len(runs) == 1


def test_an_edited_literal_file_recomputes_and_why_names_it(in_project: Path) -> None:
    import featurecache

    fc = FeatureCache(catalog=f"sqlite:///{in_project / 'c.db'}", store=in_project / "a")
    try:

        @fc.cached_feature(name="labels")
        def labels() -> pd.DataFrame:
            return pd.read_csv("data/labels.csv")

        first, _ = fc.engine.key_for(labels, (), {})
        assert labels()["y"].tolist() == [1]
        fc.engine.flush()
        assert labels()["y"].tolist() == [1]  # a hit
        (in_project / "data" / "labels.csv").write_text("y\n2\n")
        second, _ = fc.engine.key_for(labels, (), {})
        assert second.key_id == first.key_id  # the key is the call's; the entry went stale
        assert labels()["y"].tolist() == [2]
        fc.engine.flush()
        report = featurecache.why(labels)
        assert "file data/labels.csv changed" in str(report)
    finally:
        fc.close()


def test_scratch_files_the_body_writes_reads_and_removes_are_not_inputs(in_project: Path) -> None:
    import shutil
    import tempfile

    fc = FeatureCache(catalog=f"sqlite:///{in_project / 'c.db'}", store=in_project / "a")
    runs: list[int] = []
    try:

        @fc.cached_feature(ignore=["runs"])
        def scratch() -> pl.DataFrame:
            runs.append(1)
            folder = tempfile.mkdtemp()
            pl.DataFrame({"v": [1, 2]}).write_parquet(os.path.join(folder, "part.parquet"))
            frame = pl.read_parquet(os.path.join(folder, "part.parquet"))
            shutil.rmtree(folder)  # opens the folder itself: a listing, not a read
            return frame

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            scratch()
            fc.engine.flush()
            scratch()
        assert len(runs) == 1
    finally:
        fc.close()
