"""The ``featurecache`` command: a thin typer layer over library functions.

Errors are one line on stderr with a non-zero exit code, never a traceback: featurecache's
own errors and OS errors exit 2, usage errors (bad options) exit 2, an interrupt 130, and
anything unexpected 70 (a bug: the line says so).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from featurecache.cli.commands import (
    check_serving as commands_check_serving,
)
from featurecache.cli.commands import (
    clear as commands_clear,
)
from featurecache.cli.commands import (
    db as commands_db,
)
from featurecache.cli.commands import (
    export as commands_export,
)
from featurecache.cli.commands import (
    gc as commands_gc,
)
from featurecache.cli.commands import (
    info as commands_info,
)
from featurecache.cli.commands import (
    lineage as commands_lineage,
)
from featurecache.cli.commands import (
    ls as commands_ls,
)
from featurecache.cli.commands import (
    pin as commands_pin,
)
from featurecache.cli.commands import (
    show as commands_show,
)
from featurecache.cli.commands import (
    stats as commands_stats,
)
from featurecache.cli.commands import (
    verify as commands_verify,
)
from featurecache.cli.commands import (
    why as commands_why,
)
from featurecache.errors import FeatureCacheError

app = typer.Typer(
    name="featurecache",
    help="Inspect, explain, verify and prune a featurecache cache.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's plain help: flags without a `<bool>` metavar, and it fits 80 columns.
    rich_markup_mode=None,
)


def version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("featurecache")
    except PackageNotFoundError:  # run from a source tree that is not installed
        found = "unknown"
    return f"featurecache {found} (Python {sys.version.split()[0]})"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            help="Print featurecache's version and exit.",
        ),
    ] = False,
) -> None:
    """Inspect, explain, verify and prune a featurecache cache. Every command names the cache
    it uses on its first line; `featurecache info` shows how it was found."""


commands_info.register(app)
commands_ls.register(app)
commands_show.register(app)
commands_why.register(app)
commands_stats.register(app)
commands_gc.register(app)
commands_verify.register(app)
commands_pin.register(app)
commands_db.register(app)
commands_lineage.register(app)
commands_export.register(app)
commands_clear.register(app)
commands_check_serving.register(app)

EX_SOFTWARE = 70


PREFIX = "featurecache: error: "


def _error(message: object) -> None:
    # One line, whatever the message holds, and one prefix: a message that names the
    # program itself ("featurecache gc: no policy given") loses that word.
    text = " ".join(str(message).split())
    for doubled in ("featurecache: error: ", "featurecache: ", "featurecache "):
        if text.startswith(doubled):
            text = text[len(doubled) :]
            break
    print(f"{PREFIX}{text}", file=sys.stderr)


def _usage_error(exc: typer.TyperException) -> int:
    """A bad command line: one line naming the problem and where to get help."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":
        # ``featurecache`` or ``featurecache db`` alone: the help is the answer.
        print(exc.format_message(), file=sys.stderr)
        return 2
    where = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
    # typer validates choices with pydantic, whose messages start with this noise.
    message = exc.format_message().replace("Value error, ", "")
    _error(f"{message}{where}")
    return int(getattr(exc, "exit_code", 2) or 2)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        result = app(args=argv, standalone_mode=False, prog_name="featurecache")
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except (typer.Abort, KeyboardInterrupt):
        print("featurecache: aborted", file=sys.stderr)
        return 130
    except typer.TyperException as exc:  # click's usage errors, vendored by typer
        return _usage_error(exc)
    except FeatureCacheError as exc:
        _error(exc)
        return 2
    except OSError as exc:
        _error(exc)
        return 2
    except Exception as exc:  # noqa: BLE001 - the promise is one line, never a traceback
        _error(f"internal error ({type(exc).__name__}: {exc}); this is a bug, please report it")
        return EX_SOFTWARE
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
