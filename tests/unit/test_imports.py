"""Imports inside explorer_core go one way: no cycle (function-level imports count), and a training recipe
can be read without importing a model, the registry or scipy."""

import ast
import subprocess
import sys
from pathlib import Path

import explorer_core

PACKAGE = Path(explorer_core.__file__).resolve().parent


def module_graph() -> dict[str, set[str]]:
    """Module name -> the explorer_core modules it imports anywhere in its code (top level or inside a
    function; ``from a import b`` counts as importing ``a.b`` when that is a module)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
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


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_inside_explorer_core():
    graph = module_graph()
    assert "explorer_core.training.recipes" in graph and "explorer_core.families" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_reading_a_recipe_imports_no_model_no_registry_and_no_scipy():
    code = (
        "import sys\n"
        "from explorer_core.training.recipes import TrainConfig\n"
        "config = TrainConfig.for_family('gmvae', epochs=3)\n"
        "assert config.model_config()['n_clusters'] == 10\n"
        "heavy = ('explorer_core.families', 'explorer_core.models.base', 'explorer_core.models.vae',\n"
        "         'explorer_core.models.gmvae', 'explorer_core.models.vrnn', 'explorer_core.models.layers')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy' or m in heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
