"""The input-mutation guard (``fingerprint.mutation``): a feature body that changes an argument
in place warns on the miss, naming the feature and the argument; the metadata check is always
on, the content re-check only with ``check_input_mutation``. Through a real cache (SQLite and a
local folder), plus one run in two fresh processes."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import polars as pl
import pytest

import featurecache
from featurecache import FeatureCache, InputMutatedWarning
from featurecache.errors import ConfigError
from featurecache.fingerprint.mutation import WALK_LIMIT, watch_inputs
from featurecache.fingerprint.types import InputFingerprint
from featurecache.settings import load_settings
from tests.team_support import BACKENDS, TeamBackend, team_backend


def _cache(root: Path, **settings: Any) -> FeatureCache:
    return FeatureCache(catalog=f"sqlite:///{root / 'c.db'}", store=root / "a", **settings)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[FeatureCache]:
    fc = _cache(tmp_path)
    yield fc
    fc.close()


@pytest.fixture
def full_cache(tmp_path: Path) -> Iterator[FeatureCache]:
    fc = _cache(tmp_path, check_input_mutation=True)
    yield fc
    fc.close()


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"a": [3, 1, 2], "b": [0.5, None, 1.5]})


def _mutations(run: Callable[[], object]) -> list[InputMutatedWarning]:
    """The InputMutatedWarnings ``run`` emits (every one, even a repeat)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [w.message for w in caught if isinstance(w.message, InputMutatedWarning)]


# -- features, as users write them ------------------------------------------------------


def add_column(df: pd.DataFrame) -> pd.DataFrame:
    df["new"] = 1
    return df[["a"]].copy()


