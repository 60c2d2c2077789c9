"""Tests for nasl.data: every spec kind on tiny files, splits, resizing, errors."""

from __future__ import annotations

import gzip
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nasl.common.errors import NaslError
from nasl.data import (
    DATASETS,
    FASHION_MNIST_DIR,
    DataSplits,
    _load_raw,
    load_dataset,
    parse_data_spec,
)


def _ids(d: DataSplits, x: torch.Tensor) -> set[int]:
    """Recover the integer id written into pixel (0, 0) of every image."""
    raw = x[:, 0, 0, 0] * d.std[0] + d.mean[0]
    return set(torch.round(raw).long().tolist())


@pytest.fixture
def id_npz(tmp_path: Path) -> Path:
    """120 train + 40 test 8x8 grey images whose pixels all hold a unique id."""
    def make(ids: np.ndarray) -> np.ndarray:
        return np.broadcast_to(ids[:, None, None], (len(ids), 8, 8)).astype(np.float32)

    tr_ids, te_ids = np.arange(120), np.arange(1000, 1040)
    path = tmp_path / "ids.npz"
    np.savez(path, x_train=make(tr_ids), y_train=tr_ids % 4, x_test=make(te_ids),
             y_test=te_ids % 4)
    return path


# ---------------------------------------------------------------- spec parsing


def test_parse_data_spec_forms() -> None:
    assert parse_data_spec("digits") == ("digits", None)
    assert parse_data_spec("fashion-mnist") == ("fashion-mnist", FASHION_MNIST_DIR)
    assert parse_data_spec("fashion-mnist:/d") == ("fashion-mnist", "/d")
    assert parse_data_spec("cifar10:/c") == ("cifar10", "/c")
    assert parse_data_spec("npz:C:/x.npz") == ("npz", "C:/x.npz")
    assert parse_data_spec("fake:64") == ("fake", "64")
    assert "digits" in DATASETS and "npz:PATH" in DATASETS


@pytest.mark.parametrize("spec", ["mnist", "", "cifar10", "npz:", "fake:x", "digits:3"])
def test_parse_data_spec_errors(spec: str) -> None:
    with pytest.raises(NaslError) as e:
        parse_data_spec(spec)
    assert "\n" not in str(e.value)


def test_unknown_spec_lists_valid_forms() -> None:
    with pytest.raises(NaslError, match=r"unknown data set 'mnist'.*digits.*npz:PATH"):
        load_dataset("mnist", resolution=8, seed=0)


# ---------------------------------------------------------------- digits


def test_digits_search_split_grey_one_channel_resized() -> None:
    d = load_dataset("digits", resolution=16, seed=0)
    assert d.in_channels == 1 and d.num_classes == 10 and d.name == "digits"
    assert d.train_x.shape == (1149, 1, 16, 16) and d.val_x.shape == (288, 1, 16, 16)
    assert d.train_x.dtype == torch.float32 and d.train_y.dtype == torch.int64
    assert d.test_x is None and d.test_y is None
    # normalised with train statistics
    assert abs(float(d.train_x.mean())) < 1e-4
    assert abs(float(d.train_x.std()) - 1.0) < 1e-3
    # stratified: every class has its share of the validation set
    counts = torch.bincount(d.val_y, minlength=10)
    assert int(counts.min()) >= 26 and int(counts.max()) <= 31


def test_digits_final_split_uses_fixed_test_split() -> None:
    d = load_dataset("digits", resolution=8, seed=5, split="final")
    assert d.train_x.shape[0] == 1437 and d.val_x.shape[0] == 360
    assert d.test_x is d.val_x and d.test_y is d.val_y
    d2 = load_dataset("digits", resolution=8, seed=9, split="final")
    assert torch.equal(d.val_y, d2.val_y)  # the test split does not depend on the seed


def test_seeds_reproducible_and_distinct() -> None:
    a = load_dataset("digits", resolution=8, seed=1, subset=200, val_subset=50)
    b = load_dataset("digits", resolution=8, seed=1, subset=200, val_subset=50)
    c = load_dataset("digits", resolution=8, seed=2, subset=200, val_subset=50)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.val_y, b.val_y)
    assert not torch.equal(a.train_x, c.train_x)
    assert a.train_x.shape[0] == 200 and a.val_x.shape[0] == 50
    assert torch.bincount(a.train_y, minlength=10).min() >= 19  # stratified subset


