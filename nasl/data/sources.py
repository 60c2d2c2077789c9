"""Raw proxy data: each data-set kind decoded to uint8/float arrays, checked, never downloaded.

In: a data-set kind and its argument (a folder, a file, a count). Out: :class:`Raw` arrays
(x as N x C x H x W, y as int64 class indices) that :mod:`nasl.data` splits, resizes and
normalises. CIFAR batches are read without executing code (:mod:`nasl.data.cifar_io`).
"""

from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from nasl.common.errors import NaslError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True, eq=False)
class Raw:
    """Decoded arrays: x as N x C x H x W (uint8 or float32), y as int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    name: str





def load_digits() -> Raw:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)[:, None]  # 0..16, N x 1 x 8 x 8
    y = bunch.target.astype(np.int64)
    tr, te = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
    tr, te = np.sort(tr), np.sort(te)
    return Raw(x[tr], y[tr], x[te], y[te], 10, "digits")


def load_fmnist_mini() -> Raw:
    from nasl.datasets import load_fmnist_subset

    a = load_fmnist_subset()
    return Raw(a["x_train"][:, None], a["y_train"], a["x_test"][:, None], a["y_test"], 10,
                "fmnist-mini")


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes (optionally gzipped) with ``ndim`` dimensions."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise NaslError(f"{path}: cannot read IDX file ({e})") from e
    expected = 0x0800 | ndim
    magic = int.from_bytes(data[:4], "big") if len(data) >= 4 else -1
    if magic != expected or len(data) < 4 + 4 * ndim:
        raise NaslError(
            f"{path}: not an IDX file of unsigned bytes with {ndim} dimension(s) "
            f"(magic {magic:#010x}, expected {expected:#010x})"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, ">i4", count=ndim, offset=4))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise NaslError(
            f"{path}: header says {dims} = {int(np.prod(dims))} bytes but the file holds "
            f"{body.size}"
        )
    return body.reshape(dims)


def load_fashion(folder: str) -> Raw:
    root = Path(folder).expanduser()
    arrays: dict[str, np.ndarray] = {}
    for key, stem in FASHION_FILES.items():
        path = next((p for p in (root / f"{stem}.gz", root / stem) if p.is_file()), None)
        if path is None:
            raise NaslError(
                f"fashion-mnist: {root / stem}.gz not found; install the data set with "
                "`apt-get install dataset-fashion-mnist` or pass the folder that holds the "
                "four IDX files as fashion-mnist:DIR"
            )
        arrays[key] = read_idx(path, 3 if key.endswith("x") else 1)
    for part in ("train", "test"):
        nx, ny = len(arrays[f"{part}_x"]), len(arrays[f"{part}_y"])
        if nx != ny:
            raise NaslError(f"fashion-mnist in {root}: {part} has {nx} images but {ny} labels")
    y_tr, y_te = arrays["train_y"].astype(np.int64), arrays["test_y"].astype(np.int64)
    if max(y_tr.max(initial=0), y_te.max(initial=0)) > 9:
        raise NaslError(f"fashion-mnist in {root}: labels must be 0..9")
    return Raw(arrays["train_x"][:, None], y_tr, arrays["test_x"][:, None], y_te, 10,
                "fashion-mnist")


def unpickle(path: Path) -> dict:
    """A CIFAR batch's dict, read with an allow-list unpickler (a crafted file runs no code)."""
    from nasl.data.cifar_io import read_batch

    return read_batch(path)


