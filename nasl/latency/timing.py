"""Latency measured on the target device: one timing loop for every runtime.

In: an ``nn.Module`` and its input shape, the device, runtime, dtype, threads and counts
(:func:`measure_latency`); or a runner already made (:func:`time_runner`, as the latency
server does). Out: a :class:`Latency` (milliseconds per forward pass of the whole batch).
Latency is measured alone: :func:`nasl.hardware.devices.device_lock` serialises timing across
processes on one machine. The analytic costs (MACs, params, size) are in :mod:`nasl.network.cost`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nasl.hardware.devices import cpu_name, device_lock, resolve_device
from nasl.latency.runtime import check_runtime, make_runner
from nasl.network.arch import nchw

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


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
def _cpu_supports(dtype: torch.dtype) -> bool:
    """Whether this torch build runs a grouped conv + BN in ``dtype`` on the CPU."""
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
    check_runtime(runtime)
    dev = resolve_device(device)
    if clock not in ("wall", "cpu") or clock == "cpu" and (dev != "cpu" or threads != 1):
        raise ValueError(f"clock must be 'wall', or 'cpu' on device cpu with threads=1; got "
                         f"clock={clock!r} on {dev} with threads={threads}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    if dev == "cpu" and not _cpu_supports(DTYPES[dtype]):
        raise ValueError(f"dtype {dtype!r} is not supported on CPU by this torch build")
    shape = nchw(input_shape)
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
