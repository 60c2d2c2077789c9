"""``--trials-per-device auto``: how many trials to train at once on a device, measured.

In: a set-up :class:`~nasl.search.session.Session` (its space, budgets, proxy recipe and
data shape) and the training device. Out: a :class:`Packing`, the chosen K with the probe
rows behind it (written to env.json by the caller).

How K is chosen (docs/gpu.md):

1. **The probe design** is the most expensive design the search can train: the largest
   MACs among the space's baselines and 32 seeded samples that pass the static budgets, at
   the proxy resolution, with the run's batch size, precision and channels-last.
2. **Memory.** One probe process trains it alone (K = 1) and reports its footprint: on CUDA
   the peak memory its allocator reserved plus :data:`CUDA_CONTEXT_MB` for the process's CUDA
   context; on the CPU (and Apple MPS, whose memory is the machine's) its peak resident set.
   K may not exceed 90 % of the device's free memory (CUDA: ``torch.cuda.mem_get_info``; CPU:
   ``MemAvailable``) divided by that footprint; on the CPU also not the usable cores, each
   trial training with ``cores // K`` threads.
3. **Throughput.** For K = 1, 2, 4, 8 (within the limits), K processes train the probe
   design at once with the real training loop (``train_model``, random images of the data
   set's shape, on the device) after a warm-up, started together at a barrier; the
   aggregate is the sum of their images/s. The probe stops at the first K whose aggregate is
   below the previous one's. K is the smallest whose aggregate is within
   :data:`GAIN_NEEDED` of the best: packing more trials must pay at least 10 %.

A probe process that runs out of memory or fails ends its level (recorded with the reason);
K = 1 is always possible: if even it fails, the search trains one trial per device and says
why. The probe takes about 5-30 s (a process start per trial and level, ~2 s of training per
level); it is measured on the first device of ``--devices`` and used for all of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import queue
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

KS = (1, 2, 4, 8)
"""The K the probe tries (those above the memory or core limit are skipped)."""
GAIN_NEEDED = 0.10
"""A larger K is chosen only if its aggregate images/s is this much above the smaller K's."""
MEMORY_SHARE = 0.9
"""The share of the free memory that K trials may use together."""
CUDA_CONTEXT_MB = 500.0
"""Memory a CUDA context takes per process, beside what its allocator reserves (MiB)."""
PROBE_SECONDS = 2.0
"""Seconds of timed training per probe process (after the warm-up)."""
SAMPLES = 32


@dataclass
class ProbeRow:
    """One level of the probe: ``k`` processes at once → images/s per trial and in aggregate."""

    k: int
    per_trial: float | None = None
    aggregate: float | None = None
    footprint_mb: float | None = None
    failed: int = 0
    threads: int | None = None
    contended: bool | None = None  # a CPU probe's threads waited for cores (another load)
    note: str | None = None  # why the level was skipped or ended

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass
class Packing:
    """The chosen K for ``device``, the probe design and the rows behind the choice."""

    k: int
    device: str
    design: str
    macs: float
    free_mb: float | None
    limit: int
    reason: str
    seconds: float
    rows: list[ProbeRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "device": self.device, "design": self.design, "macs": self.macs,
                "free_mb": self.free_mb, "limit": self.limit, "reason": self.reason,
                "seconds": round(self.seconds, 1), "rows": [r.to_dict() for r in self.rows]}

    def line(self) -> str:
        """One line for the terminal: the choice and the measurements behind it."""
        levels = ", ".join(f"K={r.k}: {r.aggregate:,.0f} img/s" for r in self.rows if r.aggregate)
        busy = "; the CPU was busy with other work (numbers inflated)" if any(
            r.contended for r in self.rows) else ""
        measured = f"; {levels}; probe {self.seconds:.0f} s" if levels else ""
        return f"trials per device: auto → {self.k} on {self.device} ({self.reason}{measured}{busy})"


def choose_k(pick: float, rows: list[ProbeRow]) -> int:
    """The smallest K whose aggregate is within ``pick`` (e.g. 0.10) of the best aggregate
    (1 when no level measured anything)."""
    measured = [r for r in rows if r.aggregate]
    if not measured:
        return 1
    best = max(r.aggregate or 0.0 for r in measured)
    return min(r.k for r in measured if (r.aggregate or 0.0) * (1 + pick) >= best)


def probe_design(space: Any, budgets: dict[str, float], seed: int = 0) -> tuple[str, dict[str, Any], float]:
    """The most expensive trainable design: (name, params, MACs) of the largest-MACs design
    among the baselines and ``SAMPLES`` seeded samples within the static budgets."""
    from nasl.common.vocab import STATIC_METRICS
    from nasl.search.objective import static_costs, violations
    from nasl.zerocost.prescreen import sample_feasible

    def macs(params: dict[str, Any]) -> float | None:
        try:
            costs = static_costs(space.to_arch(params))
        except ValueError:
            return None
        return None if violations(costs, budgets, STATIC_METRICS) else float(costs["macs"])

    samples = sample_feasible(space, SAMPLES, seed, lambda p: macs(p) is not None)
    named = list(space.baselines.items()) + [(f"sample {i}", p) for i, p in enumerate(samples)]
    scored = [(name, params, m) for name, params in named if (m := macs(params)) is not None]
    if not scored:
        raise ValueError("no design of the space passes the budgets")
    return max(scored, key=lambda t: t[2])


def free_memory_mb(device: str) -> float | None:
    """Free memory of ``device`` in MiB (CUDA: the driver's free memory; CPU and MPS: the
    machine's available memory), or None when unknown."""
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return free / 2**20
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import psutil

        return float(psutil.virtual_memory().available) / 2**20
    except ImportError:
        return None


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def measure(session: Any, device: str, *, ks: tuple[int, ...] = KS,
            seconds: float = PROBE_SECONDS) -> Packing:
    """Probe ``device`` for ``session``'s search and choose K (see the module docstring)."""
    t0 = time.monotonic()
    s = session.settings
    if session.space.family == "table":
        return Packing(k=1, device=device, design="", macs=0.0, free_mb=None, limit=1,
                       reason="a tabular space looks its designs up, it trains nothing",
                       seconds=time.monotonic() - t0)
    name, params, macs = probe_design(session.space, s.budgets, s.seed)
    arch, data = session.evaluator.proxy(params)
    cfg = dataclasses.replace(s.train, epochs=1, bn_recalibrate=False)
    cpu = not device.startswith("cuda")
    cores = usable_cores()
    free = free_memory_mb(device)
    rows: list[ProbeRow] = []
    limit = max(ks)
    for k in ks:
        if k > limit:
            rows.append(ProbeRow(k, note=f"over the limit of {limit}"))
            continue
        threads = max(1, cores // k) if cpu else None
        row = _level(arch, cfg, device, k, threads, seconds, data.num_classes)
        rows.append(row)
        if row.aggregate is None:
            break
        if k == 1:
            limit = _limit(row.footprint_mb, free, cores if device == "cpu" else None, max(ks))
        prev = [r for r in rows[:-1] if r.aggregate]
        if prev and row.aggregate < (prev[-1].aggregate or 0.0):
            break  # more trials at once made it slower: no need to try more
    k = choose_k(GAIN_NEEDED, rows)
    measured = [r for r in rows if r.aggregate]
    if not measured:
        reason = f"the probe failed ({rows[0].note}); one trial per device"
    elif k == max(r.k for r in measured):
        reason = "the largest K measured" + (f", at the memory/core limit of {limit}" if k == limit else "")
    else:
        reason = f"more trials at once gained less than {GAIN_NEEDED:.0%}"
    return Packing(k=k, device=device, design=name, macs=macs, free_mb=free, limit=limit,
                   reason=reason, seconds=time.monotonic() - t0, rows=rows)


def _limit(footprint_mb: float | None, free_mb: float | None, cores: int | None, top: int) -> int:
    """The largest K that memory (and, on the CPU, the cores) allow."""
    k = top
    if footprint_mb and free_mb:
        k = min(k, max(1, math.floor(MEMORY_SHARE * free_mb / footprint_mb)))
    if cores:
        k = min(k, cores)
    return k


def _level(arch: Any, cfg: Any, device: str, k: int, threads: int | None, seconds: float,
           classes: int) -> ProbeRow:
    """Start ``k`` probe processes together and gather their images/s and footprints."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(k), ctx.Queue()
    procs = [ctx.Process(target=probe_worker, args=(arch, cfg, device, threads, seconds, classes,
                                                    barrier, out), daemon=True) for _ in range(k)]
    for p in procs:
        p.start()
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 120 + 10 * seconds * k
    while len(got) < k and time.monotonic() < deadline:
        try:
            got.append(out.get(timeout=1.0))
        except queue.Empty:
            if not any(p.is_alive() for p in procs) and out.empty():
                break
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()
    ok = [g for g in got if "rate" in g]
    errors = [g["error"] for g in got if "error" in g]
    if len(ok) < k:
        note = errors[0] if errors else "a probe process ended without a result"
        return ProbeRow(k, failed=k - len(ok), threads=threads, note=note[:120])
    ips = [g["rate"] for g in ok]
    return ProbeRow(k, per_trial=sum(ips) / k, aggregate=sum(ips), threads=threads,
                    footprint_mb=max(g["footprint_mb"] for g in ok),
                    contended=any(g["busy"] for g in ok) or None)


def probe_worker(arch: Any, cfg: Any, device: str, threads: int | None, seconds: float,
                 classes: int, barrier: Any, out: Any) -> None:
    """A probe process: warm up, wait for the others, train ``seconds`` → put its images/s
    (``rate``), its memory footprint (MiB) and whether its threads waited for cores (``busy``)
    on ``out`` (or ``{"error": ...}``)."""
    try:
        out.put(_probe(arch, cfg, device, threads, seconds, classes, barrier))
    except Exception as e:  # reported as the level's note; the search goes on
        from nasl.hardware.accel import is_out_of_memory

        with contextlib.suppress(Exception):  # the others stop waiting for this one
            barrier.abort()
        out.put({"error": "out of memory" if is_out_of_memory(e) else f"{type(e).__name__}: {e}"})


def _probe(arch: Any, cfg: Any, device: str, threads: int | None, seconds: float, classes: int,
           barrier: Any) -> dict[str, Any]:
    import resource

    import torch

    from nasl.data import DataSplits
    from nasl.network.builder import build_model
    from nasl.training.train import ContendedWarning, train_model

    warnings.simplefilter("ignore", ContendedWarning)  # recorded in the row instead

    gen = torch.Generator().manual_seed(0)
    shape = (arch.in_channels, arch.input_size, arch.input_size)
    n = cfg.batch_size * 16  # one epoch: 16 steps
    data = DataSplits(torch.randn((n, *shape), generator=gen).to(device),
                      torch.randint(0, classes, (n,), generator=gen).to(device),
                      torch.randn((cfg.batch_size, *shape), generator=gen).to(device),
                      torch.randint(0, classes, (cfg.batch_size,), generator=gen).to(device),
                      num_classes=classes, in_channels=arch.in_channels, name="probe")
    model = build_model(arch, seed=0).to(device)
    warm = train_model(model, data, dataclasses.replace(cfg, max_steps=3), seed=0, threads=threads)
    steps = max(5, min(2000, round(seconds * warm.images_per_second / cfg.batch_size)))
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    barrier.wait(timeout=300)
    r = train_model(model, data, dataclasses.replace(cfg, epochs=math.ceil(steps / 16), max_steps=steps),
                    seed=0, threads=threads)
    if cuda:
        footprint = torch.cuda.max_memory_reserved(device) / 2**20 + CUDA_CONTEXT_MB
    else:
        footprint = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"rate": r.images_per_second, "footprint_mb": footprint, "busy": bool(r.contended)}