def add_column_properly(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(new=1)


def edit_a_value(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[0, "a"] = 99
    return df[["a"]].copy()


PANDAS_MUTATIONS: dict[str, tuple[Callable[[pd.DataFrame], Any], str]] = {
    "add column": (lambda df: df.__setitem__("new", 1), "added column 'new'"),
    "drop column": (lambda df: df.drop(columns="b", inplace=True), "removed column 'b'"),
    "rename": (lambda df: df.rename(columns={"a": "z"}, inplace=True), "added column 'z'"),
    "sort": (lambda df: df.sort_values("a", inplace=True), "changed the index"),
    "set index": (lambda df: df.set_index("a", inplace=True), "changed the index"),
    "name the index": (lambda df: setattr(df.index, "name", "id"), "renamed the index"),
    "drop rows": (lambda df: df.dropna(inplace=True), "shape (3, 2) -> (2, 2)"),
    "change a dtype": (lambda df: df.__setitem__("a", df["a"].astype(float)), "dtype"),
}

READ_ONLY_USES: dict[str, Callable[[pd.DataFrame], Any]] = {
    "assign": lambda df: df.assign(new=1),
    "sort a copy": lambda df: df.sort_values("a"),
    "describe": lambda df: df.describe(),
    "values": lambda df: df.to_numpy().sum(),
    "groupby": lambda df: df.groupby("a").sum(),
    # In place, but a no-op: the new RangeIndex equals the old one.
    "reset a RangeIndex": lambda df: df.reset_index(drop=True, inplace=True),
}


# -- through a real cache ---------------------------------------------------------------


def test_adding_a_column_to_the_input_warns_on_the_miss_naming_feature_and_argument(
    cache: FeatureCache,
) -> None:
    feature = cache.cached_feature(add_column)
    df = _frame()
    with pytest.warns(InputMutatedWarning) as record:
        feature(df)
    [warning] = [w for w in record if isinstance(w.message, InputMutatedWarning)]
    message = warning.message
    assert isinstance(message, InputMutatedWarning)
    assert (message.feature, message.argument) == ("add_column", "df")
    text = str(message)
    assert "feature 'add_column' changed its argument 'df' in place (added column 'new')" in text
    assert "its change is not replayed on a hit" in text
    assert "return the new frame instead" in text
    # It points at the line that called the feature, not into featurecache.
    assert warning.filename == __file__
    # The hit does not run the body: the caller's frame keeps its columns, and nothing warns.
    again = _frame()
    assert _mutations(lambda: feature(again)) == []
    assert list(again.columns) == ["a", "b"]
    assert cache.engine.session.hits == 1


def test_a_feature_that_does_not_mutate_does_not_warn(cache: FeatureCache) -> None:
    feature = cache.cached_feature(add_column_properly)
    df = _frame()
    assert _mutations(lambda: feature(df)) == []
    assert list(df.columns) == ["a", "b"]


@pytest.mark.parametrize("name", sorted(PANDAS_MUTATIONS))
def test_every_metadata_change_of_a_pandas_frame_is_seen(cache: FeatureCache, name: str) -> None:
    mutate, said = PANDAS_MUTATIONS[name]

    def mutating(df: pd.DataFrame, case: str) -> pd.DataFrame:
        mutate(df)
        return pd.DataFrame({"case": [case]})

    [warning] = _mutations(lambda: cache.cached_feature(mutating)(_frame(), name))
    assert warning.argument == "df"
    assert said in warning.change


@pytest.mark.parametrize("name", sorted(READ_ONLY_USES))
def test_reading_the_input_does_not_warn(full_cache: FeatureCache, name: str) -> None:
    # With the content re-check on too: no false alarm from any of these.
    use = READ_ONLY_USES[name]

    def reading(df: pd.DataFrame, case: str) -> pd.DataFrame:
        use(df)
        return pd.DataFrame({"case": [case]})

    assert _mutations(lambda: full_cache.cached_feature(reading)(_frame(), name)) == []


def test_a_value_edited_in_place_is_seen_only_by_the_full_check(tmp_path: Path) -> None:
    # Same shape, columns, index and dtypes: only the content fingerprint differs.
    with _cache(tmp_path / "cheap") as cheap:
        assert _mutations(lambda: cheap.cached_feature(edit_a_value)(_frame())) == []
    with _cache(tmp_path / "full", check_input_mutation=True) as full:
        [warning] = _mutations(lambda: full.cached_feature(edit_a_value)(_frame()))
    assert (warning.feature, warning.argument) == ("edit_a_value", "df")
    assert "changed its values" in warning.change


def test_pandas_series_metadata_and_values(tmp_path: Path) -> None:
    def rename(s: pd.Series) -> pd.DataFrame:
        s.name = "renamed"
        return pd.DataFrame({"n": [len(s)]})

    def double(s: pd.Series) -> pd.DataFrame:
        s *= 2
        return pd.DataFrame({"n": [len(s)]})

    with _cache(tmp_path / "cheap") as cheap:
        [warning] = _mutations(lambda: cheap.cached_feature(rename)(pd.Series([1, 2], name="s")))
        assert "renamed" in warning.change and "Series" in str(warning)
        assert _mutations(lambda: cheap.cached_feature(double)(pd.Series([1, 2]))) == []
    with _cache(tmp_path / "full", check_input_mutation=True) as full:
        [warning] = _mutations(lambda: full.cached_feature(double)(pd.Series([1, 2])))
    assert "changed its values" in warning.change


POLARS_MUTATIONS: dict[str, tuple[Callable[[pl.DataFrame], Any], bool]] = {
    # name: (in-place change, seen by the metadata check)
    "insert_column": (lambda df: df.insert_column(0, pl.Series("new", [1, 2, 3])), True),
    "drop_in_place": (lambda df: df.drop_in_place("b"), True),
    "rename": (lambda df: setattr(df, "columns", ["x", "y"]), True),
    "extend": (lambda df: df.extend(pl.DataFrame({"a": [9], "b": ["z"]})), True),
    "set a value": (lambda df: df.__setitem__((0, "a"), 99), False),
}


@pytest.mark.parametrize("name", sorted(POLARS_MUTATIONS))
def test_polars_in_place_methods(tmp_path: Path, name: str) -> None:
    mutate, cheaply_seen = POLARS_MUTATIONS[name]

    def mutating(df: pl.DataFrame, case: str) -> pl.DataFrame:
        mutate(df)
        return pl.DataFrame({"case": [case]})

    def frame() -> pl.DataFrame:
        return pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})

    with _cache(tmp_path / "cheap") as cheap:
        found = _mutations(lambda: cheap.cached_feature(mutating)(frame(), name))
        assert len(found) == (1 if cheaply_seen else 0)
    with _cache(tmp_path / "full", check_input_mutation=True) as full:
        [warning] = _mutations(lambda: full.cached_feature(mutating)(frame(), name))
    assert warning.argument == "df"


def test_polars_with_columns_is_not_in_place(full_cache: FeatureCache) -> None:
    def derive(df: pl.DataFrame) -> pl.DataFrame:
        return df.with_columns(c=pl.col("a") * 2)

    df = pl.DataFrame({"a": [1, 2, 3]})
    assert _mutations(lambda: full_cache.cached_feature(derive)(df)) == []


