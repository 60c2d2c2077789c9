"""ShuffleNet v1 (Zhang et al. 2018): pointwise group convs with g groups, channel shuffle.

conv1 3×3/2 → max-pool 3×3/2 → stages 2-4 of ``stage_repeats`` units (the first of
each has stride 2) → global pool → FC (no bias, as in the official code).
Stage-2 width at 1× is Table 1's (144, 200, 240, 272, 384 for g = 1, 2, 3, 4, 8);
for other g it is the multiple of 4·g whose 1× network is closest to Table 1's g=3
complexity. Stages 3 and 4 double it. Rounding rule: stage widths are
``make_divisible(c * width_mult, 4 * g)`` (so the out/4 bottleneck splits into g groups)
and conv1 is ``24 * max(width_mult, 0.5)`` rounded down to a multiple of g (at least g):
12 at 0.5× and 0.25× for g=3, which gives the paper's 38 and 13 MFLOPs, and 8 at 0.5× g=8
so that every 0.5× network stays under 40 MFLOPs as Table 2 reports (the official code
uses 16 there: 40.5 MFLOPs).
"""

from __future__ import annotations

import functools
from typing import Any

from nasl.families._checks import int_list, positive, positive_int, scaled_size
from nasl.network.arch import ArchConfig, ConvBN, Head, Pool, ShuffleUnit, Stage, make_divisible

NAME = "shufflenet"

TABLE1 = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}
STEM = 24


def _build(groups: int, shuffle: bool, stem: int, widths: tuple[int, ...],
           repeats: tuple[int, ...], size: int, num_classes: int) -> ArchConfig:
    stages = []
    for i, (c, n) in enumerate(zip(widths, repeats, strict=True)):
        units = []
        for j in range(n):
            units.append(ShuffleUnit(c, 2 if j == 0 else 1, groups, shuffle,
                                     first_group=not (i == 0 and j == 0)))
        stages.append(Stage(f"stage{i + 2}", tuple(units)))
    return ArchConfig(NAME, (ConvBN(stem, 3, 2), Pool(3, 2, 1)), tuple(stages),
                      Head("linear", bias=False), size, num_classes)


def conv1_width(width_mult: float, groups: int) -> int:
    """conv1 channels: ``24 * max(width_mult, 0.5)`` rounded down to a multiple of g (≥ g)."""
    return max(groups, int(STEM * max(width_mult, 0.5)) // groups * groups)


@functools.lru_cache(maxsize=64)
def base_width(groups: int) -> int:
    """Stage-2 output channels at 1× (Table 1, or complexity-matched for other g)."""
    if groups in TABLE1:
        return TABLE1[groups]
    target = _build(3, True, STEM, (240, 480, 960), (4, 8, 4), 224, 1000).macs()
    best = None
    for k in range(1, 4096 // (4 * groups) + 1):
        c = 4 * groups * k
        if c <= STEM:
            continue
        macs = _build(groups, True, conv1_width(1.0, groups), (c, 2 * c, 4 * c),
                      (4, 8, 4), 224, 1000).macs()
        if best is None or abs(macs - target) < best[0]:
            best = (abs(macs - target), c)
        if macs > target:
            break
    assert best is not None
    return best[1]


def generate(groups: int = 3, shuffle: bool = True, width_mult: float = 1.0,
             stage_repeats: Any = (4, 8, 4), resolution_mult: float = 1.0,
             *, input_size: int = 224, num_classes: int = 1000) -> ArchConfig:
    """ShuffleNet v1 (defaults: ShuffleNet 1× g=3)."""
    positive_int("groups", groups)
    if groups > 64:
        raise ValueError(f"groups must be between 1 and 64, got {groups}")
    s = positive("width_mult", width_mult)
    repeats = int_list("stage_repeats", stage_repeats, 3)
    c = base_width(groups)
    widths = tuple(make_divisible(c * m * s, 4 * groups) for m in (1, 2, 4))
    stem = conv1_width(s, groups)
    if stem >= widths[0]:
        raise ValueError(f"width_mult={width_mult} with groups={groups} leaves stage 2 "
                         f"({widths[0]} channels) no wider than conv1 ({stem})")
    return _build(groups, bool(shuffle), stem, widths, repeats,
                  scaled_size(input_size, resolution_mult), num_classes)
