"""Data sets shipped inside the package (read with no download).

``fashion_mnist_subset.npz``: a stratified, seeded subset of Fashion-MNIST (Zalando
Research, MIT licence), 28x28 grey uint8 images, 10 classes, equal images per class:
``x_train``/``y_train`` from the official training split, ``x_test``/``y_test`` from the
official test split. Provenance, sha256 and how to regenerate it: docs/data.md and
bench/make_fmnist_subset.py.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from nasl.common.errors import NaslError

FMNIST_SUBSET_FILE = "fashion_mnist_subset.npz"
_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_fmnist_subset() -> dict[str, np.ndarray]:
    """The shipped Fashion-MNIST subset -> {x_train: N x 28 x 28 uint8, y_train: int64, ...}.

    NaslError when the package data is missing or damaged (a broken install).
    """
    ref = resources.files(__name__).joinpath(FMNIST_SUBSET_FILE)
    try:
        with resources.as_file(ref) as path, np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in _KEYS}
    except (OSError, KeyError, ValueError) as e:
        raise NaslError(f"fmnist-mini: cannot read the package data {FMNIST_SUBSET_FILE} "
                        f"({e}); reinstall nasl (the file ships in nasl/datasets/)") from e
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.dtype != np.uint8 or x.ndim != 3 or y.shape != (len(x),):
            raise NaslError(f"fmnist-mini: {FMNIST_SUBSET_FILE} holds x_{part} {x.shape} "
                            f"{x.dtype}, y_{part} {y.shape}; expected N x 28 x 28 uint8 and N "
                            "labels (reinstall nasl)")
    return arrays
