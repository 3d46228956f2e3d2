"""Carry-over of artifact ids on frames handed out by the cache."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from featurecache.fingerprint import carry
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.inputs import fingerprint_input

ARTIFACT = "ab" * 16


@pytest.fixture(autouse=True)
def clean_registry() -> None:
    gc.collect()


def test_remember_and_recall_immutable_frames() -> None:
    table = pa.table({"a": [1, 2]})
    frame = pl.DataFrame({"a": [1, 2], "s": ["x", "y"]})
    lazy = pl.LazyFrame({"a": [1]})
    for obj in (table, frame, lazy):
        assert carry.remember(obj, ARTIFACT)
        assert carry.recall(obj) == ARTIFACT
    assert carry.recall(pa.table({"a": [1, 2]})) is None  # equal content, another object


def test_pandas_and_other_objects_are_never_remembered() -> None:
    frame = pd.DataFrame({"a": [1]})
    assert not carry.remember(frame, ARTIFACT)
    assert carry.recall(frame) is None
    assert not carry.remember([1, 2], ARTIFACT)


def test_entries_die_with_their_objects_so_reused_ids_are_not_confused() -> None:
    before = carry.remembered_count()
    frame = pl.DataFrame({"a": [1]})
    carry.remember(frame, ARTIFACT)
    address = id(frame)
    assert carry.remembered_count() == before + 1
    del frame
    gc.collect()
    assert carry.remembered_count() == before
    # Allocate look-alikes until one lands on the old address: it must not be recalled.
    for _ in range(10_000):
        other = pl.DataFrame({"a": [1]})
        if id(other) == address:
            break
    assert carry.recall(other) is None


MUTATIONS: dict[str, Callable[[pl.DataFrame], object]] = {
    "setitem": lambda df: df.__setitem__((0, "a"), 99),
    "rename columns": lambda df: setattr(df, "columns", ["x", "s"]),
    "insert_column": lambda df: df.insert_column(0, pl.Series("z", [0, 0])),
    "replace_column": lambda df: df.replace_column(0, pl.Series("a", [5, 6])),
    "drop_in_place": lambda df: df.drop_in_place("s"),
    "extend": lambda df: df.extend(pl.DataFrame({"a": [3], "s": ["z"]})),
    "vstack in place": lambda df: df.vstack(pl.DataFrame({"a": [3], "s": ["z"]}), in_place=True),
    "hstack in place": lambda df: df.hstack([pl.Series("t", [1, 2])], in_place=True),
}


@pytest.mark.parametrize("mutate", list(MUTATIONS.values()), ids=list(MUTATIONS))
def test_in_place_mutation_of_a_polars_frame_drops_the_carry(
    mutate: Callable[[pl.DataFrame], object],
) -> None:
    frame = pl.DataFrame({"a": [1, 2], "s": ["x", "y"]})
    carry.remember(frame, ARTIFACT)
    mutate(frame)
    assert carry.recall(frame) is None


def test_series_taken_from_a_frame_cannot_write_through() -> None:
    frame = pl.DataFrame({"a": [1, 2]})
    carry.remember(frame, ARTIFACT)
    column = frame.get_column("a")
    column[0] = 100  # copy-on-write: the frame is untouched
    assert frame["a"][0] == 1
    assert carry.recall(frame) == ARTIFACT


def test_fingerprint_input_uses_the_carried_artifact(tmp_path: Path) -> None:
    files = FileFingerprinter(tmp_path)
    frame = pl.DataFrame({"a": [1, 2, 3]})
    real = fingerprint_input("x", frame, files=files)
    carry.remember(frame, real.fingerprint.split(":")[1])
    carried = fingerprint_input("x", frame, files=files)
    assert carried.fingerprint == real.fingerprint
    assert carried.upstream_artifact_id == real.fingerprint.split(":")[1]
    assert (carried.kind, carried.rows, carried.schema) == ("polars", 3, real.schema)
    lazy = frame.lazy()
    carry.remember(lazy, ARTIFACT)
    carried_lazy = fingerprint_input("x", lazy, files=files)
    assert (carried_lazy.kind, carried_lazy.fingerprint) == ("lazy", f"xxh3_128:{ARTIFACT}")
    assert carried_lazy.schema == real.schema and carried_lazy.rows is None


# ---------------------------------------------------------------------------- copies (like=)
@pytest.mark.parametrize("mutate", list(MUTATIONS.values()), ids=list(MUTATIONS))
def test_a_copy_carried_like_its_original_still_drops_the_carry_when_mutated(
    mutate: Callable[[pl.DataFrame], object],
) -> None:
    original = pl.DataFrame({"a": [1, 2], "s": ["x", "y"]})
    first, second = original.clone(), original.clone()
    assert carry.remember(first, ARTIFACT, like=original)  # signature taken and checked
    assert carry.remember(second, ARTIFACT, like=original)  # signature reused
    assert carry.recall(first) == carry.recall(second) == ARTIFACT
    mutate(second)
    assert carry.recall(second) is None
    assert carry.recall(first) == ARTIFACT  # copy-on-write: the other copy is untouched


def test_a_copy_that_does_not_share_its_originals_buffers_gets_its_own_signature() -> None:
    """``like`` names a frame the copy was cloned from; were it not (a polars whose clone()
    copied, or a caller's mistake), the copy's own layout is what is remembered and recalled,
    and the original's is not kept for later copies."""
    original = pl.DataFrame({"a": [1, 2], "s": ["x", "y"]})
    unrelated = pl.DataFrame({"a": [1, 2], "s": ["x", "y"]})  # equal values, its own buffers
    assert carry.remember(unrelated, ARTIFACT, like=original)
    assert carry.recall(unrelated) == ARTIFACT
    assert carry._signature(unrelated) != carry._signature(original)
    assert id(original) not in carry._originals


def test_an_originals_signature_goes_with_it() -> None:
    original = pl.DataFrame({"a": [1, 2]})
    carry.remember(original.clone(), ARTIFACT, like=original)
    assert id(original) in carry._originals
    address = id(original)
    del original
    gc.collect()
    assert address not in carry._originals


def test_is_remembered_names_the_object_and_the_artifact() -> None:
    frame = pl.DataFrame({"a": [1]})
    assert not carry.is_remembered(frame, ARTIFACT)
    carry.remember(frame, ARTIFACT)
    assert carry.is_remembered(frame, ARTIFACT)
    assert not carry.is_remembered(frame, "cd" * 16)
    assert not carry.is_remembered(pl.DataFrame({"a": [1]}), ARTIFACT)
