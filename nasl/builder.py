"""ArchConfig → ``torch.nn.Module`` (deterministic for a seed)."""

from __future__ import annotations

import torch
from torch import nn

from nasl import arch
from nasl.blocks import make_block


class Head(nn.Module):
    """Classifier head (see :class:`nasl.arch.Head`)."""

    def __init__(self, spec: arch.Head, cin: int, num_classes: int):
        super().__init__()
        self.kind = spec.kind
        self.dropout = nn.Dropout(spec.dropout) if spec.dropout > 0 else nn.Identity()
        if spec.kind == "conv":
            self.classifier: nn.Module = nn.Conv2d(cin, num_classes, 1, bias=spec.bias)
        else:
            self.classifier = nn.Linear(cin, num_classes, bias=spec.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "conv":
            x = torch.relu(self.classifier(self.dropout(x)))
            return x.mean((2, 3))
        return self.classifier(self.dropout(x.mean((2, 3))))


class Network(nn.Module):
    """A network built from an ArchConfig: ``stem`` → ``stages`` → ``head``."""

    def __init__(self, cfg: arch.ArchConfig):
        super().__init__()
        cfg.validate()
        self.arch = cfg
        c = cfg.in_channels
        stem = []
        for spec in cfg.stem:
            stem.append(make_block(spec, c))
            c = spec.cost(c, cfg.input_size).channels  # channel count is size-independent
        self.stem = nn.Sequential(*stem)
        stages = {}
        for st in cfg.stages:
            mods = []
            for spec in st.blocks:
                mods.append(make_block(spec, c))
                c = spec.cost(c, cfg.input_size).channels
            stages[st.name] = nn.Sequential(*mods)
        self.stages = nn.ModuleDict(stages)
        self.head = Head(cfg.head, c, cfg.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages.values():
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


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
