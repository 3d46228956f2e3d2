"""``featurecache lineage REF``: the multi-hop lineage of an artifact, as a tree, JSON, Graphviz
dot or mermaid (rendering lives in ``featurecache.ops.lineage``)."""

from __future__ import annotations

from typing import Annotated

import typer

from featurecache.cli.output import JsonFlag, print_json


def lineage(
    ref: Annotated[
        str,
        typer.Argument(
            metavar="REF",
            help="An artifact id, a unique prefix of one, or a feature name (its latest artifact).",
        ),
    ],
    upstream: Annotated[
        bool, typer.Option("--upstream", help="Only what REF was computed from.")
    ] = False,
    downstream: Annotated[
        bool, typer.Option("--downstream", help="Only what was computed from REF.")
    ] = False,
    depth: Annotated[
        int | None,
        typer.Option("--depth", min=0, help="Follow at most N hops (default: all)."),
    ] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="tree (the terminal), dot (Graphviz: pipe to `dot -Tsvg`), mermaid or json.",
        ),
    ] = "tree",
    as_json: JsonFlag = False,
) -> None:
    """Show where an artifact came from and what was computed from it: every hop the catalog
    recorded, with the argument each input was passed as. A composite result is one node
    with its parts under it; a part given as REF shows its composite."""
    from featurecache.cli.context import catalog_session, echo_header, load, location_of, with_cache
    from featurecache.ops import lineage as lineage_graph
    from featurecache.ops.artifact_refs import resolve_artifact_ref

    if upstream and downstream:
        raise typer.BadParameter("give --upstream or --downstream, not both (default: both)")
    if output_format not in lineage_graph.FORMATS:
        raise typer.BadParameter(
            f"{output_format!r} is not one of {', '.join(lineage_graph.FORMATS)}",
            param_hint="--format",
        )
    direction: lineage_graph.Direction = (
        "upstream" if upstream else "downstream" if downstream else "both"
    )
    settings = load()
    with catalog_session(settings) as catalog:
        root = resolve_artifact_ref(catalog, ref)
        graph = lineage_graph.build(catalog, root, direction, depth, composites=catalog)
    location = location_of(settings)
    if as_json or output_format == "json":
        print_json(with_cache(graph.to_json(), location))
    elif output_format in ("dot", "mermaid"):
        # Piped into `dot -Tsvg` or pasted into markdown: the header goes to stderr.
        typer.echo(location.header, err=True)
        render = lineage_graph.to_dot if output_format == "dot" else lineage_graph.to_mermaid
        typer.echo(render(graph), nl=False)
    else:
        from rich.console import Console

        echo_header(location)
        Console().print(lineage_graph.to_tree(graph))


def register(app: typer.Typer) -> None:
    app.command("lineage")(lineage)
