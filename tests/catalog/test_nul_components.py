"""Issue 16, item 12b: a ``str`` argument holding NUL ("a\\x00b") is cached on every backend.
PostgreSQL's JSONB refuses \\u0000, so the catalog stores such strings in key components with
NUL escaped; the key itself (built from the real value) does not change."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import select

from featurecache import FeatureCache
from featurecache.catalog.database import run_read
from featurecache.catalog.models import CacheEntry


def test_a_str_argument_with_nul_is_cached(
    any_clean_catalog_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fc = FeatureCache(catalog=any_clean_catalog_url, store=tmp_path / "artifacts")
    calls: list[str] = []
    try:

        @fc.cached_feature(ignore=["calls"])
        def tagged(tag: str) -> pa.Table:
            calls.append(tag)
            return pa.table({"tag": [tag.replace("\x00", "0")]})

        with caplog.at_level(logging.WARNING):
            assert tagged("a\x00b").num_rows == 1
            fc.engine.flush()
            assert tagged("a\x00b").num_rows == 1
            fc.engine.flush()
        assert calls == ["a\x00b"]  # the second call was a hit
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
        assert tagged("a\x00c").num_rows == 1  # a different string is a different key
        assert calls == ["a\x00b", "a\x00c"]
        fc.engine.flush()
        rows = run_read(
            fc.engine.catalog.engine,
            lambda conn: conn.execute(select(CacheEntry.components)).scalars().all(),
            what="components",
        )
        stored = {components["inputs"]["tag"]["value"] for components in rows}
        assert all("\x00" not in value for value in stored), stored
        assert stored == {"a\\x00b", "a\\x00c"}
    finally:
        fc.close()


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ({"a": ["b", ("c", 1)], "d": None}, {"a": ["b", ("c", 1)], "d": None}),  # untouched
        ({"k\x00": [{"x": "a\x00b"}]}, {"k\\x00": [{"x": "a\\x00b"}]}),  # keys and deep values
        ({"text": "\\u0000"}, {"text": "\\u0000"}),  # the six characters, not a NUL
        ("a\x00", "a\\x00"),
    ],
)
def test_storable_escapes_nul_anywhere_and_leaves_the_rest(value: object, stored: object) -> None:
    from featurecache.catalog.writes import storable

    assert storable(value) == stored


@pytest.mark.parametrize(
    "value",
    [
        {"a": ["b", ("c", 1)], "d": None, "é": 1.5},
        {"k\x00": [{"x": "a\x00b"}]},
        {"text": "\\u0000"},
        "a\x00",
        None,
    ],
)
def test_json_text_is_the_text_of_the_storable_value(value: object) -> None:
    """What the publish statements bind for key components: the JSON type's own dump
    (``json.dumps``) of the storable value, made once."""
    from featurecache.catalog.writes import json_text, storable

    assert json_text(value) == json.dumps(storable(value))