def test_subset_too_small_is_clear_error() -> None:
    with pytest.raises(NaslError, match="subset=3"):
        load_dataset("digits", resolution=8, seed=0, subset=3)


@pytest.mark.parametrize("kwargs", [dict(resolution=0), dict(resolution=8, val_fraction=1.0),
                                    dict(resolution=8, split="test"),
                                    dict(resolution=8, subset=0)])
def test_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(NaslError):
        load_dataset("digits", seed=0, **kwargs)


def test_raw_arrays_cached() -> None:
    load_dataset("digits", resolution=8, seed=0)
    hits = _load_raw.cache_info().hits
    load_dataset("digits", resolution=12, seed=3)
    assert _load_raw.cache_info().hits == hits + 1


# ---------------------------------------------------------------- npz


def test_npz_splits_disjoint_and_test_never_in_search(id_npz: Path) -> None:
    d = load_dataset(f"npz:{id_npz}", resolution=8, seed=0, val_fraction=0.25)
    tr, va = _ids(d, d.train_x), _ids(d, d.val_x)
    assert len(tr) == 90 and len(va) == 30 and not tr & va
    assert tr | va == set(range(120))  # only training images, never the test ids
    assert d.num_classes == 4 and d.in_channels == 1
    f = load_dataset(f"npz:{id_npz}", resolution=8, seed=0, split="final")
    assert _ids(f, f.train_x) == set(range(120))
    assert _ids(f, f.val_x) == set(range(1000, 1040))
    assert f.test_x is not None and torch.equal(f.test_y, f.val_y)


@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw"])
def test_npz_layouts(tmp_path: Path, layout: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(40, 3, 10, 10), dtype=np.uint8)
    if layout == "nhw":
        x = x[:, 0]
    elif layout == "nhwc":
        x = x.transpose(0, 2, 3, 1)
    y = np.arange(40) % 2
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
    d = load_dataset(f"npz:{path}", resolution=6, seed=0)
    channels = 1 if layout == "nhw" else 3
    assert d.train_x.shape == (32, channels, 6, 6) and d.in_channels == channels
    assert torch.allclose(d.train_x.mean(dim=(0, 2, 3)), torch.zeros(channels), atol=1e-4)


def test_npz_errors(tmp_path: Path) -> None:
    with pytest.raises(NaslError, match="not found"):
        load_dataset(f"npz:{tmp_path / 'none.npz'}", resolution=8, seed=0)
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 8, 8)), y=np.zeros(4))
    with pytest.raises(NaslError, match=r"missing arrays.*x_train.*found \['x', 'y'\]"):
        load_dataset(f"npz:{bad}", resolution=8, seed=0)
    shape = tmp_path / "shape.npz"
    np.savez(shape, x_train=np.zeros((4, 8)), y_train=np.zeros(4, int),
             x_test=np.zeros((4, 8)), y_test=np.zeros(4, int))
    with pytest.raises(NaslError, match="x_train has shape"):
        load_dataset(f"npz:{shape}", resolution=8, seed=0)
    labels = tmp_path / "labels.npz"
    np.savez(labels, x_train=np.zeros((4, 8, 8)), y_train=np.zeros(3, int),
             x_test=np.zeros((4, 8, 8)), y_test=np.zeros(4, int))
    with pytest.raises(NaslError, match="y_train must be 1-D integer labels"):
        load_dataset(f"npz:{labels}", resolution=8, seed=0)


# ---------------------------------------------------------------- fashion-mnist (IDX)


def _write_idx(path: Path, arr: np.ndarray, magic: int | None = None) -> None:
    header = (magic if magic is not None else 0x0800 | arr.ndim).to_bytes(4, "big")
    header += b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def _fashion_dir(root: Path, n_train: int = 60, n_test: int = 20) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(root / f"{prefix}-images-idx3-ubyte.gz",
                   rng.integers(0, 256, size=(n, 28, 28)))
        _write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return root


