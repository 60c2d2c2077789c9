"""ArchConfig → standalone ``model.py`` source that imports only torch.

In: an :class:`~nasl.network.arch.ArchConfig` (plus optional input normalisation and a header).
Out: the text of a Python module holding, copied verbatim from :mod:`nasl.network.blocks` (the one
block library), the definitions this network uses (its block classes, the helpers they
call, ``Head``, ``build_block`` and ``Network``) with the imports they need; then the
architecture as a literal ``ARCH``, ``INPUT_SHAPE``, ``NUM_CLASSES``, ``MEAN``/``STD``, the
registry ``BLOCKS`` of the used block types and ``load_model(weights=None)``. The module
is nasl's own ``Network`` code, so weights saved from a nasl model load with ``strict=True``.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from nasl.network import blocks
from nasl.network.arch import ArchConfig

WEIGHTS_FILE = "weights.safetensors"

_LOAD_MODEL = '''
def load_model(weights: str | os.PathLike | None = None) -> nn.Module:
    """The network in eval mode with its trained weights.

    ``weights``: a .safetensors file; default ``weights.safetensors`` beside this file.
    Loading needs the ``safetensors`` package (imported only here).
    """
    from safetensors.torch import load_file

    if weights is None:
        weights = os.path.join(os.path.dirname(os.path.abspath(__file__)), WEIGHTS_FILE)
    model = Network(ARCH)
    model.load_state_dict(load_file(os.fspath(weights)), strict=True)
    return model.eval()
'''
#: Definitions of nasl.network.blocks that model.py never holds: the registry is generated instead.
_NOT_EXPORTED = {"_register", "make_block"}


def format_arch(d: dict[str, Any]) -> str:
    """``arch.to_dict()`` as a readable Python literal: one line per block."""
    lines = ["ARCH = {"]
    for key in ("family", "input_size", "num_classes", "in_channels", "choices"):
        lines.append(f"    {key!r}: {d[key]!r},")
    lines.append("    'stem': [")
    lines += [f"        {b!r}," for b in d["stem"]]
    lines.append("    ],")
    lines.append("    'stages': [")
    for st in d["stages"]:
        lines.append(f"        {{'name': {st['name']!r}, 'blocks': [")
        lines += [f"            {b!r}," for b in st["blocks"]]
        lines.append("        ]},")
    lines.append("    ],")
    lines.append(f"    'head': {d['head']!r},")
    lines.append("}")
    return "\n".join(lines)


def block_types(arch: ArchConfig) -> list[str]:
    """Block types the network uses, in the registry's order."""
    used = {spec.type for _, spec in arch.layers()}
    unknown = used - set(blocks.BLOCKS)
    if unknown:
        raise ValueError(f"no block in nasl.network.blocks for block type(s) {sorted(unknown)}")
    return [t for t in blocks.BLOCKS if t in used]


def library() -> tuple[list[ast.stmt], dict[str, str]]:
    """nasl.network.blocks parsed: (its top-level imports, {name: source} of each top-level function
    and class model.py may hold, in the file's order)."""
    src = Path(blocks.__file__).read_text(encoding="utf-8")
    lines = src.splitlines()
    tree = ast.parse(src)
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    defs = {}
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name not in _NOT_EXPORTED:
            first = min([d.lineno for d in n.decorator_list] + [n.lineno])  # decorators too
            defs[n.name] = "\n".join(lines[first - 1:n.end_lineno])
    return imports, defs


def _names(source: str) -> set[str]:
    """Every name a piece of source reads (annotations included)."""
    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}


