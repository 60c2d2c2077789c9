"""Data augmentation on the training device, batch by batch (no per-image Python loop).

In: a normalised batch N x C x H x W and the augmentations to apply; out: a new batch of the
same shape and memory format. Used by :func:`nasl.training.train.train_model` when the recipe asks.
"""

from __future__ import annotations

import torch


def epoch_draws(steps: int, batch: int, side: int, kinds: tuple[str, ...], gen: torch.Generator,
                device: torch.device) -> dict[str, torch.Tensor]:
    """An epoch's random draws for :func:`augment_batch`, batch after batch in the order it
    would draw them from ``gen`` (so the augmentation is the same), moved to ``device`` in one
    copy per epoch: ``{"oy", "ox", "flip"}`` of shape (steps, batch) each, as asked."""
    p = max(1, round(side / 8))
    out: dict[str, list[torch.Tensor]] = {}
    for _ in range(steps):
        if "crop" in kinds:
            out.setdefault("oy", []).append(torch.randint(0, 2 * p + 1, (batch,), generator=gen))
            out.setdefault("ox", []).append(torch.randint(0, 2 * p + 1, (batch,), generator=gen))
        if "flip" in kinds:
            out.setdefault("flip", []).append(torch.rand(batch, generator=gen) < 0.5)
    return {k: torch.stack(v).to(device) for k, v in out.items()}


def augment_batch(x: torch.Tensor, kinds: tuple[str, ...], gen: torch.Generator,
                  drawn: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """A randomly cropped and/or flipped copy of the batch ``x`` (N x C x H x W, on any device).

    ``crop``: each image is shifted by up to ``p = max(1, round(side / 8))`` pixels in each
    direction, zero-padded (zero is the data's mean after normalisation), as the standard
    CIFAR recipe pads 4 pixels at 32. ``flip``: each image is mirrored left-right with
    probability 1/2. The draws come from ``gen`` (a CPU generator: the same seed gives the same
    augmentation on every device), or from ``drawn`` (this batch's row of :func:`epoch_draws`,
    already on the device: no copy, no host sync per batch); the memory format of ``x`` is kept.
    """
    n, _, h, w = x.shape
    dev = x.device
    if "crop" in kinds:
        p = max(1, round(min(h, w) / 8))
        padded = torch.nn.functional.pad(x, (p, p, p, p)).permute(0, 2, 3, 1)  # N H W C view
        if drawn is None:
            oy = torch.randint(0, 2 * p + 1, (n,), generator=gen).to(dev)
            ox = torch.randint(0, 2 * p + 1, (n,), generator=gen).to(dev)
        else:
            oy, ox = drawn["oy"], drawn["ox"]
        rows = oy[:, None] + torch.arange(h, device=dev)
        cols = ox[:, None] + torch.arange(w, device=dev)
        picked = padded[torch.arange(n, device=dev)[:, None, None], rows[:, :, None], cols[:, None, :]]
        x = picked.permute(0, 3, 1, 2)  # channels-last strides, as the training expects
    if "flip" in kinds:
        flip = (torch.rand(n, generator=gen) < 0.5).to(dev) if drawn is None else drawn["flip"]
        mask = flip[:, None, None, None]
        x = torch.where(mask, x.flip(3), x)
    return x
