"""Hybrid: each stage picks its block (fire / dws / shuffle / xception) — a space no paper explored.

A MobileNet-like skeleton: 3×3/2 stem, then stages of widths ``base_widths`` × α whose
first block downsamples when its index is in ``downsample_at``. Stride-2 fire stages use a
3×3/2 max-pool before the block (SqueezeNet has no strided fire). Per-stage block options:
``groups``/``shuffle`` for shuffle stages (width rounded to a multiple of 4·g), squeeze
ratio and pct3x3 for fire stages.
"""

from __future__ import annotations

from typing import Any

from nasl.families._checks import fraction, int_list, positive, positive_int, scaled_size
from nasl.network.arch import (
    DWS,
    ArchConfig,
    BlockSpec,
    ConvBN,
    Fire,
    Head,
    Pool,
    ShuffleUnit,
    Stage,
    XceptionModule,
    make_divisible,
)

NAME = "hybrid"
BLOCK_TYPES = ("dws", "shuffle", "fire", "xception")


def _as_tuple(name: str, value: Any, n: int) -> tuple[Any, ...]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} must have {n} entries (one per stage), got {len(value)}")
        return tuple(value)
    return (value,) * n


def _stage(kind: str, cin: int, out: int, n: int, stride: int, groups: int, shuffle: bool,
           sr: float, pct: float) -> list[BlockSpec]:
    blocks: list[BlockSpec] = []
    if kind == "dws":
        return [DWS(out, stride if j == 0 else 1) for j in range(n)]
    if kind == "xception":
        return [XceptionModule((out, out), stride if j == 0 else 1) for j in range(n)]
    if kind == "shuffle":
        out = make_divisible(out, 4 * groups)
        if stride == 2 and cin % groups:
            # the concat shortcut keeps cin channels: round them to a multiple of g first
            c = -(-cin // groups) * groups
            blocks.append(ConvBN(c, 1))
            cin = c
        if stride == 2 and out <= cin:
            out = make_divisible(cin + 4 * groups, 4 * groups)
        for j in range(n):
            first = j == 0
            s = stride if first else 1
            if first and s == 1 and cin != out:
                blocks.append(ConvBN(out, 1))  # 1×1 transition to the stage width
            blocks.append(ShuffleUnit(out, s, groups, shuffle,
                                      first_group=not first or cin % groups == 0))
        return blocks
    if kind == "fire":
        if stride == 2:
            blocks.append(Pool(3, 2, 1))
        c = cin
        for _ in range(n):
            e3 = min(max(1, round(pct * out)), out - 1)
            blocks.append(Fire(max(1, round(sr * out)), out - e3, e3, bypass=c == out))
            c = out
        return blocks
    raise ValueError(f"stage block must be one of {list(BLOCK_TYPES)}, got {kind!r}")


def generate(stage_blocks: Any = ("dws", "shuffle", "shuffle", "dws"),
             stage_repeats: Any = (2, 2, 4, 2), base_widths: Any = (64, 128, 256, 512),
             downsample_at: Any = (0, 1, 2, 3), width_mult: float = 1.0,
             resolution_mult: float = 1.0, groups: Any = 4, shuffle: Any = True,
             squeeze_ratio: Any = 0.25, pct3x3: Any = 0.5,
             *, input_size: int = 224, num_classes: int = 1000) -> ArchConfig:
    """A network whose stages mix the four papers' blocks."""
    kinds = tuple(str(k) for k in (stage_blocks if isinstance(stage_blocks, (list, tuple))
                                   else str(stage_blocks).split(",")))
    n = len(kinds)
    repeats = int_list("stage_repeats", stage_repeats, n)
    widths = int_list("base_widths", base_widths, n)
    down = int_list("downsample_at", downsample_at, minimum=0)
    if any(d >= n for d in down):
        raise ValueError(f"downsample_at must list stage indices 0..{n - 1}, got {list(down)}")
    a = positive("width_mult", width_mult)
    gs = _as_tuple("groups", groups, n)
    shs = _as_tuple("shuffle", shuffle, n)
    srs = _as_tuple("squeeze_ratio", squeeze_ratio, n)
    pcts = _as_tuple("pct3x3", pct3x3, n)
    stem_c = make_divisible(32 * a, 8)
    stages, cin = [], stem_c
    for i, kind in enumerate(kinds):
        positive_int(f"groups[{i}]", gs[i])
        fraction(f"squeeze_ratio[{i}]", srs[i])
        fraction(f"pct3x3[{i}]", pcts[i], inclusive_high=False)
        out = make_divisible(widths[i] * a, 8)
        blocks = _stage(kind, cin, out, repeats[i], 2 if i in down else 1, gs[i], bool(shs[i]),
                        srs[i], pcts[i])
        stages.append(Stage(f"stage{i + 1}_{kind}", tuple(blocks)))
        cin = blocks[-1].cost(cin, 64).channels if kind != "fire" else out
    return ArchConfig(NAME, (ConvBN(stem_c, 3, 2),), tuple(stages), Head("linear"),
                      scaled_size(input_size, resolution_mult), num_classes)
