"""The multi-hop lineage graph of an artifact, built from the catalog's one-hop edges, and its
renderings: a rich tree for the terminal, JSON (nodes + edges), Graphviz dot and mermaid.

Pure: ``build`` reads through a ``LineageSource`` (the ``Catalog`` is one) and does no other
I/O; renderers only format. Nodes are artifacts (by id) and sources (files, S3 objects, DVC
paths: by fingerprint, so every artifact computed from the same file shares one node). The
walk is breadth-first with a depth limit and a visited set: an artifact can be its own input
(a feature returning its argument unchanged has the same content id), so the graph may hold
cycles, and a node reached twice is expanded once.

A composite result (a tuple, dict, Series... stored as parts) is one node, its parts listed
under it (``Node.parts``). Given ``composites`` (the catalog), an edge whose recorded upstream
is a part of a live composite (a feature that received ``X_train`` of a train/test split)
goes to the composite, naming the part (``Edge.via_part``), and the composite's downstream
walk follows the edges out of each of its parts. Without it, parts are plain artifacts.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from rich.tree import Tree

    from featurecache.catalog.composites import PartRef
    from featurecache.catalog.records import ArtifactRecord, EntryRecord, LineageEdge

Direction = Literal["upstream", "downstream", "both"]
FORMATS = ("tree", "dot", "mermaid", "json")


class LineageSource(Protocol):
    """The catalog queries lineage needs (``featurecache.catalog.facade.Catalog``)."""

    def lineage_of(self, artifact_id: str) -> list[LineageEdge]: ...

    def downstream_of(self, artifact_id: str) -> list[str]: ...

    def entries_for_artifact(self, artifact_id: str) -> list[EntryRecord]: ...

    def get_artifact(self, artifact_id: str) -> ArtifactRecord | None: ...


class CompositeSource(Protocol):
    """The catalog's composite queries (``featurecache.catalog.facade.Catalog``)."""

    def composites_of(self, part_ids: Sequence[str] | None = None) -> dict[str, list[str]]: ...

    def parts_listing(self, composite_id: str) -> list[PartRef]: ...


@dataclass(frozen=True)
class PartNode:
    """One part of a composite node: its position, id and shape (None: its row is gone)."""

    position: int
    part_id: str
    rows: int | None
    columns: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "id": self.part_id,
            "rows": self.rows,
            "columns": self.columns,
        }


@dataclass(frozen=True)
class Node:
    node_id: str  # an artifact id, or a source's fingerprint
    kind: Literal["artifact", "source"]
    features: tuple[str, ...] = ()  # artifacts: the features whose entries point at it
    uri: str | None = None  # where the artifact or source lives
    rows: int | None = None
    columns: int | None = None
    live: bool = True  # False: the catalog no longer holds the artifact (collected)
    summary: str | None = None  # a composite's structure in one line
    parts: tuple[PartNode, ...] = ()  # a composite's parts, in order

    @property
    def composite(self) -> bool:
        return self.summary is not None

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
            **(
                {"summary": self.summary, "parts": [part.to_json() for part in self.parts]}
                if self.composite
                else {}
            ),
        }


@dataclass(frozen=True)
class Edge:
    """``upstream`` was passed as ``argument`` when ``downstream`` was computed; when
    ``upstream`` is a composite, what was passed is its part ``via_part``."""

    upstream: str
    downstream: str
    argument: str
    via_part: str | None = None

    def to_json(self) -> dict[str, str]:
        out = {"from": self.upstream, "to": self.downstream, "argument": self.argument}
        if self.via_part is not None:
            out["via_part"] = self.via_part
        return out


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
    source: LineageSource,
    root: str,
    direction: Direction = "both",
    depth: int | None = None,
    composites: CompositeSource | None = None,
) -> LineageGraph:
    """The lineage of artifact ``root`` up to ``depth`` hops (None: all) in ``direction``;
    with ``composites``, a part only a composite holds is drawn as that composite."""
    if depth is not None and depth < 0:
        raise ValueError("depth must be at least 0")
    walker = _Walker(source, composites)
    root = walker.owner(root)[0]
    graph = LineageGraph(root=root, direction=direction, depth=depth)
    graph.nodes[root] = walker.node(root)
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
                walker.upstream(node_id) if walk == "upstream" else walker.downstream(node_id)
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


