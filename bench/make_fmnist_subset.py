"""Regenerate nasl/datasets/fashion_mnist_subset.npz, the default proxy data set.

In: the four Fashion-MNIST IDX .gz files (Debian package ``dataset-fashion-mnist``, default
folder /usr/share/datasets/fashion-mnist; Zalando Research, MIT licence). Out: a compressed
.npz with ``x_train`` (N x 28 x 28 uint8), ``y_train`` (int64 0..9) drawn from the official
training split and ``x_test``/``y_test`` drawn from the official test split, plus the
sha256 of the file, printed.

Selection (deterministic, numpy only): for every class, a seeded permutation of that
class's indices (``numpy.random.default_rng(seed)``, classes 0..9 in order); then the
classes are interleaved round-robin, so any prefix of 10·k images holds exactly k per class.
The first ``--train`` of the training ordering and the first ``--test`` of the test ordering
are stored in that order. The same source files, sizes and seed give the same bytes.

    python bench/make_fmnist_subset.py                    # 5,000 train + 1,000 test
    python bench/make_fmnist_subset.py --train 10000 --out /tmp/fm10k.npz
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nasl.data import FASHION_MNIST_DIR, _load_fashion  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "nasl" / "datasets" / "fashion_mnist_subset.npz"


def balanced_order(y: np.ndarray, seed: int) -> np.ndarray:
    """Indices of ``y`` in round-robin class order (class 0, 1, ..., 9, 0, 1, ...).

    Each class's indices are permuted by one seeded generator; a class that runs out is
    skipped, so every prefix is as balanced as the class counts allow.
    """
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(y == c)) for c in range(int(y.max()) + 1)]
    longest = max(len(p) for p in per_class)
    order = [p[i] for i in range(longest) for p in per_class if i < len(p)]
    return np.asarray(order, dtype=np.int64)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> bytes:
    """Write ``arrays`` as a compressed .npz with fixed zip timestamps -> the file's bytes.

    ``np.savez_compressed`` stamps the current time into the zip entries; writing the
    entries ourselves with a fixed date keeps the file byte-identical between runs.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(2020, 5, 23, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            body = io.BytesIO()
            np.lib.format.write_array(body, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(info, body.getvalue(), compresslevel=9)
    data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def make_subset(source: str, n_train: int, n_test: int, seed: int) -> dict[str, np.ndarray]:
    """The four arrays of the subset (see the module docstring)."""
    raw = _load_fashion(source)
    tr = balanced_order(raw.y_train, seed)[:n_train]
    te = balanced_order(raw.y_test, seed + 1)[:n_test]
    return {
        "x_train": raw.x_train[tr, 0].astype(np.uint8),
        "y_train": raw.y_train[tr].astype(np.int64),
        "x_test": raw.x_test[te, 0].astype(np.uint8),
        "y_test": raw.y_test[te].astype(np.int64),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default=FASHION_MNIST_DIR, help="folder of the IDX .gz files")
    ap.add_argument("--train", type=int, default=5000, help="images from the training split")
    ap.add_argument("--test", type=int, default=1000, help="images from the test split")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    if args.train % 10 or args.test % 10 or args.train < 10 or args.test < 10:
        ap.error("--train and --test must be positive multiples of 10 (equal classes)")
    arrays = make_subset(args.source, args.train, args.test, args.seed)
    data = write_npz(args.out, arrays)
    counts = np.bincount(arrays["y_train"], minlength=10).tolist()
    print(f"{args.out}: {len(data) / 1e6:.2f} MB, train {arrays['x_train'].shape} per class "
          f"{counts}, test {arrays['x_test'].shape}")
    print(f"sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
