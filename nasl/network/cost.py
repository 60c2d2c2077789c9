"""Analytic costs of a network: MACs, params and size (no timing; latency is measured by
:mod:`nasl.latency.timing`).

In: an :class:`~nasl.network.arch.ArchConfig` (analytic counts, microseconds) or an ``nn.Module``
(thop, cross-checked by ``torch.utils.flop_counter``). Out: integers or MiB. MACs are
conv + linear multiply-accumulates only (DESIGN.md); params are trainable parameters.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, TypedDict

import torch
from torch import nn

from nasl.network.arch import ArchConfig, nchw

BYTES_PER_PARAM = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}

# Layers that cost zero MACs under the papers' convention (thop counts several of them).
_ZERO = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm,
    nn.LayerNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.ReLU, nn.ReLU6,
    nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish,
    nn.Hardsigmoid, nn.Softmax, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d,
    nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.Identity, nn.Flatten,
)


def _zero_ops(m: nn.Module, x: Any, y: Any) -> None:
    """thop hook of a layer that costs zero MACs: leaves its ``total_ops`` at 0."""


def _input_shape(model: Any, input_shape: Sequence[int] | None) -> tuple[int, ...]:
    """(N, C, H, W) from (C, H, W) / (N, C, H, W), or a built network's ``arch`` at batch 1."""
    if input_shape is None:
        cfg = getattr(model, "arch", None)
        if not isinstance(cfg, ArchConfig):
            raise ValueError("input_shape is required for a module without an ArchConfig")
        return (1, cfg.in_channels, cfg.input_size, cfg.input_size)
    return nchw(input_shape)


def _example(model: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    ref: torch.Tensor | None = next(iter(model.parameters()), None)
    ref = next(iter(model.buffers()), None) if ref is None else ref
    if ref is None:
        return torch.zeros(shape)
    dtype = ref.dtype if ref.is_floating_point() else torch.float32
    return torch.zeros(shape, device=ref.device, dtype=dtype)


@contextlib.contextmanager
def _inference(model: nn.Module) -> Iterator[None]:
    """Eval mode + inference mode; every submodule's train/eval flag restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        for m, training in modes:
            m.training = training


def count_macs(obj: ArchConfig | nn.Module, input_shape: Sequence[int] | None = None) -> int:
    """Multiply-accumulates of convs and linears (BN, activations, pooling count zero).

    ``obj``: an ArchConfig (analytic; ``input_shape`` (C, H, W) / (N, C, H, W), if given,
    re-sizes it and N multiplies) or a module, counted with thop on the module's own device
    (the meta device works) under inference mode. ``input_shape`` defaults to the built
    network's ``arch`` input at batch 1. Out: MACs for the whole batch. The module is
    left as it was: thop's hooks and ``total_ops``/``total_params`` buffers are removed
    and every submodule's train/eval mode is restored.
    """
    if isinstance(obj, ArchConfig):
        if input_shape is None:
            return obj.macs()
        n, c, h, w = _input_shape(None, input_shape)
        if h != w:
            raise ValueError(f"an ArchConfig takes square inputs, got {h}x{w}")
        return n * obj.with_io(input_size=h, in_channels=c).macs()
    with warnings.catch_warnings():  # thop imports distutils' LooseVersion
        warnings.simplefilter("ignore", DeprecationWarning)
        import thop  # slow import, only needed here

    x = _example(obj, _input_shape(obj, input_shape))
    # thop adds total_ops/total_params buffers to every module but removes them only from
    # the ones it hooked (not from containers like Fire): restore every buffer table.
    saved = [(m, dict(m._buffers), set(m._non_persistent_buffers_set)) for m in obj.modules()]
    try:
        with _inference(obj):
            ops, _ = thop.profile(obj, inputs=(x,), verbose=False,
                                  custom_ops=dict.fromkeys(_ZERO, _zero_ops))
    finally:
        for m, buffers, non_persistent in saved:
            m._buffers.clear()
            m._buffers.update(buffers)
            m._non_persistent_buffers_set.clear()
            m._non_persistent_buffers_set.update(non_persistent)
    return int(round(float(ops)))


def flop_counter_ops(obj: nn.Module, input_shape: Sequence[int] | None = None) -> dict[str, int]:
    """FLOPs per aten op seen by ``FlopCounterMode`` (conv/matmul family only)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = _example(obj, _input_shape(obj, input_shape))
    with _inference(obj), FlopCounterMode(display=False) as counter:
        obj(x)
    return {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}


def count_macs_flop_counter(obj: ArchConfig | nn.Module,
                            input_shape: Sequence[int] | None = None) -> int:
    """Independent cross-check of :func:`count_macs`: ``FlopCounterMode`` total // 2.

    It counts convolutions and matmuls only (never BN or pooling), so it equals the
    papers' MACs. An ArchConfig is built on the meta device first (no memory, no data).
    """
    if isinstance(obj, ArchConfig):
        from nasl.network.builder import build_model

        with torch.device("meta"):
            obj = build_model(obj, seed=None)
    return sum(flop_counter_ops(obj, input_shape).values()) // 2


def count_params(obj: ArchConfig | nn.Module) -> int:
    """Trainable parameters: analytic for an ArchConfig, else numel over requires_grad."""
    if isinstance(obj, ArchConfig):
        return obj.params()
    return sum(p.numel() for p in obj.parameters() if p.requires_grad)


def size_mb(params: int, dtype: str = "fp32") -> float:
    """Weight storage in MiB (the SqueezeNet paper's "MB": 4 bytes × params for fp32).

    ``dtype``: fp32 (4 bytes), fp16/bf16 (2), int8 (1; an estimate, scales not counted).
    """
    if dtype not in BYTES_PER_PARAM:
        raise ValueError(f"dtype must be one of {list(BYTES_PER_PARAM)}, got {dtype!r}")
    return params * BYTES_PER_PARAM[dtype] / 2**20


class Costs(TypedDict):
    """What :func:`costs` returns (MACs per image at the arch's input size, sizes in MiB)."""

    macs: int
    params: int
    size_mb: float
    size_int8_mb: float


def costs(arch: ArchConfig) -> Costs:
    """The budget check, analytic (microseconds): macs, params, size_mb, size_int8_mb."""
    rows = arch.walk()
    macs = sum(r[3].macs for r in rows)
    params = sum(r[3].params for r in rows)
    return Costs(macs=macs, params=params, size_mb=size_mb(params),
                 size_int8_mb=size_mb(params, "int8"))