class _Walker:
    """One-hop neighbours of artifact nodes, parts resolved to their composites."""

    def __init__(self, source: LineageSource, composites: CompositeSource | None) -> None:
        self.source = source
        self.composites = composites
        self._nodes: dict[str, Node] = {}

    def owner(self, artifact_id: str) -> tuple[str, str | None]:
        """The node an artifact is drawn as: itself, or for a part no feature returned on
        its own, the first live composite listing it (with the part's id)."""
        if self.composites is None or self.source.entries_for_artifact(artifact_id):
            return artifact_id, None
        holders = self.composites.composites_of([artifact_id]).get(artifact_id, [])
        return (holders[0], artifact_id) if holders else (artifact_id, None)

    def upstream(self, artifact_id: str) -> list[tuple[Node, Edge]]:
        out = []
        for edge in self.source.lineage_of(artifact_id):
            if edge.upstream_artifact_id:
                upstream, part = self.owner(edge.upstream_artifact_id)
                node = self.node(upstream)
                out.append((node, Edge(upstream, artifact_id, edge.argument, part)))
            else:
                node = Node(node_id=edge.fingerprint, kind="source", uri=edge.source_uri)
                out.append((node, Edge(node.node_id, artifact_id, edge.argument)))
        return out

    def downstream(self, artifact_id: str) -> list[tuple[Node, Edge]]:
        # A composite's own id is never an input: what was passed on is one of its parts.
        via: list[tuple[str, str | None]] = [(artifact_id, None)]
        via += [(p.part_id, p.part_id) for p in self.node(artifact_id).parts]
        out = []
        for upstream, part in via:
            for child in self.source.downstream_of(upstream):
                node = self.node(child)
                for edge in self.source.lineage_of(child):
                    if edge.upstream_artifact_id == upstream:
                        out.append((node, Edge(artifact_id, child, edge.argument, part)))
        return out

    def node(self, artifact_id: str) -> Node:
        if artifact_id not in self._nodes:
            self._nodes[artifact_id] = self._read_node(artifact_id)
        return self._nodes[artifact_id]

    def _read_node(self, artifact_id: str) -> Node:
        record = self.source.get_artifact(artifact_id)
        entries = self.source.entries_for_artifact(artifact_id)
        features = tuple(sorted({e.feature for e in entries}))
        if record is None:
            return Node(artifact_id, "artifact", features, live=False)
        if record.is_composite and self.composites is not None:
            from featurecache.ops.inventory import composite_summary

            parts = tuple(
                PartNode(
                    ref.position,
                    ref.part_id,
                    None if ref.record is None else ref.record.rows,
                    None if ref.record is None else ref.record.columns,
                )
                for ref in self.composites.parts_listing(artifact_id)
            )
            summary = composite_summary(record.structure, record.columns) or ""
            return Node(artifact_id, "artifact", features, record.uri, summary=summary, parts=parts)
        return Node(artifact_id, "artifact", features, record.uri, record.rows, record.columns)


# -- renderers ----------------------------------------------------------------------------------


def _short_uri(uri: str) -> str:
    return uri[len("file://") :] if uri.startswith("file://") else uri


def _describe(node: Node) -> str:
    if node.kind == "source":
        return f"[cyan]{_escape(node.label)}[/] [dim]{_escape(node.node_id[:21])}…[/]"
    text = f"[bold]{_escape(', '.join(node.features) or '(no feature)')}[/] {node.node_id[:12]}"
    if node.composite:
        text += f" [dim](composite: {_escape(node.summary or '')})[/]"
    elif node.rows is not None:
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
    _list_parts(graph.nodes[graph.root], tree)
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
        if edge.via_part is not None:
            label += f" [dim]via part {_part_position(graph, edge)}[/]"
        if other in shown:
            branch.add(f"{label} [dim](shown above)[/]")
            continue
        shown.add(other)
        child = branch.add(label)
        _list_parts(graph.nodes[other], child)
        _grow(graph, other, walk, child, shown)
        if other in graph.truncated[walk]:
            child.add(_DEEPER)


def _list_parts(node: Node, branch: Tree) -> None:
    for part in node.parts:
        shape = "" if part.rows is None else f" ({part.rows:,} rows × {part.columns})"
        branch.add(f"[dim]part {part.position}: {part.part_id[:12]}{shape}[/]")


def _part_position(graph: LineageGraph, edge: Edge) -> str:
    node = graph.nodes[edge.upstream]
    positions = [str(p.position) for p in node.parts if p.part_id == edge.via_part]
    return ", ".join(positions) or (edge.via_part or "")[:12]


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
            text += f"\ncomposite of {len(node.parts)} parts" if node.composite else ""
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
            rows += f"<br/>composite of {len(node.parts)} parts" if node.composite else ""
            lines.append(f'  {ids[key]}["{text}{rows}"]')
    for edge in graph.edges:
        argument = _mermaid_text(edge.argument).replace("|", "#124;")
        lines.append(f"  {ids[edge.upstream]} -->|{argument}| {ids[edge.downstream]}")
    lines.append(f"  style {ids[graph.root]} stroke-width:3px")
    return "\n".join(lines) + "\n"
