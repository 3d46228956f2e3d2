"""Running the CLI in-process for tests: ``main(argv)`` with what it printed captured."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from featurecache.cli.main import main

Invoke = Callable[..., tuple[int, str, str]]


def cli_invoker(capsys: pytest.CaptureFixture[str]) -> Invoke:
    """``invoke(*argv) -> (exit code, stdout, stderr)`` of one CLI run in this process."""

    def invoke(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke
