"""Measuring for the latency model: the target, its fingerprint, kernels and whole designs.

In: a :class:`LatencyTarget` (device, runtime, threads, batch, dtype) and ArchConfigs. Out:
median milliseconds per kernel (keyed by :attr:`nasl.latency.kernels.Kernel.key`) and per
design (a :class:`nasl.latency.timing.Latency`). Every timing holds :func:`nasl.hardware.devices.device_lock`
of the device, one design (all its kernels) at a time, so other nasl processes wait at
most that long. Timings run the way :meth:`Evaluator.latency` runs them (channels-last
input for torch, the same runtime and thread count).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch

from nasl.hardware.devices import cpu_name, device_lock, resolve_device
from nasl.latency.kernels import KERNEL_RULES, Kernel, channels_last_run, kernel_module, kernels
from nasl.latency.runtime import check_runtime, make_runner
from nasl.latency.timing import DTYPES, Latency, measure_latency
from nasl.network.arch import ArchConfig

SPACE_DTYPES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


@dataclass(frozen=True)
class LatencyTarget:
    """Where latency is predicted for: the fingerprinted part of a target."""

    device: str = "cpu"
    runtime: str = "torch"
    threads: int = 1
    batch_size: int = 1
    dtype: str = "fp32"
    channels_last: bool = True
    clock: str = "wall"

    def resolved(self) -> LatencyTarget:
        """The same target with ``device`` resolved (``auto`` → ``cpu``/``cuda:0``) and checked."""
        check_runtime(self.runtime)
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {self.dtype!r}")
        if self.threads < 1 or self.batch_size < 1:
            raise ValueError(f"threads and batch_size must be >= 1, got {self.threads}, "
                             f"{self.batch_size}")
        dev = resolve_device(self.device)
        if self.clock not in ("wall", "cpu") or self.clock == "cpu" and (dev != "cpu" or self.threads != 1):
            raise ValueError(f"clock must be 'wall', or 'cpu' on device cpu with 1 thread; got "
                             f"{self.clock!r} on {dev} with {self.threads} thread(s)")
        return LatencyTarget(dev, self.runtime, self.threads, self.batch_size, self.dtype,
                             self.channels_last, self.clock)

    def facts(self) -> dict[str, Any]:
        """The target plus what else decides its latency (device name, library versions) and
        the version of the kernel rules a predictor of it was fitted with."""
        dev = self.device
        name = torch.cuda.get_device_name(dev) if dev.startswith("cuda") else cpu_name()
        out: dict[str, Any] = {**asdict(self), "device_name": name, "torch": torch.__version__,
                               "kernel_rules": KERNEL_RULES}
        if self.runtime == "onnxruntime":
            import onnxruntime

            out["onnxruntime"] = onnxruntime.__version__
        return out

    def fingerprint(self) -> str:
        """12 hex digits of the facts: a predictor is valid only for an equal fingerprint."""
        blob = json.dumps(self.facts(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def label(self) -> str:
        """``cpu/torch/1 thread/batch 1/fp32``."""
        return (f"{self.device}/{self.runtime}/{self.threads} thread(s)/batch {self.batch_size}/"
                f"{self.dtype}/{self.clock} clock")


def target_of_space(space: Any, *, device: str | None = None, runtime: str | None = None,
                    threads: int = 1, clock: str = "wall") -> LatencyTarget:
    """The :class:`LatencyTarget` of a space's ``target`` section (overrides win)."""
    t = space.target
    return LatencyTarget(device or t.device, runtime or getattr(t, "runtime", "torch"), threads,
                         t.batch_size, SPACE_DTYPES.get(t.dtype, t.dtype), clock=clock).resolved()


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _build(arch: ArchConfig, target: LatencyTarget) -> torch.nn.Module:
    from nasl.network.builder import build_model

    fmt = torch.channels_last if channels_last_run(asdict(target)) else torch.contiguous_format
    model = build_model(arch, seed=0).to(device=target.device, dtype=DTYPES[target.dtype])
    return model.to(memory_format=fmt).eval()  # type: ignore[call-overload]


def _time(run: Any, warmup: int, repeats: int, sync: Any, clock: str) -> float:
    for _ in range(warmup):
        run()
    sync()
    now = time.thread_time if clock == "cpu" else time.perf_counter
    times = []
    for _ in range(repeats):
        t0 = now()
        run()
        sync()
        times.append((now() - t0) * 1e3)
    return statistics.median(times)


def measure_kernels(arch: ArchConfig, target: LatencyTarget, known: dict[str, float], *,
                    warmup: int = 3, repeats: int = 15) -> list[Kernel]:
    """Time every kernel of ``arch`` (at the target's batch) whose key is not in ``known``,
    adding its median ms there; returns the design's kernels (all of them, in order).

    Kernels are timed in the target's runtime, each as its own module on random inputs of
    its exact shapes (so ONNX Runtime fuses what it would fuse in the whole graph).
    """
    model = _build(arch, target)
    shape = (target.batch_size, arch.in_channels, arch.input_size, arch.input_size)
    gm, ks = kernels(model, shape, channels_last=channels_last_run(asdict(target)))
    cuda = target.device.startswith("cuda")
    sync = (lambda: torch.cuda.synchronize(target.device)) if cuda else (lambda: None)
    gen = torch.Generator().manual_seed(0)
    with device_lock(target.device), _threads(target.threads):
        for k in ks:
            if k.key in known:
                continue
            xs = []
            for s, f in zip(k.inputs, k.formats or ("",) * len(k.inputs), strict=True):
                x = torch.randn(s, generator=gen).to(device=target.device, dtype=DTYPES[target.dtype])
                if f == "cl":  # each input in the format it arrives in within the network
                    x = x.contiguous(memory_format=torch.channels_last)
                xs.append(x)
            runner = make_runner(kernel_module(gm, k), tuple(xs), runtime=target.runtime,
                                 device=target.device, threads=target.threads)
            with torch.inference_mode():
                known[k.key] = _time(runner.run, warmup, repeats, sync, target.clock)
    return ks


def measure_design(arch: ArchConfig, target: LatencyTarget, *, warmup: int = 5,
                   repeats: int = 20) -> Latency:
    """Latency of the whole design at the target, as the search measures it."""
    from nasl.network.builder import build_model

    return measure_latency(build_model(arch, seed=0), (arch.in_channels, arch.input_size,
                                                       arch.input_size),
                           device=target.device, batch_size=target.batch_size, dtype=target.dtype,
                           warmup=warmup, repeats=repeats, threads=target.threads,
                           channels_last=target.channels_last, runtime=target.runtime,
                           clock=target.clock)
