"""Proxy data sets as tensors in memory.

``load_dataset(spec, resolution=..., seed=...)`` reads a data set once per process (raw
arrays are cached per spec), takes seeded stratified splits and subsets, resizes the images
once to ``resolution`` x ``resolution`` and normalises every channel with the statistics of
the training split. Nothing is ever downloaded.

Grey images are fed as **one channel**, as they are; a network reads its input channels
from ``DataSplits.in_channels``. Non-square images are resized to a square (``imagefolder``
instead resizes the short side and centre-crops).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from nasl.common import vocab
from nasl.common.errors import NaslError
from nasl.data.sources import FASHION_MNIST_DIR, load_raw
from nasl.data.sources import load_cifar as _load_cifar  # noqa: F401 (tests, bench)
from nasl.data.sources import load_fashion as _load_fashion  # noqa: F401

_load_raw = load_raw  # (the name the tests use)

DEFAULT_DATASET = "fmnist-mini"

DATASETS: dict[str, str] = {
    "fmnist-mini": "the default: a stratified Fashion-MNIST subset shipped inside nasl (MIT "
    "licence, no download): 5,000 training images (500 per class) and 1,000 test images "
    "(100 per class), 28x28 grey, 10 classes",
    "digits": "scikit-learn's 8x8 grey digits, 1797 images, 10 classes (ships with "
    "scikit-learn; fixed stratified 80/20 train/test split)",
    "fashion-mnist[:DIR]": "Fashion-MNIST, the four IDX .gz files (default DIR "
    f"{FASHION_MNIST_DIR}, Debian package dataset-fashion-mnist), 28x28 grey, 10 classes",
    "cifar10:DIR": "CIFAR-10 python batches (data_batch_1..5, test_batch), 32x32 RGB",
    "cifar100:DIR": "CIFAR-100 python pickles (train, test), 32x32 RGB, 100 fine classes",
    "imagefolder:DIR": "DIR/train/<class>/* and DIR/val/<class>/* (or DIR/test); "
    "needs torchvision",
    "npz:PATH": "arrays x_train, y_train, x_test, y_test; x as NxHxW, NxHxWxC or NxCxHxW",
    "fake[:N]": "deterministic random images for tests: N (default 320) train, 3x32x32, "
    "10 classes",
}

_KINDS_WITH_PATH = vocab.DATASET_KINDS_WITH_PATH
_KINDS = vocab.DATASET_KINDS


@dataclass(frozen=True, eq=False)
class DataSplits:
    """Normalised float32 NCHW images and int64 labels, ready for training.

    ``split="search"``: val is carved from the training data. ``split="final"``: train is the
    full training split and val (and test) is the test split.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    num_classes: int
    in_channels: int
    name: str
    test_x: torch.Tensor | None = None
    test_y: torch.Tensor | None = None
    resolution: int = 0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()


def _valid_forms() -> str:
    return ", ".join(DATASETS)


