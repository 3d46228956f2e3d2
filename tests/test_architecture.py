"""The package's shape, checked over the ``ast`` of every module: no import cycle anywhere
(module-level, function-level and TYPE_CHECKING imports alike), dependencies between the parts
point the way README's "Architecture" says, and only ``integrations/`` imports MLflow or DVC."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import featurecache

PACKAGE = Path(featurecache.__file__).resolve().parent

# The top level is the hit path (and the public API); everything else lives in a subpackage.
TOP_LEVEL = {
    "__init__",
    "__main__",
    "background",
    "engine",
    "errors",
    "feature",
    "frames",
    "hashing",
    "heartbeat",
    "hooks",
    "logs",
    "keys",
    "parquet",
    "parquet_memo",
    "publish",
    "settings",
    "singleflight",
    "usage",
}
SUBPACKAGES = {
    "catalog",
    "cli",
    "fingerprint",
    "integrations",
    "ops",
    "partitions",
    "results",
    "store",
    "stream",
}


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module below ``package``."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imported_modules(path: Path, modules: Mapping[str, Path]) -> Iterator[str]:
    """Every module of the package that ``path`` imports, wherever the import statement is.
    ``from pkg import sub`` counts as importing ``pkg.sub`` when ``sub`` is a module."""
    root = next(iter(modules)).split(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == root:
                    yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != root:
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                yield sub if sub in modules else node.module


def third_party_imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def import_graph(package: Path) -> dict[str, set[str]]:
    modules = module_files(package)
    return {
        name: {m for m in imported_modules(path, modules) if m in modules and m != name}
        for name, path in modules.items()
    }


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (cycle := visit(dep)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


GRAPH = import_graph(PACKAGE)


def test_no_import_cycle_anywhere_in_the_package() -> None:
    assert find_cycle(GRAPH) is None


def test_the_cycle_check_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from pkg import a\n")
    assert find_cycle(import_graph(package)) == ["pkg.a", "pkg.sub.b", "pkg.a"]
    (package / "sub" / "b.py").write_text("def f():\n    return 1\n")
    assert find_cycle(import_graph(package)) is None


def test_no_module_imports_the_package_root() -> None:
    # The root re-exports the public API from everywhere: importing it from inside would
    # close a cycle through it.
    assert [name for name, deps in GRAPH.items() if "featurecache" in deps] == []


def test_the_top_level_holds_the_hit_path_only() -> None:
    tops = {p.stem for p in PACKAGE.glob("*.py")}
    dirs = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert tops == TOP_LEVEL
    assert dirs == SUBPACKAGES


def _importers(prefix: str) -> dict[str, set[str]]:
    return {
        name: {d for d in deps if d == prefix or d.startswith(prefix + ".")}
        for name, deps in GRAPH.items()
    }


@pytest.mark.parametrize(
    ("part", "must_not_import"),
    [
        ("featurecache.store", "featurecache.catalog"),
        ("featurecache.catalog", "featurecache.store"),
        ("featurecache.catalog", "featurecache.ops"),
        ("featurecache.fingerprint", "featurecache.parquet"),
        ("featurecache.fingerprint", "featurecache.engine"),
        ("featurecache.store", "featurecache.engine"),
        ("featurecache.engine", "featurecache.integrations"),
        ("featurecache.publish", "featurecache.engine"),
        ("featurecache.feature", "featurecache.ops"),
        ("featurecache.fingerprint", "featurecache.integrations"),
        ("featurecache.engine", "featurecache.partitions"),
        ("featurecache.catalog", "featurecache.partitions"),
        ("featurecache.store", "featurecache.partitions"),
        ("featurecache.partitions", "featurecache.cli"),
    ],
)
def test_dependencies_point_down(part: str, must_not_import: str) -> None:
    offenders = {
        name: sorted(deps)
        for name, deps in _importers(must_not_import).items()
        if deps and (name == part or name.startswith(part + "."))
    }
    assert offenders == {}


def test_only_integrations_import_mlflow_or_dvc() -> None:
    outside = {
        name: sorted(set(third_party_imports(path)) & {"mlflow", "dvc", "dvc_data"})
        for name, path in module_files(PACKAGE).items()
        if not name.startswith("featurecache.integrations")
    }
    assert {name: found for name, found in outside.items() if found} == {}


def test_the_core_imports_no_integration() -> None:
    core = {
        name: sorted(d for d in deps if d.startswith("featurecache.integrations"))
        for name, deps in GRAPH.items()
        if not name.startswith(("featurecache.integrations", "featurecache.cli"))
        and name != "featurecache"  # the public API re-exports DvcPath, lineage() lazily
    }
    assert {name: found for name, found in core.items() if found} == {}