def load_cifar(kind: str, folder: str) -> Raw:
    root = Path(folder).expanduser()
    sub = root / ("cifar-10-batches-py" if kind == "cifar10" else "cifar-100-python")
    if sub.is_dir():
        root = sub
    if not root.is_dir():
        raise NaslError(f"{kind}: folder {root} not found; expected {kind}:DIR with the "
                        "extracted python batches")
    if kind == "cifar10":
        train_files, test_files, key, classes = (
            [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels", 10)
    else:
        train_files, test_files, key, classes = ["train"], ["test"], b"fine_labels", 100

    def read(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for name in names:
            d = unpickle(root / name)
            if b"data" not in d or key not in d:
                raise NaslError(f"{root / name}: missing 'data' or {key.decode()!r}")
            data, labels = d[b"data"], d[key]
            if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
                    or data.shape[1] != 3072:
                raise NaslError(f"{root / name}: 'data' is {getattr(data, 'dtype', type(data))} "
                                f"of shape {getattr(data, 'shape', '?')}; expected uint8 N x 3072")
            try:
                y = np.asarray(labels, np.int64)
            except (TypeError, ValueError, OverflowError):
                y = np.zeros(0)
            if y.shape != (len(data),):
                raise NaslError(f"{root / name}: {key.decode()!r} must be {len(data)} integer "
                                "labels, one per image")
            xs.append(data.reshape(-1, 3, 32, 32))
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys)

    (xa, ya), (xb, yb) = read(train_files), read(test_files)
    return Raw(xa, ya, xb, yb, classes, kind)


def load_imagefolder(folder: str, resolution: int) -> Raw:
    try:
        from torchvision import transforms
        from torchvision.datasets import ImageFolder
    except ImportError as e:
        raise NaslError("imagefolder:DIR needs torchvision, which is not importable: "
                        "pip install torchvision") from e
    root = Path(folder).expanduser()
    held = next((root / n for n in ("val", "test") if (root / n).is_dir()), None)
    if not (root / "train").is_dir() or held is None:
        raise NaslError(f"imagefolder: expected {root}/train/<class>/* and "
                        f"{root}/val/<class>/* (or test/)")
    tf = transforms.Compose([transforms.Resize(resolution), transforms.CenterCrop(resolution),
                             transforms.PILToTensor()])
    sets = [ImageFolder(str(root / "train"), transform=tf), ImageFolder(str(held), transform=tf)]
    if sets[0].class_to_idx != sets[1].class_to_idx:
        raise NaslError(f"imagefolder: {root}/train and {held} have different class folders")
    out = []
    for ds in sets:
        if len(ds) == 0:
            raise NaslError(f"imagefolder: no images under {ds.root}")
        out.append(np.stack([ds[i][0].numpy() for i in range(len(ds))]))
        out.append(np.asarray(ds.targets, np.int64))
    return Raw(*out, len(sets[0].classes), f"imagefolder:{root.name}")


def npz_images(x: np.ndarray, path: Path, key: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        if x.shape[1] > 4 and x.shape[-1] <= 4:
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        elif x.shape[1] > 4:
            raise NaslError(f"{path}: {key} has shape {x.shape}; cannot tell the channel "
                            "axis (expected 1-4 channels first or last)")
    else:
        raise NaslError(f"{path}: {key} has shape {x.shape}; expected NxHxW, NxHxWxC or "
                        "NxCxHxW")
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise NaslError(f"{path}: {key} has dtype {x.dtype}; expected real numbers")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise NaslError(f"{path}: {key} holds NaN or infinite values")
    return x


def load_npz(file: str) -> Raw:
    path = Path(file).expanduser()
    if not path.is_file():
        raise NaslError(f"npz: file {path} not found; expected npz:PATH to a .npz file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise NaslError(f"{path}: not a readable .npz file ({e})") from e
    need = ("x_train", "y_train", "x_test", "y_test")
    missing = [k for k in need if k not in arrays]
    if missing:
        raise NaslError(f"{path}: missing arrays {missing}; expected {list(need)}, found "
                        f"{sorted(arrays)}")
    xs = [npz_images(arrays[k], path, k) for k in ("x_train", "x_test")]
    if xs[0].shape[1:] != xs[1].shape[1:]:
        raise NaslError(f"{path}: x_train images {xs[0].shape[1:]} and x_test images "
                        f"{xs[1].shape[1:]} differ in shape")
    ys = []
    for key, x in zip(("y_train", "y_test"), xs, strict=True):
        y = arrays[key]
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or len(y) != len(x):
            raise NaslError(f"{path}: {key} must be 1-D integer labels, one per image "
                            f"(got shape {y.shape}, dtype {y.dtype}, {len(x)} images)")
        if y.size and y.min() < 0:
            raise NaslError(f"{path}: {key} has negative labels; expected 0..K-1")
        from nasl.common.guards import check_labels

        check_labels([y], f"{path}: {key}", min_classes=0)
        ys.append(y.astype(np.int64))
    classes = int(max(ys[0].max(initial=0), ys[1].max(initial=0))) + 1
    return Raw(xs[0], ys[0], xs[1], ys[1], classes, f"npz:{path.name}")


def load_fake(n: int) -> Raw:
    rng = np.random.default_rng(12345)
    templates = rng.integers(0, 256, size=(10, 3, 4, 4)).astype(np.float32)
    templates = templates.repeat(8, axis=2).repeat(8, axis=3)  # 10 x 3 x 32 x 32

    def make(count: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(count, dtype=np.int64) % 10
        noise = rng.normal(0.0, 60.0, size=(count, 3, 32, 32))
        return np.clip(templates[y] + noise, 0, 255).astype(np.uint8), y

    (xa, ya), (xb, yb) = make(n), make(max(n // 4, 20))
    return Raw(xa, ya, xb, yb, 10, "fake")


@functools.lru_cache(maxsize=8)
def load_raw(kind: str, arg: str | None, resolution: int) -> Raw:
    """Decode a data set once per process (``resolution`` matters for imagefolder only)."""
    if kind == "digits":
        raw = load_digits()
    elif kind == "fmnist-mini":
        raw = load_fmnist_mini()
    elif kind == "fashion-mnist":
        raw = load_fashion(arg or FASHION_MNIST_DIR)
    elif kind in ("cifar10", "cifar100"):
        raw = load_cifar(kind, str(arg))
    elif kind == "imagefolder":
        raw = load_imagefolder(str(arg), resolution)
    elif kind == "npz":
        raw = load_npz(str(arg))
    else:
        raw = load_fake(int(arg) if arg else 320)
    check_raw(raw, f"data set {kind}" + (f":{arg}" if arg else ""))
    for a in (raw.x_train, raw.y_train, raw.x_test, raw.y_test):
        a.flags.writeable = False
    return raw


def check_raw(raw: Raw, where: str) -> None:
    """Shapes, labels and class count of decoded arrays, before anything is sized by them."""
    from nasl.common.guards import check_images, check_labels

    for x in (raw.x_train, raw.x_test):
        check_images(x.shape, where)
    if len(raw.x_train) < 2 or len(raw.x_test) < 1:
        raise NaslError(f"{where}: {len(raw.x_train)} training and {len(raw.x_test)} test images; "
                        "expected at least 2 and 1")
    if np.iscomplexobj(raw.x_train) or np.iscomplexobj(raw.x_test):
        raise NaslError(f"{where}: complex-valued pixels; expected real numbers")
    check_labels([raw.y_train, raw.y_test], where)
