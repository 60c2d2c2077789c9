"""ArchConfig → standalone ``model.py`` source that imports only torch.

In: an :class:`~nasl.arch.ArchConfig` (plus optional input normalisation and a header).
Out: the text of a Python module holding the block classes this network uses (written
out by hand below, mirroring :mod:`nasl.blocks` attribute for attribute, so that the
``state_dict`` keys and shapes are identical and weights saved from a nasl model load with
``strict=True``), the architecture as a literal ``ARCH``, ``INPUT_SHAPE``, ``NUM_CLASSES``,
a ``Network`` class and ``load_model(weights=None)``.

When a block of :mod:`nasl.blocks` changes, the matching template here must change with it;
``tests/test_export.py`` compares the state dicts of every family to catch drift.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from nasl.arch import ArchConfig

# --------------------------------------------------------------------------- templates
# Helpers and block classes, each a self-contained snippet of the generated file.

_CHANNEL_SHUFFLE = '''
def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: reshape (g, c/g) -> transpose -> flatten."""
    n, c, h, w = x.shape
    if groups <= 1:
        return x
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)
'''

_CONV_BN = '''
def conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
            relu: bool = True) -> nn.Sequential:
    """k x k convolution without bias -> BatchNorm (-> ReLU)."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)
'''

_CONV = '''
class Conv(nn.Sequential):
    """Plain convolution (+ BN) (+ ReLU): stems and SqueezeNet's conv1."""

    def __init__(self, cin: int, out: int, kernel: int = 3, stride: int = 1,
                 padding: int | None = None, groups: int = 1, bn: bool = True,
                 relu: bool = True, bias: bool = False):
        pad = kernel // 2 if padding is None else padding
        layers: list[nn.Module] = [nn.Conv2d(cin, out, kernel, stride, pad, groups=groups, bias=bias)]
        if bn:
            layers.append(nn.BatchNorm2d(out))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)
        self.out_channels = out
'''

_POOL = '''
class Pool(nn.Module):
    """Max or average pooling."""

    def __init__(self, cin: int, kernel: int = 3, stride: int = 2, padding: int = 0,
                 ceil_mode: bool = False, mode: str = "max"):
        super().__init__()
        cls = nn.MaxPool2d if mode == "max" else nn.AvgPool2d
        self.pool = cls(kernel, stride, padding, ceil_mode=ceil_mode)
        self.out_channels = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)
'''

_FIRE = '''
class Fire(nn.Module):
    """SqueezeNet Fire module: squeeze 1x1 -> (expand 1x1 | expand 3x3), ReLU after each."""

    def __init__(self, cin: int, squeeze: int, e1x1: int, e3x3: int, bypass: bool = False):
        super().__init__()
        self.bypass = bypass
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, e1x1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, e3x3, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.out_channels = e1x1 + e3x3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.relu(self.squeeze(x))
        out = torch.cat([self.relu(self.expand1x1(s)), self.relu(self.expand3x3(s))], 1)
        return out + x if self.bypass else out
