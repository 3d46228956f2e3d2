"""``featurecache verify``: reconcile the catalog with the store; ``--repair`` what is safe."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from featurecache.cli.output import (
    JsonFlag,
    human_bytes,
    plural,
    print_json,
    print_table,
    progress_bar,
)
from featurecache.cli.parsing import duration_parser

if TYPE_CHECKING:
    from featurecache.ops.verify import VerifyReport


def verify(
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Fix what is safe: remove old orphans and temp files, drop rows of missing "
            "artifacts, quarantine corrupt ones, delete expired leases.",
        ),
    ] = False,
    grace: Annotated[
        timedelta | None,
        typer.Option(
            "--grace",
            parser=duration_parser("--grace", allow_zero=True),
            metavar="DURATION",
            show_default="1h",
            help="Orphans, temp files and tombstones younger than this are work in progress, "
            "not problems.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check that catalog and store agree and every artifact's bytes are intact. Exit code 0
    when clean, 1 when problems were found (even if --repair fixed them)."""
    from featurecache.cli.context import cache_session, echo_header, load, location_of, with_cache
    from featurecache.ops.gc_plan import DEFAULT_GRACE
    from featurecache.ops.verify import verify_cache

    settings = load()
    with cache_session(settings) as (catalog, store), progress_bar(as_json) as progress:
        report = verify_cache(
            catalog,
            store,
            repair=repair,
            grace=DEFAULT_GRACE if grace is None else grace,
            progress=progress,
        )
    location = location_of(settings)
    if as_json:
        print_json(with_cache(report.to_json(), location))
    else:
        echo_header(location)
        render(report)
    raise typer.Exit(0 if report.clean else 1)


def render(report: VerifyReport) -> None:
    if report.problems or report.pending:
        print_table(
            f"{plural(len(report.problems), 'problem')}, {len(report.pending)} in progress",
            ["class", "subject", "detail", "size", "repair"],
            [
                [
                    f.kind if problem else f"{f.kind} (in progress)",
                    _short(f.subject),
                    f.detail,
                    human_bytes(f.size_bytes),
                    f.action if report.repair and problem else "",
                ]
                for problem, group in ((True, report.problems), (False, report.pending))
                for f in group
            ],
            shrink=("detail", "repair"),  # the subject (a short id, a file name) stays whole
        )
    counts = ", ".join(f"{n} {kind}" for kind, n in report.counts().items() if n)
    status = "clean" if report.clean else f"problems: {counts}"
    typer.echo(f"{plural(report.artifacts_read, 'artifact')} read; {status}")
    if report.repair and not report.clean:
        fixed = sum(f.repaired for f in report.problems)
        typer.echo(f"repaired {fixed} of {len(report.problems)}; run verify again to confirm")


def _short(subject: str) -> str:
    """Artifact ids and lease keys git-style (12 characters); file names whole."""
    from featurecache.ops.inventory import short_id

    hexdigits = set("0123456789abcdef")
    return short_id(subject) if len(subject) == 32 and set(subject) <= hexdigits else subject


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
