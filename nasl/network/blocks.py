"""Block library: one ``nn.Module`` per block type, the classifier head and the network.

In: a block's arguments (the fields of its spec in :mod:`nasl.network.specs`, as plain values) and
its input channel count; a network as the dict of ``ArchConfig.to_dict()``. Out: modules
whose parameter counts equal the specs' analytic ones exactly (tests check this); each
module's ``out_channels`` is what it hands on.

Everything above the registry uses only torch and the definitions before it: ``nasl
export`` copies the ones a network needs into its standalone ``model.py`` verbatim
(:mod:`nasl.export.codegen`), so this file is the one copy of the blocks. The registry,
:func:`make_block` (typed specs, checked) and the link to :mod:`nasl.network.specs` stay here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nasl.network import arch


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: reshape (g, c/g) → transpose → flatten. A permutation."""
    n, c, h, w = x.shape
    if groups <= 1:
        return x
    if c % groups:
        raise ValueError(f"channel_shuffle: groups={groups} must divide channels {c}")
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
            relu: bool = True) -> nn.Sequential:
    """k×k convolution without bias ("same" padding) → BatchNorm (→ ReLU)."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Conv(nn.Sequential):
    """Conv (+BN) (+ReLU): stems and SqueezeNet's conv1 (``padding`` None: kernel // 2)."""

    def __init__(self, cin: int, out: int, kernel: int = 3, stride: int = 1,
                 padding: int | None = None, groups: int = 1, bn: bool = True,
                 relu: bool = True, bias: bool = False):
        pad = kernel // 2 if padding is None else padding
        layers: list[nn.Module] = [nn.Conv2d(cin, out, kernel, stride, pad, groups=groups,
                                             bias=bias)]
        if bn:
            layers.append(nn.BatchNorm2d(out))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)
        self.out_channels = out


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


class Fire(nn.Module):
    """SqueezeNet Fire module: squeeze 1×1 → (expand 1×1 ‖ expand 3×3), ReLU after each
    (names as in the paper and torchvision); ``bypass`` adds the input."""

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


class DepthwiseSeparable(nn.Module):
    """k×k depthwise conv then 1×1 pointwise conv: MobileNet's (``dw_act``: BN+ReLU between),
    or Xception's SeparableConv (``pre_relu``: a ReLU first)."""

    def __init__(self, cin: int, out: int, stride: int = 1, kernel: int = 3,
                 dw_act: bool = True, relu: bool = True, pre_relu: bool = False):
        super().__init__()
        self.pre_relu = nn.ReLU() if pre_relu else nn.Identity()
        dw: list[nn.Module] = [nn.Conv2d(cin, cin, kernel, stride, kernel // 2,
                                         groups=cin, bias=False)]
        if dw_act:
            dw += [nn.BatchNorm2d(cin), nn.ReLU(inplace=True)]
        self.depthwise = nn.Sequential(*dw)
        self.pointwise = conv_bn(cin, out, 1, relu=relu)
        self.out_channels = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(self.pre_relu(x)))


class ShuffleUnit(nn.Module):
    """ShuffleNet v1 unit (Fig. 2 b/c of the paper; official megvii layout): 1×1 gconv →
    shuffle → 3×3 depthwise → 1×1 gconv; stride 1 adds the input, stride 2 concatenates a
    3×3/2 average-pooled input. ``bottleneck`` None: out // 4."""

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

    def zero_init_last_bn(self) -> None:
        """Start the residual branch at zero (stable training at lr 0.1, see proxy.md)."""
        if self.stride == 1:
            nn.init.zeros_(self.gconv2[1].weight)


class XceptionModule(nn.Module):
    """Xception module: (ReLU → SeparableConv → BN) × n, optional 3×3/2 max-pool, residual
    (1×1 conv with the stride + BN when the shape changes)."""

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
        self.shortcut: nn.Module = (conv_bn(cin, out, 1, stride, relu=False)
                                    if stride != 1 or cin != out else nn.Identity())
        self.out_channels = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class Head(nn.Module):
    """Classifier: "linear" = global average pool → dropout → FC; "conv" (SqueezeNet) =
    dropout → 1×1 conv → ReLU → global average pool."""

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


def build_block(spec: dict[str, Any], cin: int) -> nn.Module:
    """One block from its dict (``{"type": ..., <arguments>}``) taking ``cin`` channels."""
    args = dict(spec)
    return BLOCKS[args.pop("type")](cin, **args)


class Network(nn.Module):
    """stem → stages → head, from a network's dict (the form of ``ArchConfig.to_dict()``);
    ``stages`` is a ModuleDict by stage name. Images (N, C, H, W) → logits (N, classes)."""

    def __init__(self, layout: dict[str, Any]):
        super().__init__()
        c = layout["in_channels"]
        stem = []
        for spec in layout["stem"]:
            stem.append(build_block(spec, c))
            c = stem[-1].out_channels
        self.stem = nn.Sequential(*stem)
        stages = {}
        for stage in layout["stages"]:
            blocks = []
            for spec in stage["blocks"]:
                blocks.append(build_block(spec, c))
                c = blocks[-1].out_channels
            stages[stage["name"]] = nn.Sequential(*blocks)
        self.stages = nn.ModuleDict(stages)
        self.head = Head(c, layout["num_classes"], **layout["head"])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages.values():
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


# ------------------------------------------------------------------ registry (not exported)
BLOCKS: dict[str, Callable[..., nn.Module]] = {}


def _register(name: str, cls: Callable[..., nn.Module]) -> None:
    if name in BLOCKS:
        raise ValueError(f"block {name!r} registered twice")
    if name not in arch.SPECS:
        raise ValueError(f"block {name!r} has no spec in nasl.network.arch.SPECS")
    BLOCKS[name] = cls


for _name, _cls in (("conv", Conv), ("pool", Pool), ("fire", Fire), ("dws", DepthwiseSeparable),
                    ("shuffle", ShuffleUnit), ("xception", XceptionModule)):
    _register(_name, _cls)


def make_block(spec: arch.BlockSpec, cin: int) -> nn.Module:
    """Build the module for ``spec`` taking ``cin`` channels (``ValueError`` if impossible)."""
    spec.check(cin)
    return build_block(spec.to_dict(), cin)
