"""``featurecache why FEATURE [--args JSON]``: why a call of a feature hit or missed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from featurecache.cli.output import JsonFlag, print_json, print_table

if TYPE_CHECKING:
    from featurecache.ops.why import WhyReport

ARGS_EXAMPLE = "--args '{\"depth\": 2}'"


def parse_args_option(text: str) -> dict[str, Any]:
    """``--args``: a JSON object of argument name -> value; ``typer.BadParameter`` otherwise
    (click prints it as ``Invalid value for '--args': …``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise typer.BadParameter(
            f"{text!r} is not JSON ({error.msg} at character {error.pos}). "
            f"Write a JSON object of argument name -> value, e.g. {ARGS_EXAMPLE}"
        ) from None
    if not isinstance(value, dict):
        raise typer.BadParameter(
            f"{text!r} is a JSON {type(value).__name__}, not an object. "
            f"Write a JSON object of argument name -> value, e.g. {ARGS_EXAMPLE}"
        )
    return value


def why(
    feature: str = typer.Argument(..., help="The feature's name (see featurecache ls)."),
    call_args: Annotated[
        dict[str, Any] | None,
        typer.Option(
            "--args",
            parser=parse_args_option,
            metavar="JSON",
            help=(
                "Explain the latest call with these plain argument values, a JSON object "
                "(e.g. '{\"depth\": 2}'); default: the latest call."
            ),
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List every component of FEATURE's latest key (or of the call given by --args) and say
    what changed since the nearest earlier key: the one sharing the most inputs."""
    from featurecache.cli.context import catalog_session, echo_header, load, location_of, with_cache
    from featurecache.ops.why import why_in_catalog

    settings = load()
    with catalog_session(settings) as catalog:
        report = why_in_catalog(catalog, feature, call_args)
    location = location_of(settings)
    if as_json:
        print_json(with_cache(report.to_json(), location))
        return
    echo_header(location)
    _print_report(report)


def _print_report(report: WhyReport) -> None:
    latest = report.latest
    target = f"{report.feature}: key {latest.key_id[:12]} → artifact {latest.artifact_id[:12]}"
    if report.args is not None:
        target += f" (latest call with {_format_args(report.args)})"
    typer.echo(target)
    if report.compared is not None:
        total = len((latest.components or {}).get("inputs") or {})
        typer.echo(
            f"compared with key {report.compared.key_id[:12]}, the nearest earlier key "
            f"({report.shared_inputs} of {total} inputs the same)"
        )
    typer.echo(report.explanation.summary)
    if report.explanation.changes:
        for message in report.explanation.messages():
            typer.echo(f"  - {message}")
    if report.scan_truncated:
        typer.echo(f"(searched the feature's latest {report.scanned} keys only)")
    print_table(
        "key components",
        ["kind", "name", "value", "detail"],
        [[row.kind, row.name, row.value, row.detail] for row in report.components],
        shrink=("name", "value", "detail"),
    )


def _format_args(args: Any) -> str:
    return ", ".join(f"{name}={json.dumps(value)}" for name, value in args.items())


def register(app: typer.Typer) -> None:
    app.command("why")(why)
