"""Code identity in one process: what is followed (closures, decorators, classes, values of
many types, notebook cells), libraries, warnings and strict, depends_on / ignore, the memo and
the fallbacks when source is missing or stale."""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from featurecache.errors import CodeIdentityError, CodeIdentityWarning
from featurecache.fingerprint.code.identity import clear_memo, code_identity

# -- in process ---------------------------------------------------------------------------


@pytest.fixture
def make_module(tmp_path: Path) -> Iterator[Callable[[str, str], ModuleType]]:
    """Write ``source`` as a module file under a unique package and import it."""
    package = f"fcproj_{tmp_path.name.replace('-', '_')}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    clear_memo()

    def make(name: str, source: str) -> ModuleType:
        (tmp_path / package / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        return importlib.import_module(f"{package}.{name}")

    yield make
    sys.path.remove(str(tmp_path))
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]


def test_polars_function_referenced_records_its_version(make_module: Any) -> None:
    import polars

    mod = make_module(
        "f", "import polars as pl\n\ndef f(df):\n    return df.with_columns(pl.col('a'))\n"
    )
    identity = code_identity(mod.f)
    assert identity.components["libraries"] == {"polars": polars.__version__}
    assert code_identity(mod.f, track_library_versions=False).components["libraries"] == {}
    assert code_identity(mod.f, track_library_versions=False).digest != identity.digest


UNFOLLOWABLE = """
import importlib
import sqlite3

CONN = sqlite3.connect(":memory:")


def f(x, name):
    a = eval("1 + 1")
    b = getattr(x, name)
    c = importlib.import_module(name)
    return a, b, c, CONN
"""


def test_unfollowable_constructs_warn_with_place(make_module: Any) -> None:
    mod = make_module("dyn", UNFOLLOWABLE)
    with pytest.warns(CodeIdentityWarning) as record:
        identity = code_identity(mod.f)
    text = "\n".join(identity.warnings)
    assert "`eval()` in " in text and "dyn.py:9" in text
    assert "getattr(x, <non-constant name>)" in text and "dyn.py:10" in text
    assert "import_module(<non-constant name>)" in text and "dyn.py:11" in text
    assert "sqlite3.Connection" in text and "`CONN`" in text
    assert len(record) == 4
    assert identity.components["warnings"] == list(identity.warnings)
    with pytest.raises(CodeIdentityError) as err:
        code_identity(mod.f, strict=True)
    assert len(err.value.problems) == 4


def test_ignore_silences_and_leaves_out(make_module: Any) -> None:
    mod = make_module("dyn", UNFOLLOWABLE)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CodeIdentityWarning)
        identity = code_identity(
            mod.f, ignore=["CONN", "eval", "getattr", "import_module"], strict=True
        )
    assert identity.warnings == ()
    assert not any("CONN" in key for key in identity.components["dependencies"])


def test_depends_on_values_and_functions(make_module: Any) -> None:
    mod = make_module("dep", "def f(x):\n    return x\n\ndef g(x):\n    return x + 1\n")
    plain = code_identity(mod.f).digest
    with_value = code_identity(mod.f, depends_on=["v1"]).digest
    assert len({plain, with_value, code_identity(mod.f, depends_on=["v2"]).digest}) == 3
    identity = code_identity(mod.f, depends_on=[mod.g])
    assert any(key.endswith(":g") for key in identity.components["dependencies"])


def test_runtime_changes_invalidate_the_memo(make_module: Any) -> None:
    mod = make_module(
        "rt",
        "LIMITS = [1, 2]\nGAP = 3\n\ndef helper(x):\n    return x\n\n"
        "def other(x):\n    return -x\n\n"
        "def f(x):\n    return helper(x) + GAP + LIMITS[0]\n",
    )
    first = code_identity(mod.f)
    assert code_identity(mod.f) is first  # memoised
    mod.GAP = 4
    second = code_identity(mod.f)
    assert second.digest != first.digest
    mod.LIMITS.append(3)  # mutated in place
    third = code_identity(mod.f)
    assert third.digest != second.digest
    mod.helper = mod.other
    assert code_identity(mod.f).digest != third.digest


def test_the_memo_tells_equal_values_of_different_types_apart(make_module: Any) -> None:
    """1, 1.0, True and "1" are different options (and versions) to the digest: the memo,
    whose keys are cheaper than the digest's encoding, must not hand one's identity to
    another. Options holding other values are memoised by their canonical encoding, or not
    at all (objects)."""
    mod = make_module("memo_types", "def f(x):\n    return x\n")
    values: list[object] = [1, True, 1.0, "1", None, 0, False, "", (1,), (True,)]
    digests = [code_identity(mod.f, options={"o": value}).digest for value in values]
    assert len(set(digests)) == len(values)
    for value, digest in zip(values, digests, strict=True):  # now memoised: the same answers
        assert code_identity(mod.f, options={"o": value}).digest == digest
    versions = [code_identity(mod.f, version=v).digest for v in (None, "None", "1", "")]
    assert len(set(versions)) == 4
    ignored = code_identity(mod.f, ignore=["a", "b"])
    assert code_identity(mod.f, ignore=["b", "a", "a"]) is ignored
    with_object = code_identity(mod.f, options={"o": object()})
    assert code_identity(mod.f, options={"o": object()}) is not with_object  # never memoised


