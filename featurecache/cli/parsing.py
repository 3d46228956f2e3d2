"""Parsing (and showing) the CLI's durations and sizes: ``--older-than 30d``, ``--max-size 20GiB``.

Pure functions that raise ``ConfigError`` naming the option, plus ``typer`` parser factories
that turn those errors into ``typer.BadParameter`` so click prints
``Invalid value for '--older-than': …`` and exits with a usage error.

Choices, made for safety in a command that deletes things:

* A duration needs a unit (``7d``, ``12h``, ``30m``, ``45s``, ``2w``, combined as ``1d12h``,
  decimals allowed as in ``1.5h``): a bare ``7`` is refused rather than guessed as seconds
  or days. Units are w/d/h/m/s (long forms like ``days`` too); ``m`` is minutes, and there
  are no months or years, whose length varies.
* A size needs a unit too: ``B``; decimal ``KB MB GB TB PB`` (or ``K M G T P``) = 1000^n;
  binary ``KiB MiB GiB TiB PiB`` (or ``Ki`` …) = 1024^n; case-insensitive (``b`` is bytes),
  decimals allowed (``1.5GB``) and rounded down to whole bytes.
* Zero is refused unless the caller allows it (``--grace 0``); zero alone needs no unit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal, InvalidOperation

import typer

from featurecache.errors import ConfigError

DURATION_EXAMPLES = "e.g. 7d, 12h, 30m, 45s, 2w or 1d12h"
SIZE_EXAMPLES = "e.g. 500MB, 20GiB, 1.5GB or 100KB (KB/MB/GB = 1000^n, KiB/MiB/GiB = 1024^n)"

_SECOND_US = 1_000_000
_DURATION_UNITS: dict[str, int] = {}  # unit spelling -> microseconds
for _spellings, _seconds in (
    (("w", "wk", "wks", "week", "weeks"), 7 * 86400),
    (("d", "day", "days"), 86400),
    (("h", "hr", "hrs", "hour", "hours"), 3600),
    (("m", "min", "mins", "minute", "minutes"), 60),
    (("s", "sec", "secs", "second", "seconds"), 1),
):
    for _spelling in _spellings:
        _DURATION_UNITS[_spelling] = _seconds * _SECOND_US
# Largest first, so that "1d12h" reads in the conventional order and repeats are caught.
_UNIT_RANK = {"w": 0, "d": 1, "h": 2, "m": 3, "s": 4}
_DISPLAY_UNITS = (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))

_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*", re.ASCII)
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.ASCII)
_SIZE_UNITS: dict[str, int] = {"b": 1}
for _power, _letter in enumerate("kmgtp", start=1):
    _SIZE_UNITS[_letter] = _SIZE_UNITS[f"{_letter}b"] = 1000**_power
    _SIZE_UNITS[f"{_letter}i"] = _SIZE_UNITS[f"{_letter}ib"] = 1024**_power


def parse_duration(text: str, option: str = "duration", *, allow_zero: bool = False) -> timedelta:
    """``"1d12h"`` -> ``timedelta(days=1, hours=12)``; ``ConfigError`` naming ``option`` if bad."""

    def bad(problem: str) -> ConfigError:
        return ConfigError(option, problem, f"Write a number and a unit, {DURATION_EXAMPLES}")

    source = text.strip().lower()
    if not source:
        raise bad("empty duration")
    if source.startswith("-"):
        raise bad(f"{text!r} is negative")
    if not text.isascii():
        raise bad(f"{text!r} is not a duration")
    if allow_zero and re.fullmatch(r"0+(\.0+)?", source, re.ASCII):
        return timedelta(0)  # zero is zero in every unit: `--grace 0`
    if re.fullmatch(r"\d+(\.\d+)?", source, re.ASCII):
        raise bad(f"{text!r} has no unit (seconds? days?)")
    total_us = Decimal(0)
    position = 0
    last_rank = -1
    while position < len(source):
        match = _DURATION_PART.match(source, position)
        if match is None:
            raise bad(f"{text!r} is not a duration")
        number, unit = match.groups()
        if unit not in _DURATION_UNITS:
            raise bad(f"{text!r} has an unknown unit {unit!r} (use w, d, h, m or s)")
        rank = _UNIT_RANK[unit[0]]
        if rank <= last_rank:
            raise bad(f"{text!r} repeats a unit or lists them out of order (largest first)")
        last_rank = rank
        total_us += Decimal(number) * _DURATION_UNITS[unit]
        position = match.end()
    try:
        duration = timedelta(microseconds=int(total_us))
    except OverflowError:
        raise bad(f"{text!r} is too long") from None
    if duration <= timedelta(0) and not allow_zero:
        raise bad(f"{text!r} is zero; give a positive duration")
    return duration


def format_duration(duration: timedelta) -> str:
    """Largest units first, in the syntax ``parse_duration`` reads: ``2w``, ``1d12h``, ``1.5s``."""
    if duration < timedelta(0):
        return "-" + format_duration(-duration)
    seconds = duration.days * 86400 + duration.seconds
    parts = []
    for unit, size in _DISPLAY_UNITS:
        count, seconds = divmod(seconds, size)
        if unit == "s" and duration.microseconds:
            parts.append(f"{count}.{duration.microseconds:06d}".rstrip("0") + "s")
        elif count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def parse_size(text: str, option: str = "size", *, allow_zero: bool = False) -> int:
    """``"1.5GB"`` -> ``1_500_000_000`` bytes; ``ConfigError`` naming ``option`` if bad."""

    def bad(problem: str) -> ConfigError:
        return ConfigError(option, problem, f"Write a number and a unit, {SIZE_EXAMPLES}")

    source = text.strip().lower()
    if not source:
        raise bad("empty size")
    if source.startswith("-"):
        raise bad(f"{text!r} is negative")
    match = _SIZE.fullmatch(source) if text.isascii() else None
    if match is None:
        raise bad(f"{text!r} is not a size")
    number, unit = match.groups()
    if not unit:
        raise bad(f"{text!r} has no unit (write 500B for bytes)")
    if unit not in _SIZE_UNITS:
        raise bad(f"{text!r} has an unknown unit {unit!r}")
    try:
        size = int(Decimal(number) * _SIZE_UNITS[unit])
    except InvalidOperation:  # pragma: no cover - the regex admits only plain decimals
        raise bad(f"{text!r} is not a size") from None
    if size == 0 and not allow_zero:
        raise bad(f"{text!r} is zero; give a positive size")
    return size


def _bad_parameter(error: ConfigError) -> typer.BadParameter:
    # click prefixes "Invalid value for '<option>': ", so the message leaves the option out.
    return typer.BadParameter(f"{error.problem}. {error.fix}")


def duration_parser(option: str, *, allow_zero: bool = False) -> Callable[[str], timedelta]:
    """A ``typer.Option(parser=...)`` for a duration option, e.g. ::

    older_than: Annotated[
        timedelta | None,
        typer.Option("--older-than", parser=duration_parser("--older-than"), metavar="DURATION"),
    ] = None
    """

    def duration(text: str) -> timedelta:
        try:
            return parse_duration(text, option, allow_zero=allow_zero)
        except ConfigError as error:
            raise _bad_parameter(error) from error

    return duration


def size_parser(option: str, *, allow_zero: bool = False) -> Callable[[str], int]:
    """A ``typer.Option(parser=...)`` for a size option (bytes), e.g. ``--max-size 20GB``."""

    def size(text: str) -> int:
        try:
            return parse_size(text, option, allow_zero=allow_zero)
        except ConfigError as error:
            raise _bad_parameter(error) from error

    return size
