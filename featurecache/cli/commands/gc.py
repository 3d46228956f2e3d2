"""``featurecache gc``: delete artifacts by policy, never pinned, leased or recent ones."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from featurecache.cli.output import (
    JsonFlag,
    human_age,
    human_bytes,
    plural,
    print_json,
    print_table,
    progress_bar,
)
from featurecache.cli.parsing import duration_parser, format_duration, size_parser

if TYPE_CHECKING:
    from featurecache.catalog.records import GcCandidate
    from featurecache.ops.gc_run import GcResult


def gc(
    older_than: Annotated[
        timedelta | None,
        typer.Option(
            "--older-than",
            parser=duration_parser("--older-than"),
            metavar="DURATION",
            help="Delete artifacts created longer ago than this (e.g. 30d).",
        ),
    ] = None,
    unused_for: Annotated[
        timedelta | None,
        typer.Option(
            "--unused-for",
            parser=duration_parser("--unused-for"),
            metavar="DURATION",
            help="Delete artifacts not used (nor created) for this long (e.g. 14d).",
        ),
    ] = None,
    keep_last: Annotated[
        int | None,
        typer.Option(
            "--keep-last",
            min=1,
            metavar="N",
            help="Keep the N newest artifacts of every feature; alone, delete all others.",
        ),
    ] = None,
    max_size: Annotated[
        int | None,
        typer.Option(
            "--max-size",
            parser=size_parser("--max-size", allow_zero=True),
            metavar="SIZE",
            help="Then delete least recently used artifacts until the cache fits (e.g. 20GB).",
        ),
    ] = None,
    keep_used_by_runs: Annotated[
        bool,
        typer.Option(
            "--keep-used-by-runs", help="Keep every artifact an MLflow run recorded using."
        ),
    ] = False,
    grace: Annotated[
        timedelta | None,
        typer.Option(
            "--grace",
            parser=duration_parser("--grace", allow_zero=True),
            metavar="DURATION",
            show_default="1h",
            help="Never delete what was created or used this recently.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; delete nothing.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete artifacts by policy (the policies combine). Pinned artifacts, artifacts under an
    active lease and those created or used within the grace period are always kept."""
    from featurecache.cli.context import cache_session, echo_header, load, location_of, with_cache
    from featurecache.ops.gc_plan import DEFAULT_GRACE, GcPolicy
    from featurecache.ops.gc_run import collect_garbage, require_policy

    policy = GcPolicy(
        older_than=older_than,
        unused_for=unused_for,
        keep_last=keep_last,
        max_size=max_size,
        grace=DEFAULT_GRACE if grace is None else grace,
        keep_used_by_runs=keep_used_by_runs,
    )
    require_policy(policy)  # before opening anything
    settings = load()
    with cache_session(settings) as (catalog, store), progress_bar(as_json) as progress:
        result = collect_garbage(catalog, store, policy, dry_run=dry_run, progress=progress)
    location = location_of(settings)
    if as_json:
        print_json(with_cache(result.to_json(), location))
    else:
        echo_header(location)
        render(result)
    if result.failures:
        raise typer.Exit(1)


def render(result: GcResult) -> None:
    """The deleted table, then notes, then the summary: always the last line."""
    from featurecache.ops.inventory import short_id

    plan = result.plan
    verb = "would delete" if result.dry_run else "deleted"
    if result.deleted:
        _deleted_table(result, verb)
    if result.kept_on_recheck:
        typer.echo(
            f"kept {plural(len(result.kept_on_recheck), 'more artifact')} that changed since "
            "the scan (used, pinned or leased meanwhile)"
        )
    if result.swept:
        verb_swept = "would sweep" if result.dry_run else "swept"
        typer.echo(f"{verb_swept} {plural(len(result.swept), 'leftover tombstoned artifact')}")
    if not plan.max_size_met:
        typer.echo(
            f"--max-size not reached: protected artifacts alone hold "
            f"{human_bytes(plan.bytes_remaining)}"
        )
    for artifact_id, error in sorted(result.failures.items()):
        typer.echo(f"featurecache: could not delete {short_id(artifact_id)}: {error}", err=True)
    for artifact_id in result.invalid_ids:
        typer.echo(
            f"skipped the catalog row of malformed artifact id {artifact_id!r} "
            "(remove it with: featurecache verify --repair)"
        )
    if hint := grace_hint(result):
        typer.echo(hint)
    typer.echo(summary_line(result))


def grace_hint(result: GcResult) -> str | None:
    """When nothing goes and the grace period is what kept artifacts: say so, and how to
    collect them anyway (right after a run, everything is within the grace period)."""
    from featurecache.ops.gc_plan import WITHIN_GRACE

    graced = result.plan.kept_by.get(WITHIN_GRACE, 0)
    if result.deleted or not graced:
        return None
    grace = format_duration(result.plan.policy.grace)
    return f"the grace period ({grace}) kept {plural(graced, 'artifact')}; add --grace 0 to collect them now"


def summary_line(result: GcResult) -> str:
    """``deleted 3 artifacts (1.2 MB); kept 5 (2 pinned, 3 within grace period)``, after
    ``dry run: `` when nothing was deleted on purpose."""
    plan = result.plan
    verb = "would delete" if result.dry_run else "deleted"
    gone = (
        f"{verb} {plural(len(result.deleted), 'artifact')} ({human_bytes(result.bytes_freed)})"
        if result.deleted
        else f"{verb} nothing"
    )
    reasons = ", ".join(f"{count} {label}" for label, count in plan.kept_by.items())
    kept = f"kept {len(plan.keep):,}" + (f" ({reasons})" if reasons else "")
    return f"{'dry run: ' if result.dry_run else ''}{gone}; {kept}"


def _deleted_table(result: GcResult, verb: str) -> None:
    from featurecache.ops.inventory import short_id

    print_table(
        f"{verb} {plural(len(result.deleted), 'artifact')} ({human_bytes(result.bytes_freed)})",
        ["feature", "artifact", "size", "created", "used", "reason"],
        [
            [
                _owner(c),
                short_id(c.artifact_id),
                # A composite has no file: its bytes are its parts' (their own rows).
                plural(len(c.parts), "part") if c.parts else human_bytes(c.size_bytes),
                human_age(c.created_at),
                human_age(c.last_used_at),
                result.plan.delete_reasons[c.artifact_id],
            ]
            for c in result.deleted
        ],
        shrink=("feature", "reason"),
    )


def _owner(candidate: GcCandidate) -> str:
    """The features of an artifact, or for a part of a composite, which composite."""
    from featurecache.ops.inventory import short_id

    if candidate.features:
        return ", ".join(candidate.features)
    if candidate.composites:
        return "part of " + ", ".join(short_id(c) for c in candidate.composites)
    return "-"


def register(app: typer.Typer) -> None:
    app.command("gc")(gc)
