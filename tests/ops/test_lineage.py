"""The lineage graph builder and its renderers, over an in-memory edge table (pure: the catalog
answers the same four questions; the CLI test runs them against a real one)."""

from __future__ import annotations

import io
import json
from collections import deque
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from featurecache.catalog.records import ArtifactRecord, EntryRecord, LineageEdge
from featurecache.ops import lineage as lineage_graph


def aid(name: str) -> str:
    """A 32-hex artifact id that starts with ``name``'s hex spelling (readable in failures)."""
    return (name.encode().hex() + "0" * 32)[:32]


@dataclass
class Edges:
    """An in-memory catalog: inputs[artifact] = [(argument, upstream id | None, source uri)]."""

    inputs: dict[str, list[tuple[str, str | None, str | None]]] = field(default_factory=dict)
    features: dict[str, str] = field(default_factory=dict)
    collected: set[str] = field(default_factory=set)

    def add(self, artifact: str, feature: str, *inputs: tuple[str, str | None, str | None]) -> str:
        self.features[artifact] = feature
        self.inputs.setdefault(artifact, []).extend(inputs)
        return artifact

    def lineage_of(self, artifact_id: str) -> list[LineageEdge]:
        return [
            LineageEdge(arg, f"xxh3_128:{up or uri}", up, uri)
            for arg, up, uri in sorted(self.inputs.get(artifact_id, []), key=str)
        ]

    def downstream_of(self, artifact_id: str) -> list[str]:
        return sorted(
            a for a, ins in self.inputs.items() if any(u == artifact_id for _, u, _ in ins)
        )

    def entries_for_artifact(self, artifact_id: str) -> list[EntryRecord]:
        feature = self.features.get(artifact_id)
        if feature is None:
            return []
        return [EntryRecord("k" * 32, feature, "c" * 32, artifact_id, "polars", {})]

    def get_artifact(self, artifact_id: str) -> ArtifactRecord | None:
        if artifact_id in self.collected or artifact_id not in self.features:
            return None
        return ArtifactRecord(
            artifact_id, f"file:///store/{artifact_id}.parquet", 10, 3, [], 100, "h" * 32, 1.0
        )


def churn() -> tuple[Edges, dict[str, str]]:
    """clicks.parquet -> clean -> sessions -> users <- demographics.parquet; clean -> labels."""
    e = Edges()
    ids = {name: aid(name) for name in ("clean", "sessions", "users", "labels")}
    e.add(ids["clean"], "clean_clicks", ("clicks_path", None, "file:///data/clicks.parquet"))
    e.add(ids["sessions"], "sessionize", ("clicks", ids["clean"], None))
    e.add(
        ids["users"],
        "user_features",
        ("sessions", ids["sessions"], None),
        ("demographics_path", None, "file:///data/demographics.parquet"),
    )
    e.add(ids["labels"], "churn_labels", ("clicks", ids["clean"], None))
    return e, ids


def render(tree: object) -> str:
    console = Console(width=200, file=io.StringIO(), color_system=None)
    console.print(tree)
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


def test_upstream_is_the_whole_chain_down_to_the_source_files() -> None:
    e, ids = churn()
    graph = lineage_graph.build(e, ids["users"], "upstream")
    artifacts = {n.node_id for n in graph.nodes.values() if n.kind == "artifact"}
    assert artifacts == {ids["users"], ids["sessions"], ids["clean"]}
    sources = sorted(n.uri or "" for n in graph.nodes.values() if n.kind == "source")
    assert sources == ["file:///data/clicks.parquet", "file:///data/demographics.parquet"]
    assert (ids["clean"], ids["sessions"], "clicks") in {
        (x.upstream, x.downstream, x.argument) for x in graph.edges
    }
    assert ids["labels"] not in graph.nodes  # a sibling, not an ancestor


def test_downstream_and_both_directions() -> None:
    e, ids = churn()
    down = lineage_graph.build(e, ids["clean"], "downstream")
    assert set(down.nodes) == {ids["clean"], ids["sessions"], ids["users"], ids["labels"]}
    both = lineage_graph.build(e, ids["sessions"], "both")
    assert ids["users"] in both.nodes and ids["clean"] in both.nodes
    assert ids["labels"] not in both.nodes  # a cousin is neither up- nor downstream


def test_depth_limits_hops_and_marks_where_it_cut() -> None:
    e, ids = churn()
    graph = lineage_graph.build(e, ids["users"], "upstream", depth=1)
    assert {n.features for n in graph.nodes.values() if n.kind == "artifact"} == {
        ("user_features",),
        ("sessionize",),
    }
    assert graph.truncated["upstream"] == {ids["sessions"]}
    assert "deeper than --depth" in render(lineage_graph.to_tree(graph))
    zero = lineage_graph.build(e, ids["users"], "upstream", depth=0)
    assert set(zero.nodes) == {ids["users"]} and zero.edges == []


def test_cycles_and_self_loops_terminate() -> None:
    e = Edges()
    a, b = aid("a"), aid("b")
    e.add(a, "identity", ("df", a, None))  # a feature returning its input: same content id
    e.add(a, "identity", ("other", b, None))
    e.add(b, "back", ("df", a, None))
    graph = lineage_graph.build(e, a, "both")
    assert set(graph.nodes) == {a, b}
    assert len(graph.edges) == len(set(graph.edges)) == 3
    text = render(lineage_graph.to_tree(graph))
    assert "shown above" in text


