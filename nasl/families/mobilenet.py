"""MobileNet v1 (Howard et al. 2017): depthwise-separable convs, width α, resolution ρ.

Table 1 as stages (channels, repeats): 64×1, 128×2, 256×2, 512×6, 1024×2 after a
3×3/2 stem of 32. The first block of each stage listed in ``downsample_at`` has stride 2
(default: stages 1-4, i.e. all but the first). ``stage_repeats[3] - 1`` is the depth of the
14×14 block (5 in the paper). Channels are ``make_divisible(c * width_mult, 8)``, which is
exact for the paper's α ∈ {1, 0.75, 0.5, 0.25}.
"""

from __future__ import annotations

from typing import Any

from nasl.families._checks import int_list, positive, scaled_size
from nasl.network.arch import DWS, ArchConfig, ConvBN, Head, Stage, make_divisible

NAME = "mobilenet"

STEM = 32
# c, n  (stride from downsample_at)
STAGES = ((64, 1), (128, 2), (256, 2), (512, 6), (1024, 2))


def generate(width_mult: float = 1.0, resolution_mult: float = 1.0,
             stage_repeats: Any = (1, 2, 2, 6, 2), downsample_at: Any = (1, 2, 3, 4),
             *, input_size: int = 224, num_classes: int = 1000) -> ArchConfig:
    """MobileNet v1 (defaults: 1.0 MobileNet-224)."""
    a = positive("width_mult", width_mult)
    repeats = int_list("stage_repeats", stage_repeats, len(STAGES))
    down = int_list("downsample_at", downsample_at, minimum=0)
    if any(d >= len(STAGES) for d in down) or len(set(down)) != len(down):
        raise ValueError(f"downsample_at must list distinct stage indices 0..{len(STAGES) - 1}, "
                         f"got {list(down)}")
    stem = (ConvBN(make_divisible(STEM * a, 8), 3, 2),)
    stages = []
    for i, ((c, _), n) in enumerate(zip(STAGES, repeats, strict=True)):
        out = make_divisible(c * a, 8)
        blocks = tuple(DWS(out, 2 if j == 0 and i in down else 1) for j in range(n))
        stages.append(Stage(f"stage{i + 1}", blocks))
    return ArchConfig(NAME, stem, tuple(stages), Head("linear"),
                      scaled_size(input_size, resolution_mult), num_classes)