def test_fashion_mnist_idx(tmp_path: Path) -> None:
    root = _fashion_dir(tmp_path / "fm")
    d = load_dataset(f"fashion-mnist:{root}", resolution=14, seed=0, split="final")
    assert d.train_x.shape == (60, 1, 14, 14) and d.val_x.shape == (20, 1, 14, 14)
    assert d.num_classes == 10 and d.in_channels == 1 and d.name == "fashion-mnist"
    s = load_dataset(f"fashion-mnist:{root}", resolution=32, seed=0)
    assert s.train_x.shape == (48, 1, 32, 32) and s.val_x.shape == (12, 1, 32, 32)


def test_fashion_mnist_bad_magic_and_truncated(tmp_path: Path) -> None:
    root = _fashion_dir(tmp_path / "magic")
    _write_idx(root / "train-labels-idx1-ubyte.gz", np.arange(60) % 10, magic=0x0803)
    with pytest.raises(NaslError, match=r"not an IDX file.*expected 0x00000801"):
        load_dataset(f"fashion-mnist:{root}", resolution=8, seed=0)
    root = _fashion_dir(tmp_path / "short")
    with gzip.open(root / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write((0x0803).to_bytes(4, "big") + b"".join(
            d.to_bytes(4, "big") for d in (20, 28, 28)) + b"\0" * 100)
    with pytest.raises(NaslError, match="header says"):
        load_dataset(f"fashion-mnist:{root}", resolution=8, seed=0)


def test_fashion_mnist_missing_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(NaslError, match=r"apt-get install dataset-fashion-mnist.*fashion-mnist:DIR"):
        load_dataset(f"fashion-mnist:{tmp_path / 'nowhere'}", resolution=8, seed=0)


@pytest.mark.skipif(not Path(FASHION_MNIST_DIR).is_dir(), reason="dataset-fashion-mnist "
                    f"not installed ({FASHION_MNIST_DIR})")
def test_real_fashion_mnist() -> None:
    d = load_dataset("fashion-mnist", resolution=32, seed=0, subset=1000, val_subset=200)
    assert d.train_x.shape == (1000, 1, 32, 32) and d.val_x.shape == (200, 1, 32, 32)
    assert d.num_classes == 10


# ---------------------------------------------------------------- cifar


def _pickle(path: Path, obj: dict) -> None:
    with path.open("wb") as f:
        pickle.dump(obj, f)


def test_cifar10_batches(tmp_path: Path) -> None:
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        _pickle(root / name, {b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8),
                              b"labels": list(np.arange(20) % 10)})
    d = load_dataset(f"cifar10:{tmp_path}", resolution=16, seed=0, split="final")  # parent dir
    assert d.train_x.shape == (100, 3, 16, 16) and d.val_x.shape == (20, 3, 16, 16)
    assert d.in_channels == 3 and d.num_classes == 10
    (root / "test_batch").unlink()
    with pytest.raises(NaslError, match="test_batch not found"):
        load_dataset(f"cifar10:{root}", resolution=16, seed=1, split="final")