'''

_DWS = '''
class DepthwiseSeparable(nn.Module):
    """k x k depthwise conv then 1x1 pointwise conv (MobileNet; Xception's SeparableConv)."""

    def __init__(self, cin: int, out: int, stride: int = 1, kernel: int = 3,
                 dw_act: bool = True, relu: bool = True, pre_relu: bool = False):
        super().__init__()
        self.pre_relu = nn.ReLU() if pre_relu else nn.Identity()
        dw: list[nn.Module] = [nn.Conv2d(cin, cin, kernel, stride, kernel // 2, groups=cin, bias=False)]
        if dw_act:
            dw += [nn.BatchNorm2d(cin), nn.ReLU(inplace=True)]
        self.depthwise = nn.Sequential(*dw)
        self.pointwise = conv_bn(cin, out, 1, relu=relu)
        self.out_channels = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(self.pre_relu(x)))
'''

_SHUFFLE = '''
class ShuffleUnit(nn.Module):
    """ShuffleNet v1 unit: 1x1 gconv -> shuffle -> 3x3 depthwise -> 1x1 gconv, plus shortcut.

    Stride 1 adds the input; stride 2 concatenates a 3x3/2 average-pooled input.
    """

    def __init__(self, cin: int, out: int, stride: int = 1, groups: int = 3,
                 shuffle: bool = True, first_group: bool = True, bottleneck: int | None = None):
        super().__init__()
        self.stride = stride
        self.groups = groups if shuffle else 1
        mid = out // 4 if bottleneck is None else bottleneck
        branch_out = out - cin if stride == 2 else out
        self.gconv1 = conv_bn(cin, mid, 1, groups=groups if first_group else 1)
        self.dwconv = conv_bn(mid, mid, 3, stride, groups=mid, relu=False)
        self.gconv2 = conv_bn(mid, branch_out, 1, groups=groups, relu=False)
        self.shortcut = nn.AvgPool2d(3, 2, 1) if stride == 2 else nn.Identity()
        self.relu = nn.ReLU(inplace=True)
        self.out_channels = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = channel_shuffle(self.gconv1(x), self.groups)
        y = self.gconv2(self.dwconv(y))
        if self.stride == 2:
            return self.relu(torch.cat([self.shortcut(x), y], 1))
        return self.relu(x + y)
'''

_XCEPTION = '''
class XceptionModule(nn.Module):
    """Xception module: (ReLU -> SeparableConv -> BN) x n, optional 3x3/2 max-pool, residual."""

    def __init__(self, cin: int, channels: list[int], stride: int = 1, start_relu: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        c = cin
        for i, co in enumerate(channels):
            layers.append(DepthwiseSeparable(c, co, dw_act=False, relu=False,
                                             pre_relu=start_relu or i > 0))
            c = co
        if stride == 2:
            layers.append(nn.MaxPool2d(3, 2, 1))
        self.body = nn.Sequential(*layers)
        out = channels[-1]
        self.shortcut = (conv_bn(cin, out, 1, stride, relu=False)
                         if stride != 1 or cin != out else nn.Identity())
        self.out_channels = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)
'''

# block type -> (class name, template, helpers/classes it needs, in emission order)
TEMPLATES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "conv": ("Conv", _CONV, ()),
    "pool": ("Pool", _POOL, ()),
    "fire": ("Fire", _FIRE, ()),
    "dws": ("DepthwiseSeparable", _DWS, ("conv_bn",)),
    "shuffle": ("ShuffleUnit", _SHUFFLE, ("channel_shuffle", "conv_bn")),
    "xception": ("XceptionModule", _XCEPTION, ("conv_bn", "dws")),
}
_HELPERS = {"channel_shuffle": _CHANNEL_SHUFFLE, "conv_bn": _CONV_BN}

_NETWORK = '''
class Head(nn.Module):
    """Classifier: "linear" = global average pool -> dropout -> FC;
    "conv" (SqueezeNet) = dropout -> 1x1 conv -> ReLU -> global average pool."""

    def __init__(self, cin: int, num_classes: int, kind: str = "linear", dropout: float = 0.0,
                 bias: bool = True):
        super().__init__()
        self.kind = kind
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        if kind == "conv":
            self.classifier: nn.Module = nn.Conv2d(cin, num_classes, 1, bias=bias)
        else:
            self.classifier = nn.Linear(cin, num_classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "conv":
            return torch.relu(self.classifier(self.dropout(x))).mean((2, 3))
        return self.classifier(self.dropout(x.mean((2, 3))))


def make_block(spec: dict, cin: int) -> nn.Module:
    """One block of ARCH (a dict with its "type" and arguments) taking ``cin`` channels."""
    args = dict(spec)
    return BLOCKS[args.pop("type")](cin, **args)


class Network(nn.Module):
    """stem -> stages -> head, built from ARCH (or another dict of the same form)."""

    def __init__(self, arch: dict | None = None):
        super().__init__()
        arch = ARCH if arch is None else arch
        c = arch["in_channels"]
        stem = []
        for spec in arch["stem"]:
            stem.append(make_block(spec, c))
            c = stem[-1].out_channels
        self.stem = nn.Sequential(*stem)
        stages = {}
        for stage in arch["stages"]:
            blocks = []
            for spec in stage["blocks"]:
                blocks.append(make_block(spec, c))
                c = blocks[-1].out_channels
            stages[stage["name"]] = nn.Sequential(*blocks)
        self.stages = nn.ModuleDict(stages)
        self.head = Head(c, arch["num_classes"], **arch["head"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W), normalised with MEAN/STD -> logits (N, NUM_CLASSES)."""
        x = self.stem(x)
        for stage in self.stages.values():
            x = stage(x)
        return self.head(x)


def load_model(weights: str | os.PathLike | None = None) -> nn.Module:
    """The network in eval mode with its trained weights.

    ``weights``: a .safetensors file; default ``weights.safetensors`` beside this file.
    Loading needs the ``safetensors`` package (imported only here).
    """
    from safetensors.torch import load_file

    if weights is None:
        weights = os.path.join(os.path.dirname(os.path.abspath(__file__)), WEIGHTS_FILE)
    model = Network()
    model.load_state_dict(load_file(os.fspath(weights)), strict=True)
    return model.eval()
'''

WEIGHTS_FILE = "weights.safetensors"


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
    unknown = used - set(TEMPLATES)
    if unknown:
        raise ValueError(f"no model.py template for block type(s) {sorted(unknown)}")
    return [t for t in TEMPLATES if t in used]


def _snippets(types: Sequence[str]) -> list[str]:
    """Helpers first, then classes; each dependency before what needs it, each once."""
    order: list[str] = []

    def add(name: str) -> None:
        if name in order:
            return
        deps = TEMPLATES[name][2] if name in TEMPLATES else ()
        for dep in deps:
            add(dep)
        order.append(name)

    for t in types:
        add(t)
    helpers = [_HELPERS[n] for n in order if n in _HELPERS]
    classes = [TEMPLATES[n][1] for n in order if n in TEMPLATES]
    return [s.strip("\n") for s in helpers + classes]


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
           "    logits = model(torch.randn(INPUT_SHAPE))  # (N, NUM_CLASSES)", "",
           "Inputs are float32 images of INPUT_SHAPE (any batch size), each channel normalised",
           "as (x - MEAN) / STD on the raw pixel scale of the training data set."]
    doc += [*([""] if notes else []), *notes, '"""']
    classes = {t: TEMPLATES[t][0] for t in types}
    registry = "BLOCKS = {\n" + "".join(f"    {t!r}: {c},\n" for t, c in classes.items()) + "}"
    constants = [
        f"INPUT_SHAPE = {shape!r}  # (batch, channels, height, width)",
        f"NUM_CLASSES = {arch.num_classes}",
        f"MEAN = {_floats(mean)}",
        f"STD = {_floats(std)}",
        f"WEIGHTS_FILE = {WEIGHTS_FILE!r}",
    ]
    preamble = "\n".join(doc) + "\n\nfrom __future__ import annotations\n\nimport os\n\nimport torch\n" \
        "from torch import nn\n\n" + "\n".join(constants)
    parts = [
        preamble,
        "# The architecture, block by block (arguments as in nasl's ArchConfig).\n" + format_arch(
            arch.to_dict()),
        *_snippets(types),
        registry,
        textwrap.dedent(_NETWORK).strip("\n"),
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
