"""Tables that fit: ``featurecache.cli.output.table_lines`` (pure: a width in, lines out)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from featurecache.cli.output import COLUMN_GAP, MIN_SHRUNK, human_age, table_lines

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

column = st.tuples(
    st.text("abcdefgh_", min_size=1, max_size=12),  # header
    st.booleans(),  # may shrink
    st.lists(st.text("abcdefghijklmnop =…é漢", max_size=90), min_size=3, max_size=3),
)


@given(st.lists(column, min_size=1, max_size=9), st.integers(20, 200))
def test_every_row_is_one_line_and_fixed_columns_stay_whole(
    columns: list[tuple[str, bool, list[str]]], width: int
) -> None:
    from rich.cells import cell_len

    names = [f"{name}{i}" for i, (name, _, _) in enumerate(columns)]
    shrink = {n for n, (_, flex, _) in zip(names, columns, strict=True) if flex}
    rows = [[cells[r] for _, _, cells in columns] for r in range(3)]
    lines = table_lines("title", names, rows, width, shrink=shrink)
    assert len(lines) == 3 + len(rows)  # title, header, rule, one line per row
    fixed = [i for i, n in enumerate(names) if n not in shrink]
    for row, line in zip(rows, lines[3:], strict=True):
        for i in fixed:
            assert row[i].rstrip() in line  # ids and numbers are never cut
    needed = sum(
        max(cell_len(n), *(cell_len(r[i]) for r in rows)) if n not in shrink else 0
        for i, n in enumerate(names)
    )
    floor = sum(
        min(MIN_SHRUNK, max(cell_len(n), *(cell_len(r[i]) for r in rows)))
        for i, n in enumerate(names)
        if n in shrink
    )
    if needed + floor + COLUMN_GAP * (len(names) - 1) <= width:
        assert all(cell_len(line) <= width for line in lines[1:])


def test_free_text_is_cut_with_an_ellipsis_and_ids_are_not() -> None:
    lines = table_lines(
        "2 artifacts",
        ["feature", "artifact", "args"],
        [["user_session_features", "0123456789ab", "gap_minutes=15 source=clicks.parquet"]],
        34,
        shrink=("feature", "args"),
    )
    assert lines == [
        "2 artifacts",
        "feature   artifact      args",
        "─" * 33,
        "user_se…  0123456789ab  gap_minu…",
    ]
    # Narrower than the fixed columns and the shrunk ones' floor: over the width, never
    # an id cut.
    narrow = table_lines("t", ["feature", "artifact"], [["a" * 30, "0123456789ab"]], 10)
    assert narrow[-1] == "a" * 30 + "  0123456789ab"


def test_a_table_with_room_is_left_whole() -> None:
    lines = table_lines("t", ["a", "bb"], [["x", "long value"]], 80, shrink=("bb",))
    assert lines[1:] == ["a  bb", "─" * 13, "x  long value"]


def test_human_age() -> None:
    for delta, text in [
        (timedelta(0), "now"),
        (timedelta(seconds=45), "45s"),
        (timedelta(minutes=12), "12m"),
        (timedelta(hours=3, minutes=59), "3h"),
        (timedelta(days=5), "5d"),
        (timedelta(weeks=8), "8w"),
        (timedelta(days=800), "2y"),
    ]:
        assert human_age(NOW - delta, NOW) == text
    assert human_age(None, NOW) == "-"
    assert human_age((NOW - timedelta(hours=2)).replace(tzinfo=None), NOW) == "2h"
