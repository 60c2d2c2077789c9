"""Is this process sharing its cores? Wall, CPU and scheduler-wait time of training steps.

In: nothing (reads ``time`` and Linux ``/proc/self/task/*/schedstat``). Out: a :class:`Meter`
whose ``ratios()`` give the CPU/wall ratio per thread, the share of time the threads waited
for a core, and whether that counts as contended; :func:`warn_contended` says so once
(a :class:`ContendedWarning`).
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass

from nasl.hardware import omp

CONTENDED_WAIT = 0.25
"""A trial is contended when its threads waited for a core more than this share of the time."""
CONTENDED_CPU = 0.5
"""Without schedstat: contended when CPU time / wall time / threads is below this."""


def sched_times() -> tuple[int, int] | None:
    """(run ns, runqueue-wait ns) summed over this process's threads, or None without schedstat."""
    run = wait = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                fields = f.read().split()
        except OSError:  # a thread that ended meanwhile, or no schedstat at all
            continue
        run, wait = run + int(fields[0]), wait + int(fields[1])
    return (run, wait) if run > 0 else None


@dataclass
class Meter:
    """Wall, process CPU and schedstat time, summed over the timed training steps."""

    wall: float = 0.0
    thread_wall: float = 0.0
    cpu: float = 0.0
    run: int = 0
    wait: int = 0
    sched: bool = True
    _start: tuple[float, float, tuple[int, int] | None, int] = (0.0, 0.0, None, 1)

    def start(self, threads: int) -> None:
        self._start = (time.perf_counter(), time.process_time(), sched_times(), threads)

    def stop(self) -> float | None:
        """Add the time since ``start``; return that stretch's wait ratio (None: unknown)."""
        wall0, cpu0, sched0, threads = self._start
        wall = time.perf_counter() - wall0
        self.wall += wall
        self.thread_wall += wall * threads
        self.cpu += time.process_time() - cpu0
        sched1 = sched_times()
        if sched0 is None or sched1 is None:
            self.sched = False
            return None
        run, wait = sched1[0] - sched0[0], sched1[1] - sched0[1]
        self.run += run
        self.wait += wait
        return wait / (run + wait) if run > 0 else None

    def ratios(self, threads: int | None = None, *, wait_limit: float = CONTENDED_WAIT,
               cpu_limit: float = CONTENDED_CPU) -> tuple[float, float | None, bool]:
        """(cpu_ratio, wait_ratio, contended); ``threads`` overrides the recorded counts."""
        per = self.wall * threads if threads is not None else self.thread_wall
        cpu = self.cpu / per if per > 0 else 0.0
        wait = self.wait / (self.run + self.wait) if self.sched and self.run > 0 else None
        contended = wait > wait_limit if wait is not None else 0 < cpu < cpu_limit
        return cpu, wait, contended


@dataclass
class Watch:
    """Is the process contended *now*? Checked every ``window`` seconds during training.

    ``due_and_contended()`` is cheap between windows (one clock read); at the end of a window
    it reads schedstat and answers whether this process's threads waited for a core more
    than ``limit`` of that window. False where schedstat is missing.
    """

    window: float = 1.0
    limit: float = CONTENDED_WAIT
    _t0: float = 0.0
    _s0: tuple[int, int] | None = None

    def restart(self) -> None:
        """Start a new window now (call after waits that are not training)."""
        self._t0, self._s0 = time.perf_counter(), sched_times()

    def due_and_contended(self) -> bool:
        """True once a window has ended in which the threads waited more than ``limit``."""
        if time.perf_counter() - self._t0 < self.window:
            return False
        s0, s1 = self._s0, sched_times()
        self.restart()
        if s0 is None or s1 is None:
            return False
        run, wait = s1[0] - s0[0], s1[1] - s0[1]
        if run <= 0:
            return False
        return wait / (run + wait) > self.limit


class ContendedWarning(UserWarning):
    """Training shared its cores with other processes; its timings are inflated."""


def warn_contended(name: str, cpu_ratio: float, wait_ratio: float | None, threads: int) -> None:
    """Issue one ContendedWarning for a trial whose training on ``name`` shared its cores
    (attributed to the caller of the training function that calls this)."""
    waited = f"its threads waited for a core {wait_ratio:.0%} of the time, " if wait_ratio else ""
    hint = ""
    if threads > 1 and (os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE"
                        or omp.TORCH_IMPORTED_FIRST):
        hint = ("; OpenMP threads spin while waiting (set OMP_WAIT_POLICY=PASSIVE before torch "
                "is imported, or call nasl.hardware.omp.choose_wait_policy() first)")
    plural = "s" if threads > 1 else ""
    warnings.warn(f"training on {name} ran contended: {waited}CPU/wall per thread "
                  f"{cpu_ratio:.2f} at {threads} thread{plural}; its timings are inflated{hint}",
                  ContendedWarning, stacklevel=3)