def test_cifar100_and_missing_dir(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name in ("train", "test"):
        _pickle(tmp_path / name, {b"data": rng.integers(0, 256, (200, 3072), dtype=np.uint8),
                                  b"fine_labels": list(np.arange(200) % 100)})
    d = load_dataset(f"cifar100:{tmp_path}", resolution=32, seed=0, val_fraction=0.5)
    assert d.num_classes == 100 and d.train_x.shape == (100, 3, 32, 32)
    with pytest.raises(NaslError, match="not found"):
        load_dataset(f"cifar100:{tmp_path / 'no'}", resolution=32, seed=0)


# ---------------------------------------------------------------- imagefolder


def test_imagefolder_without_torchvision(monkeypatch: pytest.MonkeyPatch, tmp_path: Path
                                         ) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", None)
    with pytest.raises(NaslError, match="pip install torchvision"):
        load_dataset(f"imagefolder:{tmp_path}/nothere", resolution=8, seed=0)


def test_imagefolder(tmp_path: Path) -> None:
    pytest.importorskip("torchvision", reason="torchvision not installed")
    from PIL import Image

    for part in ("train", "val"):
        for cls in ("a", "b"):
            (tmp_path / part / cls).mkdir(parents=True)
            for i in range(6):
                Image.new("L", (20, 12), color=i * 40).save(tmp_path / part / cls / f"{i}.png")
    d = load_dataset(f"imagefolder:{tmp_path}", resolution=8, seed=0, val_fraction=0.5)
    assert d.train_x.shape == (6, 3, 8, 8) and d.num_classes == 2


# ---------------------------------------------------------------- fake


def test_fake_resizes_down_and_up() -> None:
    d = load_dataset("fake:100", resolution=16, seed=0)
    assert d.train_x.shape == (80, 3, 16, 16) and d.num_classes == 10
    up = load_dataset("fake", resolution=40, seed=0, subset=30, val_subset=10)
    assert up.train_x.shape == (30, 3, 40, 40) and up.val_x.shape == (10, 3, 40, 40)
    assert torch.isfinite(up.train_x).all()


# ---------------------------------------------------------------- fmnist-mini (package data)


def test_fmnist_mini_is_default_kind_and_takes_no_argument() -> None:
    from nasl.data import DEFAULT_DATASET

    assert parse_data_spec("fmnist-mini") == ("fmnist-mini", None)
    assert DEFAULT_DATASET == "fmnist-mini" and "fmnist-mini" in DATASETS
    with pytest.raises(NaslError, match="'fmnist-mini' takes no argument"):
        parse_data_spec("fmnist-mini:/x")


def test_fmnist_mini_loads_offline_balanced(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("fmnist-mini must not touch the network")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    _load_raw.cache_clear()
    raw = _load_raw("fmnist-mini", None, 0)
    assert raw.x_train.shape == (5000, 1, 28, 28) and raw.x_train.dtype == np.uint8
    assert raw.x_test.shape == (1000, 1, 28, 28) and raw.num_classes == 10
    assert np.bincount(raw.y_train).tolist() == [500] * 10
    assert np.bincount(raw.y_test).tolist() == [100] * 10
    assert 60 < raw.x_train.mean() < 90  # real clothing images, not noise (F-MNIST mean 72.9)
    d = load_dataset("fmnist-mini", resolution=32, seed=0)
    assert d.train_x.shape == (4000, 1, 32, 32) and d.val_x.shape == (1000, 1, 32, 32)
    assert torch.bincount(d.val_y).tolist() == [100] * 10 and d.name == "fmnist-mini"


def test_fmnist_mini_deterministic_and_seeded() -> None:
    a = load_dataset("fmnist-mini", resolution=16, seed=3)
    _load_raw.cache_clear()
    b = load_dataset("fmnist-mini", resolution=16, seed=3)
    c = load_dataset("fmnist-mini", resolution=16, seed=4)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.val_y, b.val_y)
    assert not torch.equal(a.val_x, c.val_x)
    f = load_dataset("fmnist-mini", resolution=28, seed=0, split="final")
    assert f.train_x.shape[0] == 5000 and f.test_x is not None and f.test_x.shape[0] == 1000


def test_fmnist_mini_matches_its_generator() -> None:
    """The shipped file is what bench/make_fmnist_subset.py makes from Debian's files."""
    import hashlib
    import importlib.util
    from importlib import resources

    if not Path(FASHION_MNIST_DIR, "train-labels-idx1-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    shipped = resources.files("nasl.datasets").joinpath("fashion_mnist_subset.npz").read_bytes()
    script = Path(__file__).resolve().parents[1] / "bench" / "make_fmnist_subset.py"
    spec = importlib.util.spec_from_file_location("make_fmnist_subset", script)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    arrays = mod.make_subset(FASHION_MNIST_DIR, 5000, 1000, 0)
    raw = _load_raw("fmnist-mini", None, 0)
    assert np.array_equal(arrays["x_train"], raw.x_train[:, 0])
    assert np.array_equal(arrays["y_test"], raw.y_test)
    digest = hashlib.sha256(shipped).hexdigest()
    assert digest in (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text()
