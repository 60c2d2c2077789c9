"""SqueezeNet (Iandola et al. 2016): Fire modules, squeeze ratio, pct3x3, late downsampling.

Metaparameters of §5.1, for fire module i = 0..n-1 (fire2, fire3, ...):
``e_i = base_e + incr_e * floor(i / freq)``, ``e3x3 = round(pct3x3 * e_i)`` (kept in
[1, e_i - 1]), ``e1x1 = e_i - e3x3``, ``s = max(1, round(squeeze_ratio * e_i))``.
Max-pools 3×3/2 (ceil mode) follow conv1 and the fire modules named in ``pool_after``.
``bypass`` adds the paper's simple bypass to every fire module whose input and output
channel counts match (fire3, 5, 7, 9 with ``freq=2``).
"""

from __future__ import annotations

from typing import Any

from nasl.families._checks import fraction, int_list, positive_int, scaled_size
from nasl.network.arch import ArchConfig, ConvBN, Fire, Head, Pool, Stage

NAME = "squeezenet"

# version -> (conv1 channels, kernel, default pool_after)
STEMS = {"1.0": (96, 7, (4, 8)), "1.1": (64, 3, (3, 5))}


def generate(version: str = "1.0", base_e: int = 128, incr_e: int = 128, freq: int = 2,
             squeeze_ratio: float = 0.125, pct3x3: float = 0.5, pool_after: Any = None,
             bypass: bool = False, num_fire: int = 8, resolution_mult: float = 1.0,
             *, input_size: int = 224, num_classes: int = 1000) -> ArchConfig:
    """SqueezeNet with the paper's metaparameters (defaults: SqueezeNet v1.0)."""
    version = str(version)
    if version not in STEMS:
        raise ValueError(f"version must be one of {list(STEMS)}, got {version!r}")
    positive_int("base_e", base_e, 2)
    positive_int("incr_e", incr_e, 0)
    positive_int("freq", freq)
    positive_int("num_fire", num_fire)
    fraction("squeeze_ratio", squeeze_ratio)
    fraction("pct3x3", pct3x3, inclusive_high=False)
    c1, k1, default_pools = STEMS[version]
    pools = default_pools if pool_after is None else int_list("pool_after", pool_after, minimum=0)
    last = num_fire + 1
    for p in pools:
        if not 2 <= p <= last:
            raise ValueError(f"pool_after entries must name fire modules 2..{last}, got {p}")
    if len(set(pools)) != len(pools):
        raise ValueError(f"pool_after has repeated entries: {list(pools)}")

    stem = (ConvBN(c1, k1, 2, padding=0, bn=False, relu=True, bias=True),
            Pool(3, 2, ceil_mode=True))
    stages, blocks, cin = [], [], c1
    for i in range(num_fire):
        e = base_e + incr_e * (i // freq)
        e3 = min(max(1, round(pct3x3 * e)), e - 1)
        fire = Fire(max(1, round(squeeze_ratio * e)), e - e3, e3, bypass=bool(bypass) and cin == e)
        blocks.append(fire)
        cin = e
        if i + 2 in pools:
            blocks.append(Pool(3, 2, ceil_mode=True))
            stages.append(Stage(f"stage{len(stages) + 1}", tuple(blocks)))
            blocks = []
    if blocks:
        stages.append(Stage(f"stage{len(stages) + 1}", tuple(blocks)))
    return ArchConfig(NAME, stem, tuple(stages), Head("conv", dropout=0.5, bias=True),
                      scaled_size(input_size, resolution_mult), num_classes)