def parse_data_spec(spec: str) -> tuple[str, str | None]:
    """Check a data spec's form without loading it -> (kind, path or argument or None).

    ``fashion-mnist`` gets its default folder; ``fake:N`` returns N as the argument.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise NaslError(f"data set spec {spec!r} is empty; expected one of: {_valid_forms()}")
    kind, sep, arg = spec.strip().partition(":")
    kind = kind.lower()
    if kind not in _KINDS:
        raise NaslError(f"unknown data set {spec!r}; expected one of: {_valid_forms()}")
    if kind in ("digits", "fmnist-mini"):
        if sep:
            raise NaslError(f"data set {spec!r}: '{kind}' takes no argument")
        return kind, None
    if kind == "fashion-mnist":
        return kind, arg or FASHION_MNIST_DIR
    if kind == "fake":
        if not sep:
            return kind, None
        if not arg.isdigit() or int(arg) < 20:
            raise NaslError(f"data set {spec!r}: expected fake:N with an integer N >= 20")
        return kind, arg
    if not arg:
        form = "PATH" if kind == "npz" else "DIR"
        raise NaslError(f"data set {spec!r} needs a location: expected {kind}:{form}")
    return kind, arg


# ---------------------------------------------------------------- splits and tensors


def _stratified_pick(y: np.ndarray, n: int, seed: int, what: str) -> np.ndarray:
    """Indices of a seeded stratified subset of ``n`` of the labels ``y`` (sorted)."""
    if n >= len(y):
        return np.arange(len(y))
    try:
        picked, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y,
                                     random_state=seed)
    except ValueError as e:
        raise NaslError(f"{what}={n}: cannot take a stratified subset of {len(y)} images "
                        f"({e})") from e
    return np.sort(picked)


def _to_tensor(x: np.ndarray, idx: np.ndarray, resolution: int, chunk: int = 2048
               ) -> torch.Tensor:
    """Selected images as float32 N x C x res x res, resized (bilinear) in batches."""
    n, c, h, w = len(idx), *x.shape[1:]
    out = torch.empty((n, c, resolution, resolution), dtype=torch.float32)
    down = h > resolution or w > resolution
    for start in range(0, n, chunk):
        part = torch.from_numpy(x[idx[start:start + chunk]]).float()
        if (h, w) != (resolution, resolution):
            part = F.interpolate(part, size=(resolution, resolution), mode="bilinear",
                                 align_corners=False, antialias=down)
        out[start:start + len(part)] = part
    return out


def load_dataset(spec: str, *, resolution: int, seed: int, val_fraction: float = 0.2,
                 subset: int | None = None, val_subset: int | None = None,
                 split: str = "search", holdout_fraction: float = 0.0) -> DataSplits:
    """Load ``spec`` as normalised tensors resized to ``resolution`` -> DataSplits.

    ``split="search"``: a stratified ``val_fraction`` of the training split (seeded) is the
    validation set; the test split is never read. ``split="final"``: train on the whole
    training split, validate (and test) on the test split. ``subset``/``val_subset`` take
    seeded stratified subsets of train/val. ``holdout_fraction`` > 0 first sets aside a
    stratified share of the training split (seeded) that the search never sees; with
    ``split="confirm"`` the model trains on the search's train and validation images together
    and is scored on that holdout (the confirmation stage's claims: images no selection step
    used).
    """
    kind, arg = parse_data_spec(spec)
    if split not in ("search", "final", "confirm"):
        raise NaslError(f"split={split!r}; expected 'search', 'confirm' or 'final'")
    if not 0.0 <= holdout_fraction < 1.0 or (split == "confirm" and holdout_fraction <= 0):
        raise NaslError(f"holdout_fraction={holdout_fraction!r}; expected a number in [0, 1) "
                        "(above 0 for split='confirm')")
    if not isinstance(resolution, int) or resolution < 1:
        raise NaslError(f"resolution={resolution!r}; expected a positive integer")
    if not 0.0 < val_fraction < 1.0:
        raise NaslError(f"val_fraction={val_fraction!r}; expected a number between 0 and 1")
    for what, value in (("subset", subset), ("val_subset", val_subset)):
        if value is not None and value < 1:
            raise NaslError(f"{what}={value!r}; expected a positive integer or None")
    raw = load_raw(kind, arg, resolution if kind == "imagefolder" else 0)

    pool, held = np.arange(len(raw.y_train)), np.arange(0)
    if split != "final" and holdout_fraction > 0:
        try:
            pool, held = train_test_split(pool, test_size=holdout_fraction, stratify=raw.y_train,
                                          random_state=seed + 1)
        except ValueError as e:
            raise NaslError(f"{spec}: cannot carve a stratified holdout of holdout_fraction="
                            f"{holdout_fraction} ({e})") from e
        pool, held = np.sort(pool), np.sort(held)
    if split in ("search", "confirm"):
        try:
            tr, va = train_test_split(pool, test_size=val_fraction,
                                      stratify=raw.y_train[pool], random_state=seed)
        except ValueError as e:
            raise NaslError(f"{spec}: cannot carve a stratified validation set of "
                            f"val_fraction={val_fraction} ({e})") from e
        tr, va = np.sort(tr), np.sort(va)
        x_val_src, y_val_src = raw.x_train, raw.y_train
    else:
        tr, va = np.arange(len(raw.y_train)), np.arange(len(raw.y_test))
        x_val_src, y_val_src = raw.x_test, raw.y_test
    if subset is not None:
        tr = tr[_stratified_pick(raw.y_train[tr], subset, seed, "subset")]
    if val_subset is not None:
        va = va[_stratified_pick(y_val_src[va], val_subset, seed, "val_subset")]
    if split == "confirm":  # train on everything the search saw, score on the holdout
        tr, va = np.sort(np.concatenate([tr, va])), held

    from nasl.common.guards import check_data_memory

    check_data_memory(len(tr) + len(va), int(raw.x_train.shape[1]), resolution, spec)
    train_x = _to_tensor(raw.x_train, tr, resolution)
    val_x = _to_tensor(x_val_src, va, resolution)
    mean = train_x.mean(dim=(0, 2, 3), dtype=torch.float64)
    std = train_x.to(torch.float64).std(dim=(0, 2, 3))
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    shape = (1, -1, 1, 1)
    for t in (train_x, val_x):
        t.sub_(mean.float().view(shape)).div_(std.float().view(shape))
    train_y = torch.from_numpy(raw.y_train[tr].copy())
    val_y = torch.from_numpy(y_val_src[va].copy())
    final = split == "final"
    return DataSplits(
        train_x=train_x, train_y=train_y, val_x=val_x, val_y=val_y,
        num_classes=raw.num_classes, in_channels=int(train_x.shape[1]), name=raw.name,
        test_x=val_x if final else None, test_y=val_y if final else None,
        resolution=resolution, mean=tuple(mean.tolist()), std=tuple(std.tolist()),
    )
