"""No import cycles between rootseed's subpackages (and top-level modules): each part can
be read, tested and replaced knowing only what it imports. Imports are read from the
source with ``ast`` (every import statement, also those inside functions or under
``TYPE_CHECKING``), so nothing is executed."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "rootseed"


def _unit(module: str) -> str:
    """``rootseed.engine.cache`` → ``engine``; ``rootseed`` itself → ``rootseed``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _module(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path) -> dict[str, dict[str, set[str]]]:
    """unit → unit it imports → the modules whose imports make that edge."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in sorted(root.rglob("*.py")):
        module = _module(path, root)
        source = _unit(module)
        graph.setdefault(source, {})
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.split(".")[0] != root.name:
                    continue
                target = _unit(name)
                if target != source:
                    graph[source].setdefault(target, set()).add(module)
    return graph


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """The strongly connected components with more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_subpackages() -> None:
    graph = import_graph(SRC)
    assert {"engine", "provenance", "plan", "tree"} <= graph.keys()
    found = cycles(graph)
    detail = [{a: {b: sorted(graph[a][b]) for b in graph[a] if b in c} for a in c}
              for c in found]
    assert not found, f"import cycles between subpackages: {detail}"


def test_the_check_finds_a_cycle(tmp_path: Path) -> None:
    root = tmp_path / "rootseed"
    for name, text in {"a/__init__.py": "", "a/x.py": "from rootseed.b import y\n",
                       "b/__init__.py": "", "b/y.py": "def f():\n    import rootseed.a.x\n",
                       "c.py": "from rootseed import a\n"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    assert cycles(import_graph(root)) == [["a", "b"]]


def test_other_parts_use_the_engine_through_its_facade() -> None:
    """crosscheck, challenge and bootstrap import the engine only through engine.api (no
    reaching into the cache, the fetcher, fsops or extract)."""
    graph = import_graph(SRC)
    for part in ("crosscheck", "challenge", "bootstrap"):
        modules = graph[part].get("engine", set())
        assert modules, f"{part} does not use the engine at all?"
        for path in sorted((SRC / part).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) and node.module
                         else [])
                for name in names:
                    if name.startswith("rootseed.engine"):
                        assert name == "rootseed.engine.api", \
                            f"{path.relative_to(SRC)} imports {name}, not rootseed.engine.api"
