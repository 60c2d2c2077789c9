"""Block specs: the torch-free description of one block (conv, pool, Fire, depthwise-separable,
ShuffleNet unit, Xception module) and its analytic cost walk.

In: a block's hyper-parameters and its input channels and side. Out: its MACs, params,
output channels and side (:class:`Cost`), in microseconds. See :mod:`nasl.network.arch` for the
convention (MACs of conv and linear layers only).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (never below 90% of it).

    The one rounding rule for channel counts that groups must divide (as in MobileNet v2,
    timm and torchvision): nearest multiple, at least ``min_value`` (default ``divisor``),
    and bumped up one step if rounding lost more than 10%.
    """
    if divisor < 1:
        raise ValueError(f"divisor must be >= 1, got {divisor}")
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return int(new)


def conv_out(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool = False) -> int:
    """Output side of a conv/pool layer (PyTorch's formula)."""
    num = size + 2 * padding - kernel
    if num < 0:
        raise ValueError(f"feature map {size}px is smaller than kernel {kernel}")
    out = (math.ceil(num / stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def conv_cost(cin: int, cout: int, k: int, groups: int, hw_out: int, bias: bool) -> tuple[int, int]:
    macs = (cin // groups) * k * k * cout * hw_out
    params = (cin // groups) * k * k * cout + (cout if bias else 0)
    return macs, params


@dataclass(frozen=True)
class Cost:
    """What a layer costs and where it leaves the tensor."""

    macs: int
    params: int
    channels: int
    size: int


class BlockSpec:
    """Base of all block specs: a frozen dataclass with a registry ``type`` name."""

    type: ClassVar[str] = ""

    def cost(self, cin: int, size: int) -> Cost:  # pragma: no cover - interface
        raise NotImplementedError

    def check(self, cin: int) -> None:
        """Raise ``ValueError`` when the spec cannot take ``cin`` input channels."""

    def to_dict(self) -> dict[str, Any]:
        d = {"type": self.type}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            d[f.name] = list(v) if isinstance(v, tuple) else v
        return d


SPECS: dict[str, type[BlockSpec]] = {}


def register(cls: type[BlockSpec]) -> type[BlockSpec]:
    """Add a block spec to :data:`SPECS` under its ``type`` (duplicates raise)."""
    if cls.type in SPECS:
        raise ValueError(f"block type {cls.type!r} registered twice")
    SPECS[cls.type] = cls
    return cls


def _positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


@register
@dataclass(frozen=True)
class ConvBN(BlockSpec):
    """Plain k×k convolution, optionally followed by BN and ReLU (stems, SqueezeNet conv1)."""

    type: ClassVar[str] = "conv"
    out: int
    kernel: int = 3
    stride: int = 1
    padding: int | None = None  # None: kernel // 2 ("same" for odd kernels)
    groups: int = 1
    bn: bool = True
    relu: bool = True
    bias: bool = False

    @property
    def pad(self) -> int:
        return self.kernel // 2 if self.padding is None else self.padding

    def check(self, cin: int) -> None:
        _positive("out channels", self.out)
        _positive("kernel", self.kernel)
        _positive("stride", self.stride)
        _positive("groups", self.groups)
        if cin % self.groups or self.out % self.groups:
            raise ValueError(f"groups={self.groups} must divide channels {cin} -> {self.out}")

    def cost(self, cin: int, size: int) -> Cost:
        s = conv_out(size, self.kernel, self.stride, self.pad)
        macs, params = conv_cost(cin, self.out, self.kernel, self.groups, s * s, self.bias)
        return Cost(macs, params + (2 * self.out if self.bn else 0), self.out, s)


@register
@dataclass(frozen=True)
class Pool(BlockSpec):
    """Max or average pooling: zero MACs, zero params."""

    type: ClassVar[str] = "pool"
    kernel: int = 3
    stride: int = 2
    padding: int = 0
    ceil_mode: bool = False
    mode: str = "max"

    def check(self, cin: int) -> None:
        if self.mode not in ("max", "avg"):
            raise ValueError(f"pool mode must be 'max' or 'avg', got {self.mode!r}")

    def cost(self, cin: int, size: int) -> Cost:
        return Cost(0, 0, cin, conv_out(size, self.kernel, self.stride, self.padding, self.ceil_mode))


@register
@dataclass(frozen=True)
class Fire(BlockSpec):
    """SqueezeNet Fire: squeeze 1×1 → (expand 1×1 ‖ expand 3×3), ReLU after each, no BN.

    ``bypass`` adds the input to the output (the paper's simple bypass); it needs
    input channels == e1x1 + e3x3.
    """

    type: ClassVar[str] = "fire"
    squeeze: int
    e1x1: int
    e3x3: int
    bypass: bool = False

    @property
    def out(self) -> int:
        return self.e1x1 + self.e3x3

    def check(self, cin: int) -> None:
        _positive("squeeze channels", self.squeeze)
        _positive("e1x1 channels", self.e1x1)
        _positive("e3x3 channels", self.e3x3)
        if self.bypass and cin != self.out:
            raise ValueError(f"simple bypass needs equal channels in and out, got {cin} -> {self.out}")

    def cost(self, cin: int, size: int) -> Cost:
        hw = size * size
        m1, p1 = conv_cost(cin, self.squeeze, 1, 1, hw, True)
        m2, p2 = conv_cost(self.squeeze, self.e1x1, 1, 1, hw, True)
        m3, p3 = conv_cost(self.squeeze, self.e3x3, 3, 1, hw, True)
        return Cost(m1 + m2 + m3, p1 + p2 + p3, self.out, size)


@register
@dataclass(frozen=True)
class DWS(BlockSpec):
    """Depthwise-separable conv: k×k depthwise then 1×1 pointwise, no biases.

    MobileNet (``dw_act=True``): BN+ReLU after both convs. Xception's SeparableConv
    (``dw_act=False``): nothing between the two convs; BN (and ReLU if ``relu``) after.
    ``pre_relu`` puts a ReLU before the depthwise conv (Xception's ordering).
    """

    type: ClassVar[str] = "dws"
    out: int
    stride: int = 1
    kernel: int = 3
    dw_act: bool = True
    relu: bool = True
    pre_relu: bool = False

    def check(self, cin: int) -> None:
        _positive("out channels", self.out)
        _positive("stride", self.stride)

    def cost(self, cin: int, size: int) -> Cost:
        s = conv_out(size, self.kernel, self.stride, self.kernel // 2)
        md, pd = conv_cost(cin, cin, self.kernel, cin, s * s, False)
        mp, pp = conv_cost(cin, self.out, 1, 1, s * s, False)
        bn = 2 * self.out + (2 * cin if self.dw_act else 0)
        return Cost(md + mp, pd + pp + bn, self.out, s)


@register
@dataclass(frozen=True)
class ShuffleUnit(BlockSpec):
    """ShuffleNet v1 unit: 1×1 gconv → BN ReLU → shuffle → 3×3 dw (stride) → BN → 1×1 gconv → BN.

    Stride 1: identity added, then ReLU (needs in == out). Stride 2: 3×3/2 average pool
    on the shortcut, concatenated, so the main branch makes ``out - in`` channels.
    ``first_group=False`` leaves the first 1×1 ungrouped (the first unit of stage 2).
    The bottleneck has ``out // 4`` channels, as in the official code.
    """

    type: ClassVar[str] = "shuffle"
    out: int
    stride: int = 1
    groups: int = 3
    shuffle: bool = True
    first_group: bool = True
    bottleneck: int | None = None  # None: out // 4

    @property
    def mid(self) -> int:
        return self.out // 4 if self.bottleneck is None else self.bottleneck

    def branch_out(self, cin: int) -> int:
        return self.out - cin if self.stride == 2 else self.out

    def check(self, cin: int) -> None:
        _positive("out channels", self.out)
        _positive("groups", self.groups)
        if self.stride not in (1, 2):
            raise ValueError(f"shuffle unit stride must be 1 or 2, got {self.stride}")
        if self.stride == 1 and cin != self.out:
            raise ValueError(f"stride-1 shuffle unit needs equal channels, got {cin} -> {self.out}")
        bo = self.branch_out(cin)
        if bo < 1:
            raise ValueError(f"stride-2 shuffle unit must widen: {cin} -> {self.out}")
        g1 = self.groups if self.first_group else 1
        for name, c, g in (("input", cin, g1), ("bottleneck", self.mid, self.groups),
                           ("branch output", bo, self.groups)):
            if c < 1 or c % g:
                raise ValueError(f"groups={g} must divide the {name} channels ({c})")

    def cost(self, cin: int, size: int) -> Cost:
        g1 = self.groups if self.first_group else 1
        s = conv_out(size, 3, self.stride, 1)
        bo = self.branch_out(cin)
        m1, p1 = conv_cost(cin, self.mid, 1, g1, size * size, False)
        m2, p2 = conv_cost(self.mid, self.mid, 3, self.mid, s * s, False)
        m3, p3 = conv_cost(self.mid, bo, 1, self.groups, s * s, False)
        return Cost(m1 + m2 + m3, p1 + p2 + p3 + 4 * self.mid + 2 * bo, self.out, s)


@register
@dataclass(frozen=True)
class XceptionModule(BlockSpec):
    """Xception module: separable convs (ReLU → sepconv → BN each), optional 3×3/2 max-pool,
    plus a residual (identity, or 1×1 conv with the stride + BN when the shape changes).

    ``start_relu=False`` drops the first ReLU (the first entry-flow module).
    """

    type: ClassVar[str] = "xception"
    channels: tuple[int, ...]
    stride: int = 1
    start_relu: bool = True

    @property
    def out(self) -> int:
        return self.channels[-1]

    def check(self, cin: int) -> None:
        if not self.channels:
            raise ValueError("an xception module needs at least one separable conv")
        for c in self.channels:
            _positive("separable conv channels", c)
        if self.stride not in (1, 2):
            raise ValueError(f"xception module stride must be 1 or 2, got {self.stride}")

    def has_shortcut_conv(self, cin: int) -> bool:
        return self.stride != 1 or cin != self.out

    def cost(self, cin: int, size: int) -> Cost:
        macs = params = 0
        c = cin
        for co in self.channels:
            md, pd = conv_cost(c, c, 3, c, size * size, False)
            mp, pp = conv_cost(c, co, 1, 1, size * size, False)
            macs, params, c = macs + md + mp, params + pd + pp + 2 * co, co
        s = conv_out(size, 3, self.stride, 1) if self.stride == 2 else size
        if self.has_shortcut_conv(cin):
            ms, ps = conv_cost(cin, self.out, 1, 1, s * s, False)
            macs, params = macs + ms, params + ps + 2 * self.out
        return Cost(macs, params, self.out, s)


def spec_from_dict(d: dict[str, Any]) -> BlockSpec:
    """Inverse of ``BlockSpec.to_dict`` (unknown ``type`` raises ``ValueError``)."""
    d = dict(d)
    kind = d.pop("type", None)
    if kind not in SPECS:
        raise ValueError(f"unknown block type {kind!r}; expected one of {sorted(SPECS)}")
    cls = SPECS[kind]
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    extra = set(d) - names
    if extra:
        raise ValueError(f"unknown fields for block {kind!r}: {sorted(extra)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


