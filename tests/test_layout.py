"""The package layout keeps its promises (docs/architecture.md).

* no import cycle among the modules of ``elastic_des``, counting imports
  inside functions too (a cycle hidden in a function is still a cycle);
* dependencies point one way: app → analysis → engine, and policies,
  forecasters and the agent → the engine's interfaces;
* importing the engine loads none of torch, seaborn, matplotlib, streamlit
  or hydra;
* no module is longer than 400 lines.

That moves change no result is checked by ``tests/test_golden.py``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import elastic_des

PACKAGE = Path(elastic_des.__file__).resolve().parent

# For each layer, the layers it must never import.
SCHEMAS = ("config", "scenario_config", "world_config")
FORBIDDEN = {
    "engine": ("policies", "forecasters", "agent", "analysis", "app", *SCHEMAS, "factory", "validate"),
    "policies": ("analysis", "app", *SCHEMAS, "validate", "agent"),
    "forecasters": ("analysis", "app", *SCHEMAS, "validate", "agent", "policies"),
    "agent": ("analysis", "app", *SCHEMAS, "validate"),
    "analysis": ("app", "validate"),
}
HEAVY = ("torch", "seaborn", "matplotlib", "streamlit", "hydra")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every module of ``modules`` that ``path`` imports, anywhere in the file
    (``from elastic_des import rng`` imports the module ``elastic_des.rng``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return found & modules


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports_of(path, set(modules)) - {name} for name, path in modules.items()}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 30  # the walk found the package
    assert cycles(graph) == []


def test_cycle_detection_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_dependencies_point_one_way():
    wrong = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in targets
        if layer(target) in FORBIDDEN.get(layer(module), ())
    ]
    assert wrong == []


def test_engine_import_loads_no_heavy_library():
    code = "import sys, elastic_des.engine; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    assert "elastic_des.engine.simulation" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY) == []


def test_no_module_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
