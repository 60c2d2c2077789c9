"""Imports only go down the pipeline: no module imports a higher layer, no import cycles,
no module uses another module's private names, and no file grows past ~400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import nasl

ROOT = Path(nasl.__file__).parent
# Lowest first. A module may import its own layer or lower ones (see docs/architecture.md).
#: Packages whose modules sit in different layers: a module's layer is named "package.module".
MIXED = {"hardware", "network", "training"}
LAYERS: list[set[str]] = [
    {"common", "hardware.omp", "training.recipes", *MIXED},  # a mixed package's __init__: a docstring
    {"network.specs", "network.arch", "stats", "decide"},
    {"network.blocks", "families", "space", "spaces", "data", "datasets"},
    {"hardware.contention", "hardware.devices", "network.builder", "network.cost", "training.augment",
     "training.evaluation", "hardware.accel", "training.train", "zerocost", "latency"},
    {"run"},
    {"report"},
    {"tracking"},
    {"search"},
    {"proxies", "fidelity", "export"},
    {"cli"},
]
MAX_LINES = 400


def top(module: str) -> str:
    """``nasl.search.run`` → ``search``; ``nasl.network.cost`` → ``network.cost`` (a mixed
    package: its modules are placed one by one)."""
    parts = module.split(".")
    if len(parts) >= 3 and parts[1] in MIXED:
        return f"{parts[1]}.{parts[2]}"
    return parts[1] if len(parts) >= 2 else module


def layer_of(name: str) -> int:
    for i, names in enumerate(LAYERS):
        if name in names:
            return i
    raise AssertionError(f"nasl.{name} is in no layer of tests/test_layers.py: add it")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every nasl import, lazy ones included."""
    tree = ast.parse(path.read_text())
    here = module_name(path)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                base = here.split(".")[: len(here.split(".")) - node.level + (path.name == "__init__.py")]
                mod = ".".join([*base, mod] if mod else base)
            if mod == "nasl":
                out += [(f"nasl.{a.name}", []) for a in node.names]
            elif mod.count(".") == 1 and mod.split(".")[1] in MIXED:  # from nasl.network import cost
                out += [(f"{mod}.{a.name}", []) for a in node.names]
            elif mod.startswith("nasl."):
                out.append((mod, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.startswith("nasl.")]
    return out


FILES = sorted(p for p in ROOT.rglob("*.py"))


def test_every_import_goes_down_the_pipeline():
    bad = []
    for path in FILES:
        me = module_name(path)
        if me == "nasl":
            continue
        for mod, _ in imports(path):
            if layer_of(top(mod)) > layer_of(top(me)):
                bad.append(f"{me} imports {mod}")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_private_names_across_modules():
    bad = []
    for path in FILES:
        me = module_name(path)
        for mod, names in imports(path):
            # a package may re-export its own modules' names; nothing else takes a _name
            if mod != me and any(n.startswith("_") and not n.startswith("__") for n in names):
                bad.append(f"{me} takes {[n for n in names if n.startswith('_')]} from {mod}")
    assert not bad, "\n".join(bad)


def test_no_import_cycles_between_modules():
    graph: dict[str, set[str]] = {}
    known = {module_name(p) for p in FILES}
    for path in FILES:
        me = module_name(path)
        deps = set()
        for mod, names in imports(path):
            for cand in [f"{mod}.{n}" for n in names] + [mod]:
                if cand in known and cand != me:
                    deps.add(cand)
                    break
        # a package's __init__ re-exports its modules: edges into a package are not cycles
        graph[me] = {d for d in deps if not (me.startswith(d + ".") or d.startswith(me + "."))}
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        seen[n] = 1
        stack.append(n)
        for d in graph.get(n, ()):
            if seen.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in seen:
                visit(d)
        stack.pop()
        seen[n] = 2

    for n in sorted(graph):
        if n not in seen:
            visit(n)


def test_no_module_is_too_long():
    long = {module_name(p): n for p in FILES if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