def test_source_edited_after_import_hashes_the_running_bytecode(make_module: Any) -> None:
    mod = make_module("stale", "def f(x):\n    return x + 1\n")
    clean = code_identity(mod.f)
    assert clean.components["function"]["mode"] == "ast"
    path = Path(mod.__file__)
    path.write_text("def f(x):\n    return x + 2\n")  # on disk only: the process runs x + 1
    clear_memo()
    with pytest.warns(CodeIdentityWarning, match="differs from the code running"):
        stale = code_identity(mod.f)
    assert stale.components["function"]["mode"] == "bytecode"
    assert stale.components["python"] == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert stale.digest != clean.digest


def test_function_without_source_falls_back_to_bytecode() -> None:
    namespace: dict[str, Any] = {}
    exec("def f(x):\n    return x * 7\n", namespace)  # a function with no source file, as in a REPL
    with pytest.warns(CodeIdentityWarning, match="unavailable"):
        identity = code_identity(namespace["f"])
    assert identity.components["function"]["mode"] == "bytecode"
    again: dict[str, Any] = {}
    exec("def f(x):\n    return x * 8\n", again)
    with pytest.warns(CodeIdentityWarning):
        assert code_identity(again["f"]).digest != identity.digest


def test_partial_dataclass_and_instances(make_module: Any) -> None:
    source = """
        import dataclasses
        import functools

        @dataclasses.dataclass(frozen=True)
        class Config:
            gap: int = 30

            def doubled(self):
                return self.gap * 2

        CFG = Config(gap=30)

        def scale(x, k):
            return x * k

        TRIPLE = functools.partial(scale, k=3)

        def f(x):
            return TRIPLE(x) + CFG.doubled()
        """
    mod = make_module("objs", source)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CodeIdentityWarning)
        first = code_identity(mod.f)
    deps = first.components["dependencies"]
    assert deps[f"{mod.__name__}:TRIPLE"]["kind"] == "partial"
    assert deps[f"{mod.__name__}:Config"]["kind"] == "class"
    assert f"{mod.__name__}:scale" in deps
    object.__setattr__(mod.CFG, "gap", 31)
    assert code_identity(mod.f).digest != first.digest
    mod.CFG = mod.Config(gap=30)
    mod.TRIPLE = functools.partial(mod.scale, k=4)
    assert code_identity(mod.f).digest != first.digest


def test_functions_reached_through_closures_decorators_features_and_classes(
    make_module: Any,
) -> None:
    make_module("helpers", "def h(x):\n    return x * 5\n")
    source = """
        import functools

        from featurecache.feature import cached_feature


        def compose(fn):
            def composed(x):
                return fn(x) + 1

            return composed


        def inner(x):
            return x - 1


        def logged(fn):
            @functools.wraps(fn)
            def wrapper(*args):
                return fn(*args)

            return wrapper


        @logged
        def decorated_helper(x):
            return x * 2


        @functools.lru_cache(maxsize=None)
        def cached_helper(x):
            return x * 3


        @cached_feature
        def upstream(x):
            return x * 4


        class Base:
            def base_method(self):
                return 1


        class Child(Base):
            @staticmethod
            def s(x):
                return x

            @classmethod
            def c(cls):
                return cls.__name__

            @property
            def p(self):
                return 2


        composed = compose(inner)


        def f(x):
            from .helpers import h

            return (
                composed(x) + decorated_helper(x) + cached_helper(x) + upstream(x) + h(x)
                + Child().p
            )
        """
    mod = make_module("objs", source)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CodeIdentityWarning)
        identity = code_identity(mod.f)
    deps = identity.components["dependencies"]
    name = mod.__name__
    package = name.rpartition(".")[0]
    for key in ("inner", "decorated_helper", "cached_helper", "upstream", "Base", "Child"):
        assert f"{name}:{key}" in deps, key
    assert f"{package}.helpers:h" in deps
    assert f"{name}:compose.<locals>.composed.<closure>.fn" in deps
    assert f"{name}:logged.<locals>.wrapper" in deps  # the wrapper, under its own name
    assert not any("#" in key for key in deps)
    assert set(deps[f"{name}:Child"]["members"]) == {"s", "c", "p"}
    assert identity.components["libraries"] == {
        "featurecache": importlib.metadata.version("featurecache")
    }


