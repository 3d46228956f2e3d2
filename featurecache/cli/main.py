"""The ``featurecache`` command: a thin typer layer over library functions.

Errors are one line on stderr with a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import sys

import click
import typer

from featurecache.cli import commands_db, commands_ls
from featurecache.errors import FeatureCacheError

app = typer.Typer(
    name="featurecache",
    help="Inspect, explain, verify and prune a featurecache cache.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
commands_ls.register(app)
commands_db.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        result = app(args=argv, standalone_mode=False, prog_name="featurecache")
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.exceptions.Abort:
        print("featurecache: aborted", file=sys.stderr)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except FeatureCacheError as exc:
        print(f"featurecache: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"featurecache: error: {exc}", file=sys.stderr)
        return 2
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
