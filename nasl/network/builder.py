"""ArchConfig → ``torch.nn.Module`` (deterministic for a seed)."""

from __future__ import annotations

import torch
from torch import nn

from nasl.network import arch, blocks


class Network(blocks.Network):
    """A network built from an ArchConfig (validated first): ``stem`` → ``stages`` → ``head``
    as :class:`nasl.network.blocks.Network`; ``arch`` is the config."""

    def __init__(self, cfg: arch.ArchConfig):
        cfg.validate()
        super().__init__(cfg.to_dict())
        self.arch = cfg


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal convs, BN γ=1 β=0, small-normal linears; residual branches start at zero."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in model.modules():
        zero = getattr(m, "zero_init_last_bn", None)
        if callable(zero):
            zero()


def build_model(cfg: arch.ArchConfig, seed: int | None = 0) -> Network:
    """Build and initialise the network; the same ``seed`` gives identical weights.

    ``seed=None`` uses the global RNG. Raises ``ValueError`` if the config is impossible.
    """
    if seed is None:
        model = Network(cfg)
        init_weights(model)
        return model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Network(cfg)
        init_weights(model)
    return model
