"""Costs of a network: MACs, params, size, and latency measured on the target device.

In: an :class:`~nasl.arch.ArchConfig` (analytic counts, microseconds) or an ``nn.Module``
(thop, cross-checked by ``torch.utils.flop_counter``). Out: integers, MiB, or a
:class:`Latency`. MACs are conv + linear multiply-accumulates only (DESIGN.md); params are
trainable parameters. Latency is measured alone: :func:`device_lock` serialises timing
across processes on one machine.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import torch
from torch import nn

from nasl.arch import ArchConfig
from nasl.devices import device_lock, lock_dir, resolve_device  # noqa: F401 (re-exported)

BYTES_PER_PARAM = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

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
    shape = tuple(int(s) for s in input_shape)
    shape = (1, *shape) if len(shape) == 3 else shape
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"input_shape must be (C, H, W) or (N, C, H, W), got {input_shape!r}")
    return shape


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
        from nasl.builder import build_model

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


# -- devices and the lock ------------------------------------------------------------------
# -- latency --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Latency:
    """One latency measurement (milliseconds per forward pass of the whole batch).

    ``cpu_ratio`` (CPU only): process CPU time (with 1 thread: the timing thread's alone) /
    wall time / threads over the timed runs,
    ≈ 1.0 when every thread had a core to itself, ≈ 0.5 when a core was shared.
    ``runtime``: torch (eager), onnxruntime or torch.compile. ``clock``: ``wall``, or
    ``cpu`` (the timing thread's CPU time; 1 thread on CPU).
    """

    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    repeats: int
    warmup: int
    device: str
    device_name: str
    threads: int
    batch_size: int
    dtype: str
    cpu_ratio: float | None
    input_shape: tuple[int, ...] = ()
    channels_last: bool = False
    runtime: str = "torch"
    clock: str = "wall"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field."""
        d = dataclasses.asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d


@functools.cache
def cpu_name() -> str:
    """CPU model from /proc/cpuinfo ("model name"), else ``platform.processor()``."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


@functools.cache
def _cpu_supports(dtype: torch.dtype) -> bool:
    try:
        conv = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.BatchNorm2d(4)).eval().to(dtype)
        with torch.inference_mode():
            conv(torch.zeros(1, 4, 8, 8, dtype=dtype))
        return True
    except RuntimeError:
        return False


def measure_latency(model: nn.Module, input_shape: Sequence[int], device: str = "auto",
                    batch_size: int | None = None, dtype: str = "fp32", warmup: int = 10,
                    repeats: int = 30, threads: int | None = 1, channels_last: bool = True,
                    lock: bool = True, runtime: str = "torch", clock: str = "wall") -> Latency:
    """Time ``model``'s forward pass on ``device`` in ``runtime``, alone; the caller's model
    is untouched.

    In: ``input_shape`` (C, H, W) or (N, C, H, W); ``batch_size`` replaces N (None: N,
    or 1 for a 3-tuple). ``dtype`` fp32/fp16/bf16; ``threads`` for torch on CPU and for
    ONNX Runtime's intra-op pool (None: leave as is; restored afterwards). ``runtime``:
    ``torch`` (eager), ``onnxruntime`` (exported graph; CPU provider, CUDA provider on a
    GPU) or ``torch.compile`` (see :mod:`nasl.latency.runtime`). A copy of the model in
    eval mode runs under ``torch.inference_mode`` (channels-last if asked; ignored by
    onnxruntime); the export/compilation and one call happen first, then ``warmup``
    untimed runs, then ``repeats`` timed ones (``perf_counter`` on CPU; on CUDA, events
    with a sync per run, ``cudnn.benchmark`` on while timing; wall time around
    onnxruntime's synchronising call). ``clock="cpu"`` (CPU, 1 thread only) times each run
    by the calling thread's CPU time instead of wall time: what the run would take on a
    free core, unaffected by other processes taking turns on it (on a shared machine the
    wall time of one run varied by ±30 % while its thread CPU time stayed within a few %).
    ``lock`` holds :func:`device_lock` throughout.
    Out: a :class:`Latency`. Raises ``ValueError`` for a bad device, dtype, count, shape or
    runtime, or a meta model; ``nasl.latency.runtime.RuntimeUnavailable`` (a ValueError)
    when the runtime cannot run on the device.
    """
    from nasl.latency.runtime import check_runtime, make_runner

    check_runtime(runtime)
    dev = resolve_device(device)
    if clock not in ("wall", "cpu") or clock == "cpu" and (dev != "cpu" or threads != 1):
        raise ValueError(f"clock must be 'wall', or 'cpu' on device cpu with threads=1; got "
                         f"clock={clock!r} on {dev} with threads={threads}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    if dev == "cpu" and not _cpu_supports(DTYPES[dtype]):
        raise ValueError(f"dtype {dtype!r} is not supported on CPU by this torch build")
    shape = _input_shape(model, input_shape)
    n = shape[0] if batch_size is None else batch_size
    if repeats < 1 or warmup < 0 or (threads is not None and threads < 1) or n < 1:
        raise ValueError(f"need repeats >= 1, warmup >= 0, threads >= 1 or None, batch_size "
                         f">= 1; got {repeats}, {warmup}, {threads}, {batch_size}")
    if any(p.is_meta for p in model.parameters()):
        raise ValueError("cannot time a model on the meta device; build it on a real device")
    shape = (n, *shape[1:])
    onnx = runtime == "onnxruntime"
    fmt = torch.channels_last if channels_last and not onnx else torch.contiguous_format
    net = copy.deepcopy(model).to(device=dev, dtype=DTYPES[dtype])
    net = net.to(memory_format=fmt).eval()  # type: ignore[call-overload]  # missing in stubs
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    x = x.to(device=dev, dtype=DTYPES[dtype], memory_format=fmt)
    cuda = dev.startswith("cuda")
    sync = (lambda: torch.cuda.synchronize(dev)) if cuda else (
        torch.mps.synchronize if dev == "mps" else (lambda: None))
    old_threads = torch.get_num_threads()
    old_bench = torch.backends.cudnn.benchmark
    with device_lock(dev) if lock else contextlib.nullcontext():
        try:
            torch.set_num_threads(threads or old_threads)
            torch.backends.cudnn.benchmark = cuda or old_bench
            runner = make_runner(net, x, runtime=runtime, device=dev, threads=threads)
            times, cpu_ratio, used = time_runner(runner, dev, warmup=warmup, repeats=repeats,
                                                 clock=clock, sync=sync)
        finally:
            torch.set_num_threads(old_threads)
            torch.backends.cudnn.benchmark = old_bench
    return latency_of(times, warmup=warmup, device=dev, threads=used, batch_size=n, dtype=dtype,
                      cpu_ratio=cpu_ratio, input_shape=shape,
                      channels_last=channels_last and not onnx, runtime=runtime, clock=clock)


def time_runner(runner: Any, dev: str, *, warmup: int, repeats: int, clock: str = "wall",
                sync: Callable[[], Any] = lambda: None,
                deadline: float | None = None) -> tuple[list[float], float | None, int]:
    """``warmup`` untimed then ``repeats`` timed calls of ``runner.run()`` (a
    :class:`nasl.latency.runtime.Runner`, already called once) on ``dev``.

    Out: (milliseconds of each timed run, CPU/wall ratio on CPU else None, threads used).
    CUDA events when ``runner.events``; else the calling thread's CPU time (``clock="cpu"``)
    or wall time with ``sync()`` after each run. ``deadline`` (``time.monotonic()``):
    ``TimeoutError`` when passed between two runs. The caller holds the device lock.
    """
    def check() -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError("the measurement ran past its time limit")

    times: list[float] = []
    cpu_ratio: float | None = None
    with torch.inference_mode():
        for _ in range(warmup):
            runner.run()
            check()
        sync()
        wall0, cpu0, own0 = time.perf_counter(), time.process_time(), time.thread_time()
        for _ in range(repeats):
            if runner.events:  # device time between two events, synchronised every run
                start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
                start.record()
                runner.run()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            elif clock == "cpu":  # this thread's CPU time: the 1-thread run's own work
                t0 = time.thread_time()
                runner.run()
                times.append((time.thread_time() - t0) * 1e3)
            else:
                t0 = time.perf_counter()
                runner.run()
                sync()
                times.append((time.perf_counter() - t0) * 1e3)
            check()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    used = runner.threads or torch.get_num_threads()
    if used == 1:  # the run is this thread's work; other threads (an idle OpenMP pool
        cpu = time.thread_time() - own0  # spinning, Ray, W&B) must not count
    if dev == "cpu" and wall > 0:
        cpu_ratio = cpu / wall / used
    return times, cpu_ratio, used


def latency_of(times: Sequence[float], *, device: str, **fields: Any) -> Latency:
    """A :class:`Latency` from the milliseconds of each timed run (median, deciles with
    linear interpolation as ``numpy.percentile``, mean, std) on ``device``; ``fields``: the
    rest of Latency's fields (warmup, threads, batch_size, dtype, cpu_ratio, ...)."""
    times = list(times)
    q = statistics.quantiles(times, n=10, method="inclusive") if len(times) > 1 else times * 9
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else (
        "Apple MPS" if device == "mps" else cpu_name())
    return Latency(median_ms=statistics.median(times), p10_ms=q[0], p90_ms=q[-1],
                   mean_ms=statistics.fmean(times),
                   std_ms=statistics.stdev(times) if len(times) > 1 else 0.0,
                   repeats=len(times), device=device, device_name=name, **fields)
