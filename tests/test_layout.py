"""The package's import structure (ARCHITECTURE.md): no module of snn2hw/ or exporters/
imports, at the top of the file, a module that imports it back (directly or around a longer
loop). Imports inside functions (the backend registration, lazy heavy imports) are not
counted: they run after every module involved has loaded."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "exporters":          # installed as snn2hw.exporters (pyproject.toml)
        parts = ["snn2hw", *parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that ``path`` imports at its top level."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.parse(path.read_text()).body:   # If blocks (TYPE_CHECKING) skipped
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = sorted((ROOT / "snn2hw").rglob("*.py")) + sorted((ROOT / "exporters").rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): top_level_imports(f, modules) for f in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}   # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_loop():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_relative_and_absolute_imports():
    graph = import_graph()
    assert "snn2hw.onnx.ops.registry" in graph["snn2hw.onnx.ops.conv"]
    assert "snn2hw.hardware.profile_fields" in graph["snn2hw.exporters.lava.settings"]
    assert "snn2hw.backends" in graph["snn2hw.hardware.profiles"]


def test_no_import_cycle_at_module_level():
    assert find_cycle(import_graph()) is None
