"""``featurecache show REF``: everything the catalog knows about one artifact."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from featurecache.cli.output import (
    JsonFlag,
    human_bytes,
    human_seconds,
    human_time,
    plural,
    print_json,
    print_table,
)

if TYPE_CHECKING:
    from featurecache.ops.inventory import ArtifactDetail

# A wide artifact (hundreds of columns) would print a screenful of schema: the first ones
# tell what it is, --full or --json the rest.
SCHEMA_LIMIT = 40


def show(
    ref: Annotated[
        str,
        typer.Argument(
            metavar="REF", help="An artifact id or a unique prefix of one (see featurecache ls)."
        ),
    ],
    full: Annotated[
        bool,
        typer.Option(
            "--full", help=f"Every column of the schema (default: the first {SCHEMA_LIMIT})."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show one artifact: schema, size, the keys that point at it with their components,
    code version, inputs, downstream artifacts and the training runs that used it. For a
    composite result, its structure and each part; for a part, the composites it belongs to."""
    from featurecache.cli.context import catalog_session, echo_header, load, location_of, with_cache
    from featurecache.ops.inventory import show_artifact

    settings = load()
    with catalog_session(settings) as catalog:
        detail = show_artifact(catalog, ref)
    location = location_of(settings)
    if as_json:
        print_json(with_cache(detail.to_json(), location))
        return
    echo_header(location)
    render(detail, full=full)


def render(detail: ArtifactDetail, *, full: bool = False) -> None:
    from featurecache.ops.inventory import short_id

    artifact = detail.artifact
    typer.echo(f"artifact  {artifact.artifact_id}")
    typer.echo(f"feature   {', '.join(detail.features) or '-'}")
    if artifact.is_composite:
        _composite_content(detail)
    else:
        typer.echo(
            f"content   {artifact.rows:,} rows x {artifact.columns} columns, "
            f"{human_bytes(artifact.size_bytes)}, "
            f"computed in {human_seconds(artifact.compute_seconds)}"
        )
    if detail.part_of:
        typer.echo(f"part of   {', '.join(short_id(c) for c in detail.part_of)} (composite)")
    typer.echo(
        f"history   created {human_time(artifact.created_at)}, last used "
        f"{human_time(artifact.last_used_at)}, {artifact.hits} hits"
        + (", pinned" if artifact.pinned else "")
    )
    typer.echo(f"uri       {artifact.uri}")
    if not artifact.is_composite:  # a composite's schemas are its parts'
        _schema(artifact.schema, full)
    for key in detail.keys:
        entry = key.entry
        print_table(
            f"key {short_id(entry.key_id)} ({entry.feature}, returns {entry.return_kind}, "
            f"created {human_time(entry.created_at)})",
            ["kind", "name", "value", "detail"],
            [[row.kind, row.name, row.value, row.detail] for row in key.components],
            shrink=("name", "value", "detail"),
        )
    for code in detail.code_versions:
        lines = [line.strip() for line in code.source.splitlines() if line.strip()]
        signature = next((line for line in lines if line.startswith(("def ", "async def "))), "")
        typer.echo(f"code      {code.code_digest} ({code.feature}) {signature}".rstrip())
    print_table(
        "inputs",
        ["argument", "fingerprint", "from"],
        [
            [
                edge.argument,
                edge.fingerprint,
                f"artifact {short_id(edge.upstream_artifact_id)}"
                if edge.upstream_artifact_id
                else edge.source_uri,
            ]
            for edge in detail.inputs
        ],
        shrink=("argument", "fingerprint", "from"),
    )
    downstream = ", ".join(short_id(a) for a in detail.downstream) or "-"
    typer.echo(f"downstream artifacts: {downstream}")
    if detail.runs:
        print_table(
            "runs that used it",
            ["run", "context", "tracking uri", "at"],
            [[r.run_id, r.context, r.tracking_uri, human_time(r.at)] for r in detail.runs],
            shrink=("run", "tracking uri"),
        )
    else:
        typer.echo("runs that used it: -")


def _schema(schema: list[dict[str, object]], full: bool) -> None:
    shown = schema if full else schema[:SCHEMA_LIMIT]
    hidden = len(schema) - len(shown)
    print_table(
        f"schema ({plural(len(schema), 'column')})",
        ["column", "type", "nullable"],
        [[c.get("name"), c.get("type"), c.get("nullable")] for c in shown],
        caption=f"{hidden:,} more columns with --full (or --json)" if hidden else None,
        shrink=("column", "type"),
    )


def _composite_content(detail: ArtifactDetail) -> None:
    from featurecache.ops.inventory import composite_summary, short_id

    artifact = detail.artifact
    typer.echo(f"composite {composite_summary(artifact.structure, artifact.columns)}")
    typer.echo(
        f"content   {plural(artifact.columns, 'part')}, {human_bytes(artifact.size_bytes)}, "
        f"computed in {human_seconds(artifact.compute_seconds)}"
    )
    print_table(
        "parts",
        ["#", "artifact", "rows x columns", "size", "state"],
        [
            [
                ref.position,
                short_id(ref.part_id),
                "-" if ref.record is None else f"{ref.record.rows:,} x {ref.record.columns}",
                "-" if ref.record is None else human_bytes(ref.record.size_bytes),
                "ok" if ref.live else ("tombstoned" if ref.tombstoned else "missing row"),
            ]
            for ref in detail.parts
        ],
    )


def register(app: typer.Typer) -> None:
    app.command("show")(show)
