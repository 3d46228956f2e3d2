"""Every command and subcommand has ``--help`` and is documented in the README (as
sqlite-utils checks its CLI against its docs)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from featurecache.cli.main import app, main

README = Path(__file__).resolve().parents[2] / "README.md"


def _command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        paths.append((*prefix, name))
        paths.extend(_command_paths(sub, (*prefix, name)))
    return paths


COMMANDS = _command_paths(typer.main.get_command(app))


def test_the_commands_of_the_design_are_all_there() -> None:
    names = {path[0] for path in COMMANDS}
    expected = {"ls", "show", "why", "gc", "verify", "stats", "pin", "unpin", "db"}
    assert expected <= names
    assert ("db", "upgrade") in COMMANDS and ("db", "current") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_command_has_help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage" in out and " ".join(path) in out
    # A docstring, not only the usage line.
    assert len(re.sub(r"\s+", " ", out)) > len("Usage: featurecache ") + 40


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_command_is_documented_in_the_readme(path: tuple[str, ...]) -> None:
    readme = README.read_text(encoding="utf-8")
    mention = "featurecache " + " ".join(path)
    assert re.search(rf"`{re.escape(mention)}(\s[^`]*)?`", readme), (
        f"README.md does not document `{mention}`"
    )
