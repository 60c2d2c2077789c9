"""Where and how a proxy network trains: the training device, its precision, the data on it.

In: a device name (``auto | cpu | cuda[:i] | mps``) and a precision (``auto | fp32 | bf16 |
fp16``). Out: resolved names (pure functions of what torch reports, so they are testable on
a CPU by patching ``torch.cuda.is_available``), the autocast context and fp16 gradient scaler
of a precision, proxy data moved to the device once, cuDNN autotuning around a training, and
whether an exception is an out-of-memory error (a trial outcome, not a crash).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections.abc import Iterator
from typing import Any

import torch

from nasl.common.vocab import PRECISIONS
from nasl.data import DataSplits
from nasl.hardware.devices import resolve_device

#: Autocast dtypes of the reduced precisions.
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_train_device(device: str = "auto") -> str:
    """``auto`` → ``cuda:0`` when CUDA is available, else ``mps`` when available, else ``cpu``;
    ``cuda`` → ``cuda:0``; ``cpu``, ``cuda:N``, ``mps`` checked. ``ValueError`` saying why (no
    GPU, bad index, unknown name)."""
    d = str(device).strip().lower()
    if d == "auto":
        if torch.cuda.is_available():
            return "cuda:0"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    return resolve_device(d)


def resolve_precision(precision: str, device: str) -> str:
    """The training precision on a resolved ``device``: ``auto`` → ``bf16`` on a CUDA GPU that
    supports it, else ``fp32``; ``fp16`` needs a GPU (``ValueError`` on the CPU: use bf16)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    kind = torch.device(device).type
    if precision == "auto":
        return "bf16" if kind == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "fp16" and kind == "cpu":
        raise ValueError("precision fp16 needs a GPU (it trains with a gradient scaler there); "
                         "on the CPU use bf16 or fp32")
    return precision


def autocast(precision: str, device_type: str) -> contextlib.AbstractContextManager[Any]:
    """The forward pass's autocast context (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=AMP_DTYPES[precision])


def grad_scaler(precision: str, device_type: str) -> Any:
    """A ``torch.amp.GradScaler`` for fp16 (its small range needs loss scaling), else None."""
    return torch.amp.GradScaler(device_type) if precision == "fp16" else None


def on_device(data: DataSplits, device: str | torch.device) -> DataSplits:
    """``data`` with every tensor on ``device`` (one copy, here; the same object when it is
    there already). Proxy data sets are small, so a training then needs no host-to-device
    copy per batch."""
    dev = torch.device(device)
    if data.train_x.device == dev:
        return data
    moved = {f.name: getattr(data, f.name).to(dev) for f in dataclasses.fields(data)
             if isinstance(getattr(data, f.name), torch.Tensor)}
    return dataclasses.replace(data, **moved)


@contextlib.contextmanager
def cudnn_autotune(device: torch.device) -> Iterator[None]:
    """``cudnn.benchmark`` on while training on CUDA (fixed shapes: the fastest kernels are
    picked once); restored afterwards. Nothing changes on other devices."""
    if device.type != "cuda":
        yield
        return
    old = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = old


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` says the device ran out of memory (``torch.OutOfMemoryError`` or a
    RuntimeError whose message says so, as some back-ends raise)."""
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(error, oom) or (isinstance(error, RuntimeError)
                                      and "out of memory" in str(error).lower())


def release_memory(device: str | torch.device) -> None:
    """Give the caching allocator's free blocks back after an out-of-memory error."""
    gc.collect()
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
