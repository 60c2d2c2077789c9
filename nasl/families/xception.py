"""Xception (Chollet 2017): depthwise-separable convolutions all the way, with residuals.

Entry flow: conv 32 3×3/2 and conv 64 3×3 (no padding, as in Keras), then modules of
128, 256, 728 (two separable convs + 3×3/2 max-pool, 1×1/2 conv shortcut). Middle flow:
``middle_blocks`` × three separable convs of 728 with identity shortcut (8 in the paper).
Exit flow: module 728→1024 with pool, separable convs 1536 and 2048, GAP, FC.
Channels are ``make_divisible(c * width_mult, 8)``.
"""

from __future__ import annotations

from nasl.families._checks import positive, positive_int, scaled_size
from nasl.network.arch import DWS, ArchConfig, ConvBN, Head, Stage, XceptionModule, make_divisible

NAME = "xception"


def generate(middle_blocks: int = 8, width_mult: float = 1.0, resolution_mult: float = 1.0,
             *, input_size: int = 299, num_classes: int = 1000) -> ArchConfig:
    """Xception (defaults: the paper's network at 299)."""
    positive_int("middle_blocks", middle_blocks, 0)
    a = positive("width_mult", width_mult)

    def w(c: int) -> int:
        return make_divisible(c * a, 8)

    stem = (ConvBN(w(32), 3, 2, padding=0), ConvBN(w(64), 3, 1, padding=0))
    entry = (XceptionModule((w(128), w(128)), 2, start_relu=False),
             XceptionModule((w(256), w(256)), 2),
             XceptionModule((w(728), w(728)), 2))
    middle = tuple(XceptionModule((w(728),) * 3) for _ in range(middle_blocks))
    exit_ = (XceptionModule((w(728), w(1024)), 2),
             DWS(w(1536), dw_act=False), DWS(w(2048), dw_act=False))
    stages = [Stage("entry", entry)]
    if middle:
        stages.append(Stage("middle", middle))
    stages.append(Stage("exit", exit_))
    return ArchConfig(NAME, stem, tuple(stages), Head("linear"),
                      scaled_size(input_size, resolution_mult), num_classes)
