"""Return annotations checked when ``@cached_feature`` decorates: what can never be stored is
refused then, with what to return instead; what may be stored, or cannot be resolved, passes.

Each case is a real module source (``from __future__ import annotations``, so every
annotation is a string resolved against the module's globals, as in user code), compiled and
decorated with the real ``cached_feature``; decorating opens no cache and runs nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from featurecache import UnsupportedOutputError, cached_feature
from featurecache.errors import ConfigError
from featurecache.results.annotations import (
    UnsupportedReturnAnnotationError,
    check_return_annotation,
)
from tests.e2e import REPO

MODULE_HEADER = """
from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple, Optional, TypeVar

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
from numpy.typing import NDArray

from featurecache import cached_feature

if TYPE_CHECKING:
    import not_installed_anywhere as nx

T = TypeVar("T")

class MyClass:
    pass

class Split(NamedTuple):
    train: pd.DataFrame
    test: pd.DataFrame

class Level(enum.IntEnum):
    LOW = 1
"""


def decorate(annotation: str | None) -> Any:
    """``@cached_feature`` on a function of a fresh module whose return is ``annotation``."""
    returns = f" -> {annotation}" if annotation is not None else ""
    source = MODULE_HEADER + f"\n@cached_feature\ndef feature(n: int){returns}:\n    return n\n"
    namespace: dict[str, Any] = {"__name__": "user_features"}
    exec(compile(source, "user_features.py", "exec"), namespace)
    return namespace["feature"]


ACCEPTED = [
    None,  # no annotation: checked at run time
    "pd.DataFrame",
    "pd.Series",
    "pl.DataFrame",
    "pl.LazyFrame",
    "pl.Series",
    "pa.Table",
    "np.ndarray",
    "NDArray[np.float64]",
    "np.float64",
    "np.int64",
    "tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]",
    "tuple[pd.DataFrame, ...]",
    "Split",  # a NamedTuple of frames
    "dict[str, pl.DataFrame]",
    "dict[str, list[tuple[int, pd.DataFrame]]]",
    "Mapping[str, np.ndarray]",
    "Sequence[pd.Series]",
    "list[str]",
    "'pd.DataFrame'",  # a string inside the (already string) annotation
    "pd.DataFrame | None",
    "Optional[pl.Series]",
    "Annotated[pd.DataFrame, 'validated']",
    "Literal['a', 'b']",
    "None",
    "bool",
    "int",
    "float",
    "str",
    "bytes",
    "dt.date",
    "dt.datetime",
    "dt.time",
    "dt.timedelta",
    "Decimal",
    "Any",
    "object",
    "T",
    # Names that cannot be resolved are never refused: imported under TYPE_CHECKING only.
    "nx.Frame",
    "list[nx.Frame]",
    "dict[str, nx.Frame | None]",
]

REFUSED = [
    ("Iterator[pd.DataFrame]", "Iterator[pd.DataFrame]", "Return a list"),
    ("Generator[pd.DataFrame, None, None]", "Generator", "Return a list"),
    ("MyClass", "MyClass", "Return the data it holds"),
    ("Optional[MyClass]", "MyClass in it", "Return the data it holds"),
    ("dict[str, MyClass]", "MyClass in it", "Return the data it holds"),
    ("dict[int, pd.DataFrame]", "dict keys of type int", "str keys"),
    # The keys alone prove it, even where the values cannot be resolved.
    ("dict[int, nx.Frame]", "dict keys of type int", "str keys"),
    ("set[str]", "set[str]", "sorted list"),
    ("pd.Index", "pd.Index", "index.to_series()"),
    ("Level", "Level", "Return a plain int"),
    ("type[MyClass]", "type[MyClass]", "Return the data it holds"),
    ("Callable[[], pd.DataFrame]", "Callable", "Return the data it holds"),
]


@pytest.mark.parametrize("annotation", ACCEPTED, ids=str)
def test_storable_or_unknown_return_annotations_are_accepted(annotation: str | None) -> None:
    feature = decorate(annotation)
    assert feature.name == "feature"


@pytest.mark.parametrize(("annotation", "culprit", "fix"), REFUSED, ids=[r[0] for r in REFUSED])
def test_unstorable_return_annotations_are_refused_at_decoration(
    annotation: str, culprit: str, fix: str
) -> None:
    with pytest.raises(UnsupportedOutputError) as caught:
        decorate(annotation)
    error = caught.value
    assert isinstance(error, TypeError)
    assert isinstance(error, UnsupportedReturnAnnotationError)
    message = str(error)
    # Names the function and the annotation as written, says what cannot be stored and what
    # to return instead, then lists what can be.
    assert message.startswith(f"feature 'feature' is annotated to return {annotation}, but ")
    assert culprit in message
    assert fix in message
    assert message.index(fix) < message.index("Storable results:")
    assert error.feature == "feature"
    assert error.annotation == annotation


def test_the_error_names_the_function_of_a_method() -> None:
    class Pipeline:
        @staticmethod
        def batches(n: int) -> Iterator[int]:
            return iter([n])

    with pytest.raises(UnsupportedReturnAnnotationError, match=r"'.*Pipeline\.batches'"):
        cached_feature(Pipeline.batches)


def test_an_evaluated_annotation_with_a_string_inside_is_resolved() -> None:
    # What a module without ``from __future__ import annotations`` holds: typing objects,
    # with forward references (strings) inside.
    def frames(n: int) -> None:
        return None

    frames.__annotations__["return"] = dict[int, "pd.DataFrame"]
    with pytest.raises(UnsupportedReturnAnnotationError, match="dict keys of type int"):
        check_return_annotation(frames)
    frames.__annotations__["return"] = dict[str, "pd.DataFrame"]
    check_return_annotation(frames)
    assert pd.DataFrame is not None  # what the forward reference resolved to


def test_a_syntax_error_in_a_string_annotation_is_accepted() -> None:
    def odd(n: int) -> None:
        return None

    odd.__annotations__["return"] = "pd.DataFrame["
    check_return_annotation(odd)


def test_classmethods_are_refused_with_what_to_do() -> None:
    with pytest.raises(ConfigError, match=r"classmethod.*@staticmethod"):

        class Holder:
            @cached_feature
            @classmethod
            def build(cls, n: int) -> int:
                return n


CHECK_WITHOUT_IMPORTS = """
import json, sys
from typing import TYPE_CHECKING
from featurecache import cached_feature

if TYPE_CHECKING:
    import pandas as pd
    import polars

refused = None

@cached_feature
def series(n: int) -> "pd.Series":
    raise AssertionError("never called")

@cached_feature
def frames(n: int) -> "dict[str, polars.DataFrame]":
    raise AssertionError("never called")

try:
    @cached_feature
    def by_year(n: int) -> "dict[int, pd.DataFrame]":
        raise AssertionError("never called")
except TypeError as exc:
    refused = str(exc)

print(json.dumps({
    "imported": sorted(m for m in ("pandas", "polars", "numpy", "pyarrow") if m in sys.modules),
    "refused": refused,
}))
"""


def test_checking_annotations_imports_no_frame_library() -> None:
    """A fresh process: annotations naming pandas / polars are checked without importing them
    (``import featurecache`` and decorating stay fast), and unresolvable ones pass."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHECK_WITHOUT_IMPORTS)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        timeout=120,
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "pandas" not in out["imported"] and "polars" not in out["imported"], out
    assert out["refused"] is not None and "dict keys of type int" in out["refused"]
