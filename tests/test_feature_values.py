"""``@cached_feature(values=[...])``: arguments whose strings stay plain values even when
they name a path; validated against the function's parameters when decorating."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from featurecache import FeatureCache
from featurecache.errors import ConfigError


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[FeatureCache]:
    with FeatureCache(
        catalog=f"sqlite:///{tmp_path / 'catalog.db'}",
        store=tmp_path / "artifacts",
        state_dir=tmp_path / "state",
        background_publish=False,
    ) as fc:
        yield fc


def test_values_must_be_argument_names(cache: FeatureCache) -> None:
    with pytest.raises(ConfigError, match="values") as raised:

        @cache.cached_feature(values=["out_dri"])
        def typo(out_dir: str) -> pl.DataFrame:
            return pl.DataFrame()

    assert "'out_dri' is not an argument" in str(raised.value)
    assert "out_dir" in str(raised.value)  # the names it could have meant
    with pytest.raises(ConfigError, match="values"):
        cache.cached_feature(values="out_dir")  # a str is one name spelt as letters
    with pytest.raises(ConfigError, match="values"):
        cache.cached_feature(values=[1])  # type: ignore[list-item]


def test_an_argument_in_values_is_keyed_by_its_text(
    cache: FeatureCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("x\n1\n")
    (tmp_path / "out").mkdir()

    @cache.cached_feature(values=["out_dir"])
    def export(source: str, out_dir: str) -> pl.DataFrame:
        frame = pl.read_csv(source)
        frame.write_csv(f"{out_dir}/run-{len(list(Path(out_dir).iterdir()))}.csv")
        return frame

    session = cache.engine.session
    export("data.csv", "out")
    export("data.csv", "out")  # the output folder changed, but it is only a value here
    assert (session.misses, session.hits) == (1, 1)
    (tmp_path / "data.csv").write_text("x\n2\n")  # the source is still a path
    assert export("data.csv", "out")["x"].to_list() == [2]
    assert (session.misses, session.hits) == (2, 1)
