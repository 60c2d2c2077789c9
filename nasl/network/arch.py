"""ArchConfig: an explicit, frozen, torch-free description of a network.

In: block specs (stem layers, stages of blocks, a head). Out: JSON-able dicts, a stable
short id, and an analytic cost walk (MACs, params, shapes) that takes microseconds.

MACs follow the papers' convention: multiply-accumulates of convolution and linear
layers only; BN, activations, pooling, additions and channel shuffle count zero.
Params count exactly what :func:`nasl.network.builder.build_model` creates (BN has 2 per channel).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nasl.network.specs import (
    DWS,
    SPECS,
    BlockSpec,
    ConvBN,
    Cost,
    Fire,
    Pool,
    ShuffleUnit,
    XceptionModule,
    conv_cost,
    conv_out,
    make_divisible,
    register,
    spec_from_dict,
)

__all__ = [
    "ArchConfig", "BlockSpec", "ConvBN", "Cost", "DWS", "Fire", "Head", "Pool", "SPECS", "ShuffleUnit",
    "Stage", "XceptionModule", "conv_cost", "conv_out", "freeze_choices", "make_divisible", "register",
    "spec_from_dict"
]


@dataclass(frozen=True)
class Stage:
    """A named run of blocks (a paper's "stage": same resolution after its first block)."""

    name: str
    blocks: tuple[BlockSpec, ...]


@dataclass(frozen=True)
class Head:
    """Classifier. ``linear``: GAP → dropout → FC. ``conv`` (SqueezeNet): dropout → 1×1 conv → ReLU → GAP."""

    kind: str = "linear"
    dropout: float = 0.0
    bias: bool = True

    def cost(self, cin: int, size: int, num_classes: int) -> Cost:
        if self.kind == "linear":
            m, p = conv_cost(cin, num_classes, 1, 1, 1, self.bias)
        elif self.kind == "conv":
            m, p = conv_cost(cin, num_classes, 1, 1, size * size, self.bias)
        else:
            raise ValueError(f"head kind must be 'linear' or 'conv', got {self.kind!r}")
        return Cost(m, p, num_classes, 1)


@dataclass(frozen=True)
class ArchConfig:
    """A whole network, explicitly: stem layers, stages of blocks, head, input and classes.

    ``family`` and ``choices`` record where it came from (design choices, for display and
    export); they do not change the network.
    """

    family: str
    stem: tuple[BlockSpec, ...]
    stages: tuple[Stage, ...]
    head: Head = field(default_factory=Head)
    input_size: int = 224
    num_classes: int = 1000
    in_channels: int = 3
    choices: tuple[tuple[str, Any], ...] = ()

    # -- walking -----------------------------------------------------------------------
    def layers(self) -> list[tuple[str, BlockSpec]]:
        """All blocks in order with a dotted name (``stem.0``, ``stage2.3``)."""
        out = [(f"stem.{i}", b) for i, b in enumerate(self.stem)]
        for st in self.stages:
            out += [(f"{st.name}.{i}", b) for i, b in enumerate(st.blocks)]
        return out

    def walk(self) -> list[tuple[str, int, int, Cost]]:
        """(name, in_channels, in_size, cost) per block, then the head; validates shapes.

        Raises ``ValueError`` naming the block when a spec cannot take its input.
        """
        c, s = self.in_channels, self.input_size
        rows = []
        for name, spec in self.layers():
            try:
                spec.check(c)
                cost = spec.cost(c, s)
            except ValueError as e:
                raise ValueError(f"{name} ({spec.type}): {e}") from None
            rows.append((name, c, s, cost))
            c, s = cost.channels, cost.size
        if s < 1:
            raise ValueError(f"feature map vanished before the head (input {self.input_size}px)")
        rows.append(("head", c, s, self.head.cost(c, s, self.num_classes)))
        return rows

    def macs(self) -> int:
        """Multiply-accumulates of all convs and linears for one image (papers' convention)."""
        return sum(r[3].macs for r in self.walk())

    def params(self) -> int:
        """Trainable parameters of the built module (conv/linear weights, biases, BN γ/β)."""
        return sum(r[3].params for r in self.walk())

    def validate(self) -> None:
        """Raise ``ValueError`` if the network cannot be built at its input size."""
        self.walk()

    # -- serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "input_size": self.input_size,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "choices": {k: list(v) if isinstance(v, tuple) else v for k, v in self.choices},
            "stem": [b.to_dict() for b in self.stem],
            "stages": [{"name": s.name, "blocks": [b.to_dict() for b in s.blocks]}
                       for s in self.stages],
            "head": dataclasses.asdict(self.head),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArchConfig:
        return cls(
            family=d["family"],
            input_size=int(d["input_size"]),
            num_classes=int(d["num_classes"]),
            in_channels=int(d.get("in_channels", 3)),
            choices=freeze_choices(d.get("choices", {})),
            stem=tuple(spec_from_dict(b) for b in d["stem"]),
            stages=tuple(Stage(s["name"], tuple(spec_from_dict(b) for b in s["blocks"]))
                         for s in d["stages"]),
            head=Head(**d.get("head", {})),
        )

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> ArchConfig:
        return cls.from_dict(json.loads(text))

    @property
    def id(self) -> str:
        """Stable 10-hex-digit id of the network (ignores ``choices``, which are labels)."""
        d = self.to_dict()
        d.pop("choices")
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    def with_io(self, input_size: int | None = None, num_classes: int | None = None,
                in_channels: int | None = None) -> ArchConfig:
        """The same network at another input size, class count or input channel count."""
        return dataclasses.replace(
            self,
            input_size=self.input_size if input_size is None else input_size,
            num_classes=self.num_classes if num_classes is None else num_classes,
            in_channels=self.in_channels if in_channels is None else in_channels,
        )


def freeze_choices(choices: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Design choices as a hashable, ordered tuple of (name, value) with lists as tuples."""
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in choices.items())


def nchw(input_shape: Sequence[int]) -> tuple[int, int, int, int]:
    """(N, C, H, W) of an input given as (C, H, W) (batch 1) or (N, C, H, W); ValueError for
    another length or a size below 1."""
    shape = tuple(int(s) for s in input_shape)
    shape = (1, *shape) if len(shape) == 3 else shape
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"input_shape must be (C, H, W) or (N, C, H, W), got {input_shape!r}")
    return shape  # type: ignore[return-value]  # length checked above
