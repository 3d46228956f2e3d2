"""The multi-hop lineage graph of an artifact, built from the catalog's one-hop edges, and its
renderings: a rich tree for the terminal, JSON (nodes + edges), Graphviz dot and mermaid.

Pure: ``build`` reads through a ``LineageSource`` (the ``Catalog`` is one) and does no other
I/O; renderers only format. Nodes are artifacts (by id) and sources (files, S3 objects, DVC
paths: by fingerprint, so every artifact computed from the same file shares one node). The
walk is breadth-first with a depth limit and a visited set: an artifact can be its own input
(a feature returning its argument unchanged has the same content id), so the graph may hold
cycles, and a node reached twice is expanded once.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from rich.tree import Tree

    from featurecache.catalog.records import ArtifactRecord, EntryRecord, LineageEdge

Direction = Literal["upstream", "downstream", "both"]
FORMATS = ("tree", "dot", "mermaid", "json")


class LineageSource(Protocol):
    """The catalog queries lineage needs (``featurecache.catalog.facade.Catalog``)."""

    def lineage_of(self, artifact_id: str) -> list[LineageEdge]: ...

    def downstream_of(self, artifact_id: str) -> list[str]: ...

    def entries_for_artifact(self, artifact_id: str) -> list[EntryRecord]: ...

    def get_artifact(self, artifact_id: str) -> ArtifactRecord | None: ...


@dataclass(frozen=True)
class Node:
    node_id: str  # an artifact id, or a source's fingerprint
    kind: Literal["artifact", "source"]
    features: tuple[str, ...] = ()  # artifacts: the features whose entries point at it
    uri: str | None = None  # where the artifact or source lives
    rows: int | None = None
    columns: int | None = None
    live: bool = True  # False: the catalog no longer holds the artifact (collected)

    @property
    def label(self) -> str:
        if self.kind == "source":
            return _short_uri(self.uri or self.node_id)
        name = ", ".join(self.features) or "(no feature)"
        return f"{name} {self.node_id[:12]}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.node_id,
            "kind": self.kind,
            "features": list(self.features),
            "uri": self.uri,
            "rows": self.rows,
            "columns": self.columns,
            "live": self.live,
        }


@dataclass(frozen=True)
class Edge:
    """``upstream`` was passed as ``argument`` when ``downstream`` was computed."""

    upstream: str
    downstream: str
    argument: str

    def to_json(self) -> dict[str, str]:
        return {"from": self.upstream, "to": self.downstream, "argument": self.argument}


@dataclass
class LineageGraph:
    root: str
    direction: Direction
    depth: int | None
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    # Per walk, the nodes whose neighbours in that direction lie beyond ``depth``.
    truncated: dict[str, set[str]] = field(
        default_factory=lambda: {"upstream": set(), "downstream": set()}
    )

    def parents(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.downstream == node_id]

    def children(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.upstream == node_id]

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "direction": self.direction,
            "depth": self.depth,
            "nodes": [self.nodes[key].to_json() for key in sorted(self.nodes)],
            "edges": [e.to_json() for e in self.edges],
            "truncated": {walk: sorted(ids) for walk, ids in self.truncated.items()},
        }


def build(
    source: LineageSource, root: str, direction: Direction = "both", depth: int | None = None
) -> LineageGraph:
    """The lineage of artifact ``root`` up to ``depth`` hops (None: all) in ``direction``."""
    if depth is not None and depth < 0:
        raise ValueError("depth must be at least 0")
    graph = LineageGraph(root=root, direction=direction, depth=depth)
    graph.nodes[root] = _artifact_node(source, root)
    seen_edges: set[Edge] = set()

    def add(edge: Edge) -> None:
        if edge not in seen_edges:
            seen_edges.add(edge)
            graph.edges.append(edge)

    walks: list[Literal["upstream", "downstream"]] = (
        ["upstream", "downstream"] if direction == "both" else [direction]
    )
    for walk in walks:
        expanded: set[str] = set()
        queue: deque[tuple[str, int]] = deque([(root, 0)])
        while queue:
            node_id, hops = queue.popleft()
            if node_id in expanded or graph.nodes[node_id].kind == "source":
                continue
            expanded.add(node_id)
            neighbours = (
                _upstream(source, node_id) if walk == "upstream" else _downstream(source, node_id)
            )
            if depth is not None and hops >= depth:
                if neighbours:
                    graph.truncated[walk].add(node_id)
                continue
            for neighbour, edge in neighbours:
                if neighbour.node_id not in graph.nodes:
                    graph.nodes[neighbour.node_id] = neighbour
                add(edge)
                queue.append((neighbour.node_id, hops + 1))
    return graph


def _upstream(source: LineageSource, artifact_id: str) -> list[tuple[Node, Edge]]:
    out = []
    for edge in source.lineage_of(artifact_id):
        if edge.upstream_artifact_id:
            node = _artifact_node(source, edge.upstream_artifact_id)
        else:
            node = Node(node_id=edge.fingerprint, kind="source", uri=edge.source_uri)
        out.append((node, Edge(node.node_id, artifact_id, edge.argument)))
    return out


def _downstream(source: LineageSource, artifact_id: str) -> list[tuple[Node, Edge]]:
    out = []
    for child in source.downstream_of(artifact_id):
        node = _artifact_node(source, child)
        for edge in source.lineage_of(child):
            if edge.upstream_artifact_id == artifact_id:
                out.append((node, Edge(artifact_id, child, edge.argument)))
    return out


def _artifact_node(source: LineageSource, artifact_id: str) -> Node:
    record = source.get_artifact(artifact_id)
    features = tuple(sorted({e.feature for e in source.entries_for_artifact(artifact_id)}))
    if record is None:
        return Node(artifact_id, "artifact", features, live=False)
    return Node(artifact_id, "artifact", features, record.uri, record.rows, record.columns)


# -- renderers ----------------------------------------------------------------------------------


def _short_uri(uri: str) -> str:
    return uri[len("file://") :] if uri.startswith("file://") else uri


def _describe(node: Node) -> str:
    if node.kind == "source":
        return f"[cyan]{_escape(node.label)}[/] [dim]{_escape(node.node_id[:21])}…[/]"
    text = f"[bold]{_escape(', '.join(node.features) or '(no feature)')}[/] {node.node_id[:12]}"
    if node.rows is not None:
        text += f" [dim]({node.rows:,} rows × {node.columns})[/]"
    if not node.live:
        text += " [red](collected)[/]"
    return text


_DEEPER = "[dim]… (deeper than --depth)[/]"


def _escape(text: str) -> str:
    return text.replace("[", "\\[")


def to_tree(graph: LineageGraph) -> Tree:
    """A rich Tree: the root, then an ``upstream`` branch (what it was computed from) and/or a
    ``downstream`` branch (what was computed from it). Shared nodes are expanded once."""
    from rich.tree import Tree

    tree = Tree(_describe(graph.nodes[graph.root]))
    walks: Sequence[Literal["upstream", "downstream"]] = (
        ("upstream", "downstream") if graph.direction == "both" else (graph.direction,)
    )
    for walk in walks:
        branch = tree.add(f"[dim]{walk}[/]") if graph.direction == "both" else tree
        _grow(graph, graph.root, walk, branch, {graph.root})
        if graph.root in graph.truncated[walk]:
            branch.add(_DEEPER)
        elif not branch.children:
            branch.add("[dim](none recorded)[/]")
    return tree


def _grow(
    graph: LineageGraph,
    node_id: str,
    walk: Literal["upstream", "downstream"],
    branch: Tree,
    shown: set[str],
) -> None:
    edges = graph.parents(node_id) if walk == "upstream" else graph.children(node_id)
    for edge in sorted(edges, key=lambda e: (e.argument, e.upstream, e.downstream)):
        other = edge.upstream if walk == "upstream" else edge.downstream
        arrow = "←" if walk == "upstream" else "→"
        label = f"{_escape(edge.argument)} {arrow} {_describe(graph.nodes[other])}"
        if other in shown:
            branch.add(f"{label} [dim](shown above)[/]")
            continue
        shown.add(other)
        child = branch.add(label)
        _grow(graph, other, walk, child, shown)
        if other in graph.truncated[walk]:
            child.add(_DEEPER)


def _quote(text: str) -> str:
    return json.dumps(text)  # a valid dot string: double quotes, backslash escapes


def to_dot(graph: LineageGraph) -> str:
    """Graphviz source; render with ``dot -Tsvg``. Edges point from input to output."""
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for key in sorted(graph.nodes):
        node = graph.nodes[key]
        if node.kind == "source":
            attrs = f"label={_quote(node.label)}, shape=note"
        else:
            text = node.label + (f"\n{node.rows:,} rows" if node.rows is not None else "")
            style = ', style="bold"' if key == graph.root else ""
            style += ', color="red"' if not node.live else ""
            attrs = f"label={_quote(text)}, shape=box{style}"
        lines.append(f"  {_quote(key)} [{attrs}];")
    for edge in graph.edges:
        lines.append(
            f"  {_quote(edge.upstream)} -> {_quote(edge.downstream)} "
            f"[label={_quote(edge.argument)}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(graph: LineageGraph) -> str:
    """A mermaid ``flowchart`` (GitHub renders it in Markdown)."""
    ids = {key: f"n{index}" for index, key in enumerate(sorted(graph.nodes))}
    lines = ["flowchart LR"]
    for key in sorted(graph.nodes):
        node = graph.nodes[key]
        text = _mermaid_text(node.label)
        if node.kind == "source":
            lines.append(f'  {ids[key]}[/"{text}"/]')
        else:
            rows = f"<br/>{node.rows:,} rows" if node.rows is not None else ""
            lines.append(f'  {ids[key]}["{text}{rows}"]')
    for edge in graph.edges:
        argument = _mermaid_text(edge.argument).replace("|", "#124;")
        lines.append(f"  {ids[edge.upstream]} -->|{argument}| {ids[edge.downstream]}")
    lines.append(f"  style {ids[graph.root]} stroke-width:3px")
    return "\n".join(lines) + "\n"
