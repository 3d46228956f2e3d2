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


def show(
    ref: Annotated[
        str,
        typer.Argument(
            metavar="REF", help="An artifact id or a unique prefix of one (see featurecache ls)."
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Show one artifact: schema, size, the keys that point at it with their components,
    code version, inputs, downstream artifacts and the training runs that used it. For a
    composite result, its structure and each part; for a part, the composites it belongs to."""
    from featurecache.cli.context import catalog_session
    from featurecache.ops.inventory import show_artifact

    with catalog_session() as catalog:
        detail = show_artifact(catalog, ref)
    if as_json:
        print_json(detail.to_json())
        return
    render(detail)


def render(detail: ArtifactDetail) -> None:
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
        print_table(
            "schema",
            ["column", "type", "nullable"],
            [[c.get("name"), c.get("type"), c.get("nullable")] for c in artifact.schema],
        )
    for key in detail.keys:
        entry = key.entry
        print_table(
            f"key {short_id(entry.key_id)} ({entry.feature}, returns {entry.return_kind}, "
            f"created {human_time(entry.created_at)})",
            ["kind", "name", "value", "detail"],
            [[row.kind, row.name, row.value, row.detail] for row in key.components],
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
    )
    downstream = ", ".join(short_id(a) for a in detail.downstream) or "-"
    typer.echo(f"downstream artifacts: {downstream}")
    if detail.runs:
        print_table(
            "runs that used it",
            ["run", "context", "tracking uri", "at"],
            [[r.run_id, r.context, r.tracking_uri, human_time(r.at)] for r in detail.runs],
        )
    else:
        typer.echo("runs that used it: -")


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
