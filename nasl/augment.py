"""Data augmentation on the training device, batch by batch (no per-image Python loop).

In: a normalised batch N x C x H x W and the augmentations to apply; out: a new batch of the
same shape and memory format. Used by :func:`nasl.train.train_model` when the recipe asks.
"""

from __future__ import annotations

import torch


def augment_batch(x: torch.Tensor, kinds: tuple[str, ...], gen: torch.Generator) -> torch.Tensor:
    """A randomly cropped and/or flipped copy of the batch ``x`` (N x C x H x W, on any device).

    ``crop``: each image is shifted by up to ``p = max(1, round(side / 8))`` pixels in each
    direction, zero-padded (zero is the data's mean after normalisation), as the standard
    CIFAR recipe pads 4 pixels at 32. ``flip``: each image is mirrored left-right with
    probability 1/2. The draws come from ``gen`` (a CPU generator: the same seed gives the same
    augmentation on every device); the memory format of ``x`` is kept.
    """
    n, _, h, w = x.shape
    dev = x.device
    if "crop" in kinds:
        p = max(1, round(min(h, w) / 8))
        padded = torch.nn.functional.pad(x, (p, p, p, p)).permute(0, 2, 3, 1)  # N H W C view
        oy = torch.randint(0, 2 * p + 1, (n,), generator=gen).to(dev)
        ox = torch.randint(0, 2 * p + 1, (n,), generator=gen).to(dev)
        rows = oy[:, None] + torch.arange(h, device=dev)
        cols = ox[:, None] + torch.arange(w, device=dev)
        picked = padded[torch.arange(n, device=dev)[:, None, None], rows[:, :, None], cols[:, None, :]]
        x = picked.permute(0, 3, 1, 2)  # channels-last strides, as the training expects
    if "flip" in kinds:
        mask = (torch.rand(n, generator=gen) < 0.5).to(dev)[:, None, None, None]
        x = torch.where(mask, x.flip(3), x)
    return x
