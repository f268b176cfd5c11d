"""The package's layers (docs/architecture.md): every import of a genlab module, at module level
or inside a function, points to the same layer or a lower one; the import graph has no cycle;
no function imports a genlab module (outside cli/, which may defer one for start-up speed)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import genlab

SRC = Path(genlab.__file__).parent
# Lowest first. A module belongs to the first prefix it matches (the longest wins).
LAYERS = [
    ["genlab.core"],
    ["genlab.nn", "genlab.losses", "genlab.data"],
    ["genlab.models"],
    ["genlab.metrics"],
    ["genlab.training"],
    ["genlab.api"],
    ["genlab.tools"],
    ["genlab.cli", "genlab.__main__", "genlab"],
]
LAZY_OK = ("genlab.cli",)  # may import inside a function (deferred for `genlab --help`)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def layer_of(module: str) -> int:
    best, depth = None, -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            hit = module == prefix or module.startswith(prefix + ".")
            if hit and prefix.count(".") > depth:
                best, depth = i, prefix.count(".")
    assert best is not None, f"{module} is in no layer: add it to LAYERS and docs/architecture.md"
    return best


def imports(module: str) -> list[tuple[str, int, bool]]:
    """(imported genlab module, line, inside a function) for each import in ``module``; ``from
    P import name`` counts as importing P.name when that is a module, else P."""
    tree = ast.parse(MODULES[module].read_text())
    functions = {
        id(node)
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(fn)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            subs = [f"{node.module}.{a.name}" for a in node.names]
            targets = [s for s in subs if s in MODULES] or [node.module]
        else:
            continue
        for target in targets:
            if target == "genlab" or target.startswith("genlab."):
                assert target in MODULES, f"{module}:{node.lineno} imports unknown {target}"
                found.append((target, node.lineno, id(node) in functions))
    return found


GRAPH = {m: imports(m) for m in sorted(MODULES)}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_or_across(module):
    mine = layer_of(module)
    for target, line, _ in GRAPH[module]:
        assert layer_of(target) <= mine, (
            f"{module}:{line} imports {target}, a higher layer "
            f"({LAYERS[layer_of(target)][0]} over {LAYERS[mine][0]})"
        )


def test_no_function_level_imports_outside_the_cli():
    lazy = [
        f"{m}:{line} imports {t}"
        for m, found in GRAPH.items()
        if not m.startswith(LAZY_OK)
        for t, line, inside in found
        if inside
    ]
    assert lazy == []


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of a directed graph as a path [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_graph_has_no_cycle():
    graph = {m: {t for t, _, _ in found} for m, found in GRAPH.items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_cycles_and_only_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"y"}, "y": {"y"}}) == ["y", "y"]


def test_the_layer_rule_catches_an_upward_import():
    # A lower module importing a higher one is exactly what the parametrized test refuses.
    assert layer_of("genlab.models.gan") < layer_of("genlab.training.trainer")
    assert layer_of("genlab.tools.report") > layer_of("genlab.api")
    assert layer_of("genlab") == layer_of("genlab.cli.main")