def test_a_carried_polars_input_mutated_in_place(full_cache: FeatureCache) -> None:
    # The input came out of the cache (carried: its key fingerprint is the artifact id, no
    # rehash); untouched it costs no hash after the body either, mutated it is seen.
    def numbers(n: int) -> pl.DataFrame:
        return pl.DataFrame({"a": list(range(n))})

    def reads(df: pl.DataFrame) -> pl.DataFrame:
        return df.select(pl.col("a").sum())

    def replaces(df: pl.DataFrame) -> pl.DataFrame:
        df.replace_column(0, df["a"] * 2)  # same name and dtype: only the content changes
        return df.select(pl.col("a").sum())

    source = full_cache.cached_feature(numbers)
    source(3)
    full_cache.engine.flush()
    carried = source(3)  # a hit: a frame the cache built from the artifact
    assert _mutations(lambda: full_cache.cached_feature(reads)(carried)) == []
    [warning] = _mutations(lambda: full_cache.cached_feature(replaces)(carried))
    assert warning.argument == "df"


def test_numpy_arrays(tmp_path: Path) -> None:
    def normalise(x: np.ndarray) -> pd.DataFrame:
        x -= x.mean()
        return pd.DataFrame({"x": x.copy()})

    def reshape(x: np.ndarray) -> pd.DataFrame:
        x.shape = (2, 2)
        return pd.DataFrame({"n": [x.size]})

    with _cache(tmp_path / "cheap") as cheap:
        values = np.arange(4, dtype=float)
        assert _mutations(lambda: cheap.cached_feature(normalise)(values)) == []
        [warning] = _mutations(lambda: cheap.cached_feature(reshape)(np.arange(4)))
        assert "shape (4,) -> (2, 2)" in warning.change
        assert "return the new array instead" in str(warning)
    with _cache(tmp_path / "full", check_input_mutation=True) as full:
        [warning] = _mutations(lambda: full.cached_feature(normalise)(np.arange(4, dtype=float)))
    assert warning.argument == "x" and "changed its values" in warning.change


def test_frames_inside_lists_and_dicts_are_named_by_where_they_sit(tmp_path: Path) -> None:
    def split(parts: dict[str, pd.DataFrame], extra: list[np.ndarray]) -> pd.DataFrame:
        parts["train"]["flag"] = True
        extra[1] *= 3
        return pd.DataFrame({"n": [len(parts)]})

    def call(fc: FeatureCache) -> list[InputMutatedWarning]:
        parts = {"train": _frame(), "test": _frame()}
        extra = [np.zeros(2), np.ones(2)]
        return _mutations(lambda: fc.cached_feature(split)(parts, extra))

    with _cache(tmp_path / "cheap") as cheap:
        assert [w.argument for w in call(cheap)] == ["parts['train']"]
    with _cache(tmp_path / "full", check_input_mutation=True) as full:
        assert [w.argument for w in call(full)] == ["parts['train']", "extra[1]"]


def test_a_body_that_raises_is_not_checked(cache: FeatureCache) -> None:
    def fails(df: pd.DataFrame) -> pd.DataFrame:
        df["half"] = 1
        raise KeyError("boom")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(KeyError, match="boom"):
            cache.cached_feature(fails)(_frame())
    assert not [w for w in caught if issubclass(w.category, InputMutatedWarning)]


# -- the walk into config objects (without the cache: config inputs are another part) ----


class Split(NamedTuple):
    train: pd.DataFrame
    test: pd.DataFrame


@dataclass
class Config:
    frames: Split
    weights: np.ndarray
    label: str = "y"
    more: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Call:
    """The parts of the engine's ``Call`` the guard reads (``mutation.WatchedCall``)."""

    feature: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    inputs: Mapping[str, InputFingerprint]


def _watched_call(func: Callable[..., Any], *args: Any) -> _Call:
    return _Call(featurecache.cached_feature(func), args, {}, {})


def uses_config(cfg: Config, scale: int = 1) -> pd.DataFrame:
    cfg.frames.test["leak"] = 1
    cfg.weights.resize(3, refcheck=False)
    return pd.DataFrame()


def test_config_objects_are_searched_for_frames() -> None:
    cfg = Config(Split(_frame(), _frame()), np.zeros(2))
    call = _watched_call(uses_config, cfg)
    watch = watch_inputs(call)
    assert [w.where for w in watch.watched] == [
        "cfg.frames.train",
        "cfg.frames.test",
        "cfg.weights",
    ]
    uses_config(cfg)
    assert [(m.argument, m.where) for m in watch.mutations()] == [
        ("cfg", "cfg.frames.test"),
        ("cfg", "cfg.weights"),
    ]


def test_the_walk_is_bounded() -> None:
    # A frame after WALK_LIMIT plain items is not searched for: the guard stays cheap.
    df = _frame()
    items: list[Any] = [*range(WALK_LIMIT), df]
    watch = watch_inputs(_watched_call(uses_config, items))
    assert watch.watched == []
    watch = watch_inputs(_watched_call(uses_config, [df, *range(WALK_LIMIT)]))
    assert [w.where for w in watch.watched] == ["cfg[0]"]