def needed_source(types: Sequence[str]) -> tuple[list[str], list[str]]:
    """(import lines, definitions) of nasl.network.blocks that the blocks of ``types`` need: their
    classes, ``Network`` (which builds them with ``Head`` and ``build_block``) and whatever
    those call, each once, in the file's order; imports only where a definition uses them
    (never one of nasl)."""
    imports, defs = library()
    wanted = {blocks.BLOCKS[t].__name__ for t in types} | {"Network"}  # type: ignore[attr-defined]
    todo = list(wanted)
    while todo:
        for dep in _names(defs[todo.pop()]) & (set(defs) - wanted):
            wanted.add(dep)
            todo.append(dep)
    chosen = [src for name, src in defs.items() if name in wanted]
    used = set().union(*(_names(src) for src in chosen)) | {"annotations"}
    lines = []
    for node in imports:
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "nasl":
            continue
        bound = {(a.asname or a.name).split(".")[0] for a in node.names}
        if bound & used:
            lines.append(ast.unparse(node))
    return lines, chosen


def generate_source(arch: ArchConfig, *, mean: Sequence[float] | None = None,
                    std: Sequence[float] | None = None, title: str | None = None,
                    notes: Sequence[str] = ()) -> str:
    """The text of a standalone ``model.py`` for ``arch`` (see the module docstring).

    ``mean``/``std``: per-channel input normalisation the weights were trained with
    (written as ``MEAN``/``STD``; ``None`` when untrained). ``title`` and ``notes`` go into
    the module docstring.
    """
    types = block_types(arch)
    shape = (1, arch.in_channels, arch.input_size, arch.input_size)
    head = title or f"{arch.family} network {arch.id}"
    doc = [f'"""{head}', "", "Standalone PyTorch model written by `nasl export`; it needs only torch "
           "(and safetensors", "to read the weights). Usage:", "",
           "    from model import load_model, INPUT_SHAPE",
           "    model = load_model()                    # reads weights.safetensors beside this file",
           "    logits = model(torch.randn(INPUT_SHAPE))  # (N, NUM_CLASSES)",
           "    untrained = Network(ARCH)               # the same network, fresh weights", "",
           "Inputs are float32 images of INPUT_SHAPE (any batch size), each channel normalised",
           "as (x - MEAN) / STD on the raw pixel scale of the training data set."]
    doc += [*([""] if notes else []), *notes, '"""']
    imports, definitions = needed_source(types)
    registry = "BLOCKS = {\n" + "".join(f"    {t!r}: {blocks.BLOCKS[t].__name__},\n"  # type: ignore[attr-defined]
                                        for t in types) + "}"
    constants = [
        f"INPUT_SHAPE = {shape!r}  # (batch, channels, height, width)",
        f"NUM_CLASSES = {arch.num_classes}",
        f"MEAN = {_floats(mean)}",
        f"STD = {_floats(std)}",
        f"WEIGHTS_FILE = {WEIGHTS_FILE!r}",
    ]
    torch_lines = [line for line in imports if line.split()[1].split(".")[0] == "torch"]
    stdlib = ["import os", *[line for line in imports if line not in torch_lines
                             and not line.startswith("from __future__")]]
    preamble = "\n\n".join(["\n".join(doc), "from __future__ import annotations",
                             "\n".join(stdlib), "\n".join(torch_lines), "\n".join(constants)])
    parts = [
        preamble,
        "# The architecture, block by block (arguments as in nasl's ArchConfig).\n" + format_arch(
            arch.to_dict()),
        "# The blocks and the network: nasl's own code (nasl/network/blocks.py), copied verbatim.",
        *definitions,
        "# The block types this network uses.\n" + registry,
        _LOAD_MODEL.strip("\n"),
    ]
    return "\n\n\n".join(parts) + "\n"


def _floats(values: Sequence[float] | None) -> str:
    if values is None:
        return "None  # untrained weights: no input statistics"
    return "(" + ", ".join(repr(float(f"{v:.6g}")) for v in values) + ("," if len(values) == 1 else "") + ")"


def load_module(path: Path, name: str = "nasl_exported_model") -> ModuleType:
    """Import a generated ``model.py`` from ``path`` (a fresh module object each call)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclass/annotation machinery may look it up
    bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in exports
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
        sys.dont_write_bytecode = bytecode
    return module