def test_a_shared_ancestor_is_one_node_and_expanded_once() -> None:
    e, ids = churn()
    top = e.add(
        aid("training"), "training", ("users", ids["users"], None), ("labels", ids["labels"], None)
    )
    graph = lineage_graph.build(e, top, "upstream")
    assert len([x for x in graph.edges if x.upstream == ids["clean"]]) == 2
    text = render(lineage_graph.to_tree(graph))
    assert text.count("clean_clicks") == 2  # once expanded, once "(shown above)"
    assert text.count("shown above") == 1
    assert text.count("clicks.parquet") == 1


def test_collected_artifacts_are_marked() -> None:
    e, ids = churn()
    e.collected.add(ids["sessions"])
    graph = lineage_graph.build(e, ids["users"], "upstream")
    assert graph.nodes[ids["sessions"]].live is False
    assert ids["clean"] in graph.nodes  # its edges are still recorded
    assert "(collected)" in render(lineage_graph.to_tree(graph))


def test_json_dot_and_mermaid() -> None:
    e, ids = churn()
    graph = lineage_graph.build(e, ids["users"], "upstream")
    data = json.loads(json.dumps(graph.to_json()))
    assert data["root"] == ids["users"] and data["direction"] == "upstream"
    assert {n["id"] for n in data["nodes"]} == set(graph.nodes)
    assert {"from", "to", "argument"} <= set(data["edges"][0])

    dot = lineage_graph.to_dot(graph)
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert dot.count(" -> ") == len(graph.edges) == 4
    assert f'"{ids["sessions"]}" -> "{ids["users"]}" [label="sessions"];' in dot
    assert "shape=note" in dot and "user_features" in dot

    mermaid = lineage_graph.to_mermaid(graph)
    assert mermaid.startswith("flowchart LR")
    assert mermaid.count(" -->|") == 4 and "|sessions|" in mermaid


def test_labels_are_escaped_for_dot_and_mermaid() -> None:
    e = Edges()
    a, b = aid("a"), aid("b")
    e.add(a, 'odd "name"', ("path", None, 'file:///x/"quoted" <b>.csv'))
    e.add(b, "next", ('arg|"x"', a, None))
    graph = lineage_graph.build(e, b, "upstream")
    dot = lineage_graph.to_dot(graph)
    assert '\\"quoted\\"' in dot and 'odd \\"name\\"' in dot
    mermaid = lineage_graph.to_mermaid(graph)
    assert '"quoted"' not in mermaid and "#quot;quoted#quot;" in mermaid
    assert "#lt;b#gt;" in mermaid and "arg#124;" in mermaid


# -- the law: exactly the nodes within `depth` hops are in the graph --------------------------

graphs = st.dictionaries(
    st.integers(0, 7),
    st.lists(st.integers(0, 7), max_size=3),  # upstream artifacts of each artifact
    min_size=1,
)


def hops_from(root: int, neighbours: dict[int, set[int]]) -> dict[int, int]:
    distance = {root: 0}
    queue = deque([root])
    while queue:
        node = queue.popleft()
        for nxt in neighbours.get(node, set()):
            if nxt not in distance:
                distance[nxt] = distance[node] + 1
                queue.append(nxt)
    return distance


@settings(max_examples=150, deadline=None)
@given(graphs, st.integers(0, 7), st.none() | st.integers(0, 4), st.booleans())
def test_graph_holds_exactly_the_nodes_within_depth(
    ups: dict[int, list[int]], root: int, depth: int | None, upstream: bool
) -> None:
    e = Edges()
    for node, parents in ups.items():
        e.add(aid(str(node)), f"f{node}", *[(f"a{p}", aid(str(p)), None) for p in parents])
    e.features.setdefault(aid(str(root)), f"f{root}")
    parents_of = {n: set(p) for n, p in ups.items()}
    children_of: dict[int, set[int]] = {}
    for node, parents in ups.items():
        for p in parents:
            children_of.setdefault(p, set()).add(node)
    distance = hops_from(root, parents_of if upstream else children_of)
    expected = {aid(str(n)) for n, d in distance.items() if depth is None or d <= depth}

    graph = lineage_graph.build(e, aid(str(root)), "upstream" if upstream else "downstream", depth)
    assert set(graph.nodes) == expected
    for edge in graph.edges:
        assert edge.upstream in graph.nodes and edge.downstream in graph.nodes
    render(lineage_graph.to_tree(graph))  # terminates on any graph, cycles included


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pydot's own pyparsing calls
def test_dot_output_parses_as_graphviz() -> None:
    pydot = pytest.importorskip("pydot", reason="pydot (installed with dvc) parses dot")
    e, ids = churn()
    e.add(aid("odd"), 'odd "name"', ("x\\y", ids["users"], None))
    (parsed,) = pydot.graph_from_dot_data(lineage_graph.to_dot(lineage_graph.build(e, aid("odd"))))
    assert len(parsed.get_edges()) == 5
    assert {edge.get_label() for edge in parsed.get_edges()} >= {'"sessions"', '"x\\\\y"'}