def test_the_same_object_twice_is_watched_once() -> None:
    df = _frame()
    watch = watch_inputs(_watched_call(uses_config, [df, df], {"again": df}))
    assert [w.where for w in watch.watched] == ["cfg[0]"]


# -- the setting and the warning class ----------------------------------------------------


def test_the_setting_from_every_source(tmp_path: Path) -> None:
    assert load_settings(environ={}, cwd=tmp_path).check_input_mutation is False
    on = load_settings(environ={"FEATURECACHE_CHECK_INPUT_MUTATION": "1"}, cwd=tmp_path)
    assert on.check_input_mutation is True
    assert load_settings(environ={}, cwd=tmp_path, check_input_mutation=True).check_input_mutation
    (tmp_path / "pyproject.toml").write_text("[tool.featurecache]\ncheck_input_mutation = true\n")
    assert load_settings(environ={}, cwd=tmp_path).check_input_mutation is True
    with pytest.raises(ConfigError, match="FEATURECACHE_CHECK_INPUT_MUTATION"):
        load_settings(environ={"FEATURECACHE_CHECK_INPUT_MUTATION": "sometimes"}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="check_input_mutation"):
        FeatureCache(check_input_mutation="sometimes")


def test_the_warning_is_public_and_survives_pickling() -> None:
    assert featurecache.InputMutatedWarning is InputMutatedWarning
    assert issubclass(InputMutatedWarning, UserWarning)
    warning = InputMutatedWarning("f", "df", "added column 'x'", "return the new frame instead")
    copy = pickle.loads(pickle.dumps(warning))
    assert (copy.feature, copy.argument, copy.change, str(copy)) == (
        "f",
        "df",
        "added column 'x'",
        str(warning),
    )


# -- two fresh processes ------------------------------------------------------------------

USER_MODULE = """
import pandas as pd
from featurecache import cached_feature

@cached_feature
def with_flag(df: pd.DataFrame) -> pd.DataFrame:
    df["flag"] = df["a"] > 1   # in place: the caller's frame gains a column on a miss only
    return df[["a"]].copy()

@cached_feature
def clipped(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[df["a"] > 2, "a"] = 2   # in place, same shape: only the content re-check sees it
    return df[["a"]].copy()
"""

RUN = """
import json, warnings
import pandas as pd
import features

feature = getattr(features, FEATURE)
df = pd.DataFrame({"a": DATA})
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    feature(df)
mutated = [str(w.message) for w in caught if w.category.__name__ == "InputMutatedWarning"]
print(json.dumps({"frame": df.to_dict("list"), "warnings": mutated}))
"""


@pytest.fixture(params=BACKENDS)
def team(request: pytest.FixtureRequest, tmp_path: Path) -> TeamBackend:
    backend = team_backend(request, tmp_path)
    backend.project.write("features.py", USER_MODULE)
    return backend


def _run(team: TeamBackend, feature: str, data: list[int], **env: str) -> dict[str, Any]:
    script = RUN.replace("FEATURE", repr(feature)).replace("DATA", repr(data))
    result: dict[str, Any] = team.run_json(script, **env)
    return result


def test_the_miss_warns_and_the_hit_in_a_new_process_shows_why(team: TeamBackend) -> None:
    cold, warm = _run(team, "with_flag", [1, 2, 3]), _run(team, "with_flag", [1, 2, 3])
    # The cold run's frame gained the column, the warm run's did not: the cold run warned.
    assert cold["frame"] == {"a": [1, 2, 3], "flag": [False, True, True]}
    assert warm["frame"] == {"a": [1, 2, 3]}
    [message] = cold["warnings"]
    assert "feature 'with_flag' changed its argument 'df' in place (added column 'flag')" in message
    assert "return the new frame instead" in message
    assert warm["warnings"] == []  # a hit runs no body: nothing changed, nothing to say


def test_the_content_recheck_is_switched_on_by_the_environment(team: TeamBackend) -> None:
    # Off by default: a value edited in place with the same shape goes unseen.
    off = _run(team, "clipped", [5, 1, 3])
    assert (off["frame"], off["warnings"]) == ({"a": [2, 1, 2]}, [])
    on = {"FEATURECACHE_CHECK_INPUT_MUTATION": "1"}
    cold = _run(team, "clipped", [1, 2, 3], **on)
    assert cold["frame"] == {"a": [1, 2, 2]}
    [message] = cold["warnings"]
    assert "feature 'clipped' changed its argument 'df' in place (changed its values" in message
    warm = _run(team, "clipped", [1, 2, 3], **on)
    assert (warm["frame"], warm["warnings"]) == ({"a": [1, 2, 3]}, [])
