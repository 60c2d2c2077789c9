"""Block library: one ``nn.Module`` per block spec, in one registry.

In: a spec from :mod:`nasl.arch` and the input channel count. Out: a module whose
parameter count equals ``spec.cost(...).params`` exactly (tests check this).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nasl import arch


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: reshape (g, c/g) → transpose → flatten. A permutation."""
    n, c, h, w = x.shape
    if groups <= 1:
        return x
    if c % groups:
        raise ValueError(f"channel_shuffle: groups={groups} must divide channels {c}")
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
             relu: bool = True, padding: int | None = None) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2 if padding is None else padding,
                  groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Conv(nn.Sequential):
    """Conv (+BN) (+ReLU): stems and SqueezeNet's conv1."""

    def __init__(self, spec: arch.ConvBN, cin: int):
        layers: list[nn.Module] = [nn.Conv2d(cin, spec.out, spec.kernel, spec.stride, spec.pad,
                                             groups=spec.groups, bias=spec.bias)]
        if spec.bn:
            layers.append(nn.BatchNorm2d(spec.out))
        if spec.relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Pool(nn.Module):
    """Max or average pooling."""

    def __init__(self, spec: arch.Pool, cin: int):
        super().__init__()
        if spec.mode == "max":
            self.pool: nn.Module = nn.MaxPool2d(spec.kernel, spec.stride, spec.padding,
                                                ceil_mode=spec.ceil_mode)
        else:
            self.pool = nn.AvgPool2d(spec.kernel, spec.stride, spec.padding,
                                     ceil_mode=spec.ceil_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


class Fire(nn.Module):
    """SqueezeNet Fire module (names as in the paper and torchvision)."""

    def __init__(self, spec: arch.Fire, cin: int):
        super().__init__()
        self.bypass = spec.bypass
        self.squeeze = nn.Conv2d(cin, spec.squeeze, 1)
        self.expand1x1 = nn.Conv2d(spec.squeeze, spec.e1x1, 1)
        self.expand3x3 = nn.Conv2d(spec.squeeze, spec.e3x3, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.relu(self.squeeze(x))
        out = torch.cat([self.relu(self.expand1x1(s)), self.relu(self.expand3x3(s))], 1)
        return out + x if self.bypass else out


class DepthwiseSeparable(nn.Module):
    """MobileNet's depthwise-separable conv, or Xception's SeparableConv (see ``arch.DWS``)."""

    def __init__(self, spec: arch.DWS, cin: int):
        super().__init__()
        self.pre_relu = nn.ReLU() if spec.pre_relu else nn.Identity()
        dw: list[nn.Module] = [nn.Conv2d(cin, cin, spec.kernel, spec.stride, spec.kernel // 2,
                                         groups=cin, bias=False)]
        if spec.dw_act:
            dw += [nn.BatchNorm2d(cin), nn.ReLU(inplace=True)]
        self.depthwise = nn.Sequential(*dw)
        self.pointwise = _conv_bn(cin, spec.out, 1, relu=spec.relu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(self.pre_relu(x)))


class ShuffleUnit(nn.Module):
    """ShuffleNet v1 unit (Fig. 2 b/c of the paper; official megvii layout)."""

    def __init__(self, spec: arch.ShuffleUnit, cin: int):
        super().__init__()
        self.stride = spec.stride
        self.groups = spec.groups if spec.shuffle else 1
        mid, out = spec.mid, spec.branch_out(cin)
        g1 = spec.groups if spec.first_group else 1
        self.gconv1 = _conv_bn(cin, mid, 1, groups=g1)
        self.dwconv = _conv_bn(mid, mid, 3, spec.stride, groups=mid, relu=False)
        self.gconv2 = _conv_bn(mid, out, 1, groups=spec.groups, relu=False)
        self.shortcut = nn.AvgPool2d(3, 2, 1) if spec.stride == 2 else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

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
    """Xception module: (ReLU → SeparableConv → BN) × n, optional max-pool, residual."""

    def __init__(self, spec: arch.XceptionModule, cin: int):
        super().__init__()
        layers: list[nn.Module] = []
        c = cin
        for i, co in enumerate(spec.channels):
            layers.append(DepthwiseSeparable(
                arch.DWS(co, dw_act=False, relu=False, pre_relu=spec.start_relu or i > 0), c))
            c = co
        if spec.stride == 2:
            layers.append(nn.MaxPool2d(3, 2, 1))
        self.body = nn.Sequential(*layers)
        self.shortcut: nn.Module = (
            _conv_bn(cin, spec.out, 1, spec.stride, relu=False)
            if spec.has_shortcut_conv(cin) else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


BLOCKS: dict[str, Callable[..., nn.Module]] = {}


def _register(name: str, cls: Callable[..., nn.Module]) -> None:
    if name in BLOCKS:
        raise ValueError(f"block {name!r} registered twice")
    if name not in arch.SPECS:
        raise ValueError(f"block {name!r} has no spec in nasl.arch.SPECS")
    BLOCKS[name] = cls


for _name, _cls in (("conv", Conv), ("pool", Pool), ("fire", Fire), ("dws", DepthwiseSeparable),
                    ("shuffle", ShuffleUnit), ("xception", XceptionModule)):
    _register(_name, _cls)


def make_block(spec: arch.BlockSpec, cin: int) -> nn.Module:
    """Build the module for ``spec`` taking ``cin`` channels (``ValueError`` if impossible)."""
    spec.check(cin)
    return BLOCKS[spec.type](spec, cin)
