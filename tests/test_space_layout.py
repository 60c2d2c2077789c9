"""nasl/space is layered: no import cycle between its modules (function-level imports
included) and no module reaches into another's private (underscore) names."""

from __future__ import annotations

import ast
from pathlib import Path

import nasl.space

SPACE_DIR = Path(nasl.space.__file__).parent


def _modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(), str(p)) for p in sorted(SPACE_DIR.glob("*.py"))
            if p.stem != "__init__"}


def _space_imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """(module stem inside nasl.space, imported names) for every import, at any depth."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith("nasl.space."):
            out.append((node.module.split(".")[2], [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name.split(".")[2], []) for a in node.names
                    if a.name.startswith("nasl.space.")]
    return out


def test_no_import_cycle_in_space() -> None:
    mods = _modules()
    graph = {m: {dep for dep, _ in _space_imports(t)} for m, t in mods.items()}
    done: set[str] = set()

    def visit(m: str, path: tuple[str, ...]) -> None:
        assert m not in path, f"import cycle: {' -> '.join((*path, m))}"
        if m in done:
            return
        for dep in sorted(graph.get(m, ())):
            visit(dep, (*path, m))
        done.add(m)

    for m in graph:
        visit(m, ())
    assert "build" not in graph["core"] and "model" not in graph["build"]


def test_no_private_names_across_modules() -> None:
    bad = []
    for m, tree in _modules().items():
        for dep, names in _space_imports(tree):
            bad += [f"{m} imports {dep}.{n}" for n in names if n.startswith("_")]
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and \
                    not node.attr.startswith("__") and not (
                        isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                bad.append(f"{m}:{node.lineno} uses {ast.unparse(node)}")
    assert not bad, "; ".join(bad)
