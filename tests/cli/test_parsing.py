"""Durations and sizes on the command line: what is accepted, what is refused and how."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from featurecache.cli.parsing import (
    duration_parser,
    format_duration,
    parse_duration,
    parse_size,
    size_parser,
)
from featurecache.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
        ("1.5h", timedelta(minutes=90)),
        ("0.25s", timedelta(milliseconds=250)),
        (" 1d 12h ", timedelta(days=1, hours=12)),
        ("7D", timedelta(days=7)),
        ("3days", timedelta(days=3)),
        ("1 hour 30 minutes", timedelta(minutes=90)),
        ("90m", timedelta(minutes=90)),  # a unit may exceed the next one up
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text, "--older-than") == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("7", "has no unit"),
        ("1.5", "has no unit"),
        ("", "empty duration"),
        ("   ", "empty duration"),
        ("-1d", "is negative"),
        ("0s", "is zero"),
        ("0d0h", "is zero"),
        ("0.0000001s", "is zero"),  # below a microsecond
        ("1mo", "unknown unit 'mo'"),
        ("1y", "unknown unit 'y'"),
        ("d", "is not a duration"),
        ("abc", "is not a duration"),
        ("1d12", "is not a duration"),
        ("1..5h", "is not a duration"),
        ("1e3s", "unknown unit 'e'"),
        ("12h1d", "out of order"),
        ("1h1h", "repeats a unit"),
        ("1h 1hour", "repeats a unit"),
        ("\u0663d", "is not a duration"),  # ARABIC-INDIC DIGIT THREE
        ("99999999999w", "is too long"),
    ],
)
def test_bad_durations_name_the_option_and_give_examples(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_duration(text, "--unused-for")
    error = caught.value
    assert error.setting == "--unused-for"
    assert problem in error.problem
    assert str(error).startswith("--unused-for: ")
    assert "e.g. 7d, 12h, 30m, 45s, 2w or 1d12h" in str(error)
    assert isinstance(error, ValueError)


def test_zero_duration_only_when_allowed() -> None:
    assert parse_duration("0s", "--grace", allow_zero=True) == timedelta(0)
    with pytest.raises(ConfigError, match=r"^--grace: '0h' is zero"):
        parse_duration("0h", "--grace")


def test_zero_needs_no_unit_where_zero_is_allowed() -> None:
    # gc's hint says `--grace 0`: zero is zero in every unit.
    assert parse_duration("0", "--grace", allow_zero=True) == timedelta(0)
    assert duration_parser("--grace", allow_zero=True)("0.0") == timedelta(0)
    with pytest.raises(ConfigError, match="has no unit"):
        parse_duration("0", "--older-than")
    with pytest.raises(ConfigError, match="has no unit"):
        parse_duration("7", "--grace", allow_zero=True)


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(days=1, hours=12), "1d12h"),
        (timedelta(weeks=2), "2w"),
        (timedelta(days=9), "1w2d"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(hours=1, microseconds=20), "1h0.00002s"),
        (-timedelta(hours=2), "-2h"),
    ],
)
def test_format_duration(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text


@given(st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=10**6)))
def test_format_duration_reads_back(duration: timedelta) -> None:
    text = format_duration(duration)
    assert parse_duration(text, "--older-than") == duration
    assert re.fullmatch(r"(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+(\.\d+)?s)?", text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500MB", 500 * 10**6),
        ("20GiB", 20 * 2**30),
        ("1.5GB", 1_500_000_000),
        ("100k", 100_000),
        ("100KB", 100_000),
        ("100KiB", 102_400),
        ("100ki", 102_400),
        ("2TB", 2 * 10**12),
        ("1TiB", 2**40),
        ("1PB", 10**15),
        ("512B", 512),
        ("512b", 512),  # bytes, never bits
        ("20gib", 20 * 2**30),
        (" 20 GiB ", 20 * 2**30),
        ("1.5B", 1),  # whole bytes, rounded down
        ("0.5KiB", 512),
    ],
)
def test_sizes(text: str, expected: int) -> None:
    assert parse_size(text, "--max-size") == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("500", "has no unit"),
        ("", "empty size"),
        ("-1GB", "is negative"),
        ("0GB", "is zero"),
        ("0.1B", "is zero"),
        ("GB", "is not a size"),
        ("1,5GB", "is not a size"),
        ("1e9B", "is not a size"),
        ("10XB", "unknown unit 'xb'"),
        ("10Gb/s", "is not a size"),
        ("1 2GB", "is not a size"),
        ("1\u212a", "is not a size"),  # KELVIN SIGN, which lowercases to "k"
    ],
)
def test_bad_sizes_name_the_option_and_give_examples(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_size(text, "--max-size")
    assert caught.value.setting == "--max-size"
    assert problem in caught.value.problem
    assert "e.g. 500MB, 20GiB, 1.5GB" in str(caught.value)


def test_zero_size_only_when_allowed() -> None:
    assert parse_size("0B", "--max-size", allow_zero=True) == 0


@given(
    st.integers(0, 10**6),
    st.sampled_from(
        [("B", 1), ("KB", 1000), ("mb", 10**6), ("G", 10**9), ("KiB", 1024), ("gib", 2**30)]
    ),
)
def test_sizes_scale_by_their_unit(number: int, unit: tuple[str, int]) -> None:
    suffix, factor = unit
    assert parse_size(f"{number}{suffix}", "--max-size", allow_zero=True) == number * factor


def test_typer_parsers_turn_errors_into_bad_parameter() -> None:
    assert duration_parser("--older-than")("1d") == timedelta(days=1)
    assert size_parser("--max-size")("1KiB") == 1024
    with pytest.raises(typer.BadParameter, match=r"^'7' has no unit .*e\.g\. 7d"):
        duration_parser("--older-than")("7")
    with pytest.raises(typer.BadParameter, match=r"^'0s' is zero"):
        duration_parser("--grace")("0s")
    assert duration_parser("--grace", allow_zero=True)("0s") == timedelta(0)
    with pytest.raises(typer.BadParameter, match=r"^'1' has no unit"):
        size_parser("--max-size")("1")


def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def gc(
        older_than: Annotated[
            timedelta | None,
            typer.Option(
                "--older-than", parser=duration_parser("--older-than"), metavar="DURATION"
            ),
        ] = None,
        max_size: Annotated[
            int | None,
            typer.Option("--max-size", parser=size_parser("--max-size"), metavar="SIZE"),
        ] = None,
    ) -> None:
        typer.echo(f"{older_than!r} {max_size!r}")

    return app


def _plain(text: str) -> str:
    # rich may draw the error in a box and wrap it; compare words only.
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_options_parse_through_typer() -> None:
    result = CliRunner().invoke(_cli(), ["--older-than", "1d12h", "--max-size", "1.5GB"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "datetime.timedelta(days=1, seconds=43200) 1500000000"
    assert CliRunner().invoke(_cli(), []).output.strip() == "None None"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--older-than", "7"], "Invalid value for '--older-than': '7' has no unit"),
        (["--max-size", "lots"], "Invalid value for '--max-size': 'lots' is not a size"),
    ],
)
def test_bad_options_are_usage_errors_naming_the_option(args: list[str], expected: str) -> None:
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == 2
    assert expected in _plain(result.output)
