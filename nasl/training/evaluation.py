"""Evaluation of a network on tensors in memory, and BatchNorm recalibration.

In: a model (on any device) and images / labels (on any device; moved to the model's device
batch by batch when elsewhere, at no cost when already there). Out: eval-mode accuracy, the
per-image result (one copy to the host per call), or recomputed BN running statistics. Used
by :func:`nasl.training.train.train_model` after every epoch and by the confirmation.
"""

from __future__ import annotations

import torch
from torch import nn


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without any)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def is_channels_last(model: nn.Module) -> bool:
    """Whether the model's 4-D weights are stored channels-last."""
    for p in model.parameters():
        if p.dim() != 4:
            continue
        cl, plain = p.is_contiguous(memory_format=torch.channels_last), p.is_contiguous()
        if cl != plain:  # both hold for 1-channel or 1x1 weights: look further
            return cl
    return False


def prepare(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """``x`` on ``device`` (no copy when it is there), channels-last if asked."""
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512,
             *, channels_last: bool | None = None) -> float:
    """Eval-mode accuracy (0..1) of ``model`` on images ``x`` and labels ``y``, batched.

    ``channels_last=None`` follows the memory format of the model's weights. The model's
    train/eval mode is restored afterwards.
    """
    return float(correct(model, x, y, batch_size, channels_last=channels_last).float().mean())


def correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512,
            *, channels_last: bool | None = None) -> torch.Tensor:
    """Per image, whether the eval-mode ``model`` classifies it right (bool, on the CPU)."""
    if len(y) == 0:
        raise ValueError("evaluate: no samples")
    device = model_device(model)
    cl = is_channels_last(model) if channels_last is None else channels_last
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode():
            for start in range(0, len(y), batch_size):
                logits = model(prepare(x[start:start + batch_size], device, cl))
                out.append(logits.argmax(dim=1) == y[start:start + batch_size].to(device))
    finally:
        model.train(was_training)
    return torch.cat(out).cpu()  # one copy to the host per evaluation


def bn_modules(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers that track running statistics."""
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: torch.Tensor, batch_size: int,
                   channels_last: bool) -> None:
    """Recompute BN running mean/var as plain averages over the batches of ``x``."""
    bns = bn_modules(model)
    if not bns or len(x) == 0:
        return
    device = model_device(model)
    momenta = [m.momentum for m in bns]
    was_training = model.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    try:
        for start in range(0, len(x), batch_size):
            part = x[start:start + batch_size]
            if len(part) > 1:
                model(prepare(part, device, channels_last))
    finally:
        for m, mom in zip(bns, momenta, strict=True):
            m.momentum = mom
        model.train(was_training)
