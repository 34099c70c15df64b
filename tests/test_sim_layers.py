"""The simulator's modules import one another in layers, without a cycle.

From the bottom: the models and the other building blocks (`model`, `placement`, `catalog`,
`backend`, `network`, ...), then the engine (`engine`: the clock, the scheduled transitions,
the records, the backend calls), then the request handlers (`instances`, `resources`), then
`routes` and `server` on top. A module imports only modules below it. Every import counts,
those inside functions too: an import moved into a function still makes the cycle it was moved
to hide.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import swarmboot.sim

PACKAGE = "swarmboot.sim"
SOURCES = Path(next(iter(swarmboot.sim.__path__)))

ENGINE = frozenset({"engine"})
HANDLERS = frozenset({"instances", "resources"})
TOP = frozenset({"routes", "server"})


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    in_function: bool

    def __str__(self) -> str:
        where = " (inside a function)" if self.in_function else ""
        return f"{self.source}.py:{self.line} imports {self.target}{where}"


def _modules() -> dict[str, ast.Module]:
    return {
        path.stem: ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for path in sorted(SOURCES.glob("*.py"))
        if path.stem != "__init__"
    }


def _targets(node: ast.Import | ast.ImportFrom, known: frozenset[str]) -> list[str]:
    """The simulator modules an import statement loads."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # from . import x, from .x import y
            base = f"{PACKAGE}.{base}" if base else PACKAGE
        # `from swarmboot.sim import x` loads the module x; `from swarmboot.sim.x import y` x.
        names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
    found = []
    for name in names:
        if not name.startswith(PACKAGE + "."):
            continue
        module = name[len(PACKAGE) + 1 :].split(".")[0]
        if module in known and module not in found:
            found.append(module)
    return found


class _Imports(ast.NodeVisitor):
    def __init__(self, source: str, known: frozenset[str]) -> None:
        self.source = source
        self.known = known
        self.depth = 0
        self.edges: list[Edge] = []

    def _function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        for target in _targets(node, self.known):
            if target != self.source:
                self.edges.append(Edge(self.source, target, node.lineno, self.depth > 0))

    visit_Import = visit_ImportFrom = _import


def _edges() -> list[Edge]:
    modules = _modules()
    known = frozenset(modules)
    edges = []
    for name, tree in modules.items():
        visitor = _Imports(name, known)
        visitor.visit(tree)
        edges.extend(visitor.edges)
    return edges


def _graph(edges: list[Edge]) -> dict[str, dict[str, Edge]]:
    graph: dict[str, dict[str, Edge]] = {name: {} for name in _modules()}
    for edge in edges:
        graph[edge.source].setdefault(edge.target, edge)
    return graph


def _cycles(graph: dict[str, dict[str, Edge]]) -> list[list[Edge]]:
    """At least one cycle through each group of modules importing one another, as its imports."""
    cycles: list[list[Edge]] = []
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        # Depth first, keeping the path; an edge back onto the path closes a cycle.
        path: list[Edge] = []
        on_path = {start}
        stack = [(start, iter(sorted(graph[start])))]
        while stack:
            node, targets = stack[-1]
            target = next(targets, None)
            if target is None:
                stack.pop()
                done.add(node)
                on_path.discard(node)
                if path:
                    path.pop()
                continue
            edge = graph[node][target]
            if target in on_path:
                first = next((i for i, e in enumerate(path) if e.source == target), len(path))
                cycle = [*path[first:], edge]
                if not any({e.source for e in c} == {e.source for e in cycle} for c in cycles):
                    cycles.append(cycle)
            elif target not in done:
                path.append(edge)
                on_path.add(target)
                stack.append((target, iter(sorted(graph[target]))))
    return cycles


def _describe(cycle: list[Edge]) -> str:
    names = " -> ".join([*(e.source for e in cycle), cycle[0].source])
    return f"{names}: " + "; ".join(str(e) for e in cycle)


def test_the_import_graph_is_read_from_the_sources():
    graph = _graph(_edges())
    # Imports known to be there: were none found, the other tests would pass for nothing.
    assert {"instances", "resources", "engine"} <= set(graph["routes"])
    assert "engine" in graph["server"]
    assert "model" in graph["engine"]
    assert "placement" in graph["routes"] and "model" in graph["placement"]


def test_the_cycle_finder_names_a_cycle():
    a_b = Edge("a", "b", 1, False)
    b_c = Edge("b", "c", 2, True)
    c_a = Edge("c", "a", 3, False)
    graph = {"a": {"b": a_b}, "b": {"c": b_c}, "c": {"a": c_a}, "d": {}}
    [cycle] = _cycles(graph)
    assert _describe(cycle) == (
        "a -> b -> c -> a: a.py:1 imports b; b.py:2 imports c (inside a function); c.py:3 imports a"
    )


def test_the_simulator_modules_import_one_another_without_a_cycle():
    cycles = _cycles(_graph(_edges()))
    assert not cycles, "import cycles between simulator modules:\n" + "\n".join(
        _describe(c) for c in cycles
    )


def test_the_engine_and_the_models_import_no_request_handler():
    above = HANDLERS | TOP
    models = {"engine", "model", "placement"}
    wrong = [str(e) for e in _edges() if e.source in models and e.target in above]
    assert not wrong, "the engine and the models import what is above them:\n" + "\n".join(wrong)


def test_no_module_imports_one_above_it():
    def layer(module: str) -> int:
        return 3 if module in TOP else 2 if module in HANDLERS else 1 if module in ENGINE else 0

    wrong = [str(e) for e in _edges() if layer(e.target) > layer(e.source)]
    assert not wrong, "imports of a higher layer:\n" + "\n".join(wrong)


def test_simulator_modules_import_one_another_at_module_level():
    lazy = [str(e) for e in _edges() if e.in_function]
    assert not lazy, "imports of simulator modules inside functions:\n" + "\n".join(lazy)