def test_notebook_cells_are_hashed_from_their_source() -> None:
    import linecache

    def run_cell(name: str, source: str) -> dict[str, Any]:
        # What IPython does with a cell: register its text in linecache, then run it.
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
        namespace: dict[str, Any] = {"__name__": "__main__"}
        exec(compile(source, name, "exec"), namespace)
        return namespace

    cell = "GAP = 3\n\ndef f(x):\n    return x + GAP\n"
    first = code_identity(run_cell("<ipython-input-1-aaaa>", cell)["f"])
    assert first.components["function"]["mode"] == "ast" and first.warnings == ()
    commented = code_identity(run_cell("<ipython-input-2-bbbb>", "# note\n" + cell)["f"])
    assert commented.digest == first.digest
    changed = code_identity(run_cell("<ipython-input-3-cccc>", cell.replace("3", "4"))["f"])
    assert changed.digest != first.digest


def test_user_module_used_as_a_value_is_hashed_whole_and_reported(make_module: Any) -> None:
    make_module("conf", "A = 1\nB = 2\n")
    mod = make_module("uses", "from . import conf\n\ndef f(name):\n    return vars(conf)[name]\n")
    with pytest.warns(CodeIdentityWarning):
        identity = code_identity(mod.f)
    package = mod.__name__.rpartition(".")[0]
    assert identity.components["dependencies"][f"{package}.conf:<module>"]["kind"] == "module"
    assert any("used as a value" in w and "uses.py:4" in w for w in identity.warnings)
    with pytest.raises(CodeIdentityError):
        code_identity(mod.f, strict=True)


VALUES = """
import datetime
import enum
import logging
import pathlib
import re
from decimal import Decimal

import numpy as np
import polars as pl


class Color(enum.Enum):
    RED = 1


def double(x):
    return 2 * x


LOG = logging.getLogger("x")
ARRAY = np.arange(6, dtype="int32").reshape(2, 3)
FRAME = pl.DataFrame({"a": [1, 2], "b": ["x", None]})
TYPES = {"a": pl.Int64, "b": pl.Datetime("us"), "c": np.dtype("float32")}
MISC = [re.compile("a+", re.I), pathlib.PurePosixPath("/x"), Decimal("1.5"), 2j, range(3),
        datetime.date(2024, 1, 1), Color.RED, frozenset({3, 1}), {"f": double}, np.int64(3)]
CYCLE = [1]
CYCLE.append(CYCLE)


def f(x):
    LOG.info("x")
    return x + ARRAY.sum() + FRAME.height + len(TYPES) + len(MISC) + len(CYCLE)
"""


def test_values_of_many_types_are_hashed_without_warnings(make_module: Any) -> None:
    mod = make_module("vals", VALUES)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CodeIdentityWarning)
        first = code_identity(mod.f)
    deps = first.components["dependencies"]
    assert f"{mod.__name__}:double" in deps  # a function inside a constant is followed
    assert set(first.components["libraries"]) == {"numpy", "polars"}
    mod.ARRAY[0, 0] = 99  # mutated in place
    second = code_identity(mod.f)
    assert second.digest != first.digest
    mod.FRAME = mod.FRAME.with_columns(mod.pl.col("a") + 1)
    third = code_identity(mod.f)
    assert third.digest != second.digest
    mod.MISC[0] = mod.re.compile("a+")  # the flags differ
    assert code_identity(mod.f).digest != third.digest


def test_where_code_comes_from() -> None:
    import yaml  # noqa: F401 - loaded, as a referenced library would be

    from featurecache.fingerprint.code import libraries

    assert libraries.origin_of_module("json") == "stdlib"
    assert libraries.origin_of_module("sys") == "stdlib"  # builtin, no file
    assert libraries.origin_of_module("polars.functions") == "library"
    assert libraries.origin_of_module("featurecache.keys") == "library"  # itself, even editable
    assert libraries.origin_of_module(__name__) == "user"
    assert libraries.origin_of_module("__main__") == "user"
    assert libraries.distributions_of("yaml.loader") == ("PyYAML",)  # module ≠ distribution name
    assert libraries.distributions_of("polars.functions") == ("polars",)
    assert libraries.display_path("/x/y/pipeline/util.py", "pipeline.util") == "pipeline/util.py"
    assert libraries.display_path("/x/pipeline/__init__.py", "pipeline") == "pipeline/__init__.py"
    assert libraries.display_path("<ipython-input-1-a>", "__main__") == "<ipython-input-1-a>"


def test_a_constants_shown_value_is_a_snapshot_not_the_live_object(make_module: Any) -> None:
    # The key records a module constant's value for why and the miss log. A list mutated after
    # the key was built must not change what that key says it was built from (it showed
    # "[3, 3] → [3, 3]" for a list that had grown between two calls).
    mod = make_module("snap", "SEEN = [1]\n\ndef f():\n    return len(SEEN)\n")
    identity = code_identity(mod.f)
    [record] = [v for k, v in identity.components["dependencies"].items() if k.endswith("SEEN")]
    assert record["value"] == [1]
    mod.SEEN.append(2)
    assert record["value"] == [1]
