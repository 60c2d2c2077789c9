"""Proxy-training benchmark, comparable with shared/reference/proxy.md.

Trains ShuffleNet 0.5x g=3 and MobileNet 0.25 (nasl presets, when the model library is
importable) and a small conv-bn-relu CNN on digits and on a 10k Fashion-MNIST subset at
32 px, and prints train images/s, s/epoch, val accuracy and the CPU/wall ratio (about the
thread count when the machine was not contended).

    python bench/bench_train.py                       # digits 10 ep, F-MNIST 3 ep
    python bench/bench_train.py --fmnist-epochs 10 --seeds 0 1
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nasl.data import FASHION_MNIST_DIR, DataSplits, load_dataset  # noqa: E402
from nasl.training.train import TrainConfig, train_model  # noqa: E402


def small_cnn(in_channels: int, num_classes: int, width: int = 16) -> nn.Module:
    """conv-bn-relu x3 (16/32/64 channels), global average pool, linear."""
    def block(i: int, o: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, stride, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

    return nn.Sequential(*block(in_channels, width, 1), *block(width, 2 * width, 2),
                         *block(2 * width, 4 * width, 2), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4 * width, num_classes))


def models() -> dict[str, Callable[[DataSplits], nn.Module]]:
    """Name -> builder taking the data (for in_channels, classes, resolution)."""
    out: dict[str, Callable[[DataSplits], nn.Module]] = {}
    try:
        from nasl.families import preset
        from nasl.network.builder import build_model

        def make(name: str, **kw: object) -> Callable[[DataSplits], nn.Module]:
            return lambda d: build_model(preset(name, **kw).with_io(
                input_size=d.resolution, num_classes=d.num_classes, in_channels=d.in_channels))

        out["ShuffleNet 0.5x g=3"] = make("shufflenet_v1", width_mult=0.5)
        out["MobileNet 0.25"] = make("mobilenet_v1", width_mult=0.25)
    except ImportError as e:
        print(f"(nasl presets not available: {e}; small CNN only)")
    out["small CNN 16/32/64"] = lambda d: small_cnn(d.in_channels, d.num_classes)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--digits-epochs", type=int, default=10)
    ap.add_argument("--fmnist-epochs", type=int, default=3)
    ap.add_argument("--fmnist-subset", type=int, default=10_000)
    ap.add_argument("--digits-batch", type=int, default=64)
    ap.add_argument("--fmnist-batch", type=int, default=128)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = ap.parse_args()

    runs = [("digits", "digits", {}, args.digits_epochs, args.digits_batch)]
    if Path(FASHION_MNIST_DIR).is_dir():
        runs.append((f"F-MNIST {args.fmnist_subset // 1000}k", "fashion-mnist",
                     {"subset": args.fmnist_subset, "val_subset": 2000},
                     args.fmnist_epochs, args.fmnist_batch))
    else:
        print(f"(Fashion-MNIST not found in {FASHION_MNIST_DIR}: apt-get install "
              "dataset-fashion-mnist; skipping)")
    print(f"torch {torch.__version__}, {args.threads} threads, {args.resolution} px, "
          "channels_last, SGD nesterov lr 0.1 cosine, BN recalibrated before eval")
    header = (f"{'data':<12} {'model':<20} {'seed':>4} {'bs':>4} {'ep':>3} {'img/s':>7} "
              f"{'s/ep':>6} {'acc@1':>6} {'acc@3':>6} {'final':>6} {'cpu/wall':>8}")
    print(header)
    print("-" * len(header))
    for label, spec, kw, epochs, batch in runs:
        for seed in args.seeds:
            t = time.perf_counter()
            data = load_dataset(spec, resolution=args.resolution, seed=seed, **kw)
            load_s = time.perf_counter() - t
            for name, build in models().items():
                torch.manual_seed(seed)
                model = build(data)
                cfg = TrainConfig(epochs=epochs, batch_size=batch)
                r = train_model(model, data, cfg, seed=seed, threads=args.threads)
                acc = [h.val_accuracy * 100 for h in r.history]
                at3 = f"{acc[2]:6.1f}" if len(acc) >= 3 else f"{'-':>6}"
                print(f"{label:<12} {name:<20} {seed:>4} {batch:>4} {r.epochs:>3} "
                      f"{r.images_per_second:>7.0f} {r.train_seconds / r.epochs:>6.2f} "
                      f"{acc[0]:>6.1f} {at3} {acc[-1]:>6.1f} {r.cpu_wall_ratio:>8.2f}",
                      flush=True)
            print(f"{'':<12} (loaded {len(data.train_y)} train / {len(data.val_y)} val in "
                  f"{load_s:.2f} s)")


if __name__ == "__main__":
    main()
