"""nasl: hardware-aware neural-architecture search for lightweight CNNs.

OpenMP wait policy (read once, when torch loads its OpenMP runtime): importing nasl sets
``OMP_WAIT_POLICY=PASSIVE`` when the machine is **busy at that moment** (1-minute load
average at least half the cores, and at least half the CPUs busy over a quarter of a second
of /proc/stat: the load average lags by minutes) and the user set neither ``OMP_WAIT_POLICY`` nor
``GOMP_SPINCOUNT``. Measured on 2 cores (docs/benchmarks.md, "Busy machines"): beside
another computing process, libgomp's default spinning made 2-thread training up to 18x
slower and PASSIVE kept its share; on a quiet machine PASSIVE made the same training 2.7x
slower (threads sleep and wake at every barrier), so a quiet machine keeps the default.
``OMP_POLICY`` says what was chosen and why; ``TORCH_IMPORTED_FIRST`` whether torch was
already imported (then the choice comes too late: the ``nasl`` command imports nasl first,
and child processes inherit the variable).
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"

TORCH_IMPORTED_FIRST: bool = "torch" in _sys.modules


def _cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies over all CPUs, from the first line of /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    return fields[3] + fields[4], sum(fields)  # idle + iowait; user..steal


def _busy_share(seconds: float = 0.25) -> float:
    """Share (0..1) of all CPUs that other processes kept busy over the next ``seconds``
    (this process sleeps meanwhile). Raises OSError without /proc/stat."""
    import time

    idle0, total0 = _cpu_times()
    time.sleep(seconds)
    idle1, total1 = _cpu_times()
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def _choose_omp_policy() -> str:
    """Set OMP_WAIT_POLICY=PASSIVE on a busy machine → a one-line account of the choice.

    The 1-minute load average is the cheap first test; it lags by minutes (a process that
    ended a moment ago still counts), so a high load is confirmed by measuring how busy the
    CPUs are now (a quarter of a second of /proc/stat) before PASSIVE is chosen."""
    if "OMP_WAIT_POLICY" in _os.environ or "GOMP_SPINCOUNT" in _os.environ:
        return "set by the user"
    try:
        load, cores = _os.getloadavg()[0], len(_os.sched_getaffinity(0))
    except (OSError, AttributeError):
        return "default (load unknown)"
    if load < 0.5 * cores:
        return f"default spin (quiet machine: load {load:.1f} on {cores} cores)"
    try:
        busy = _busy_share()
    except (OSError, ValueError, IndexError):
        busy = None
    if busy is not None and busy < 0.5:
        return (f"default spin (quiet machine: load {load:.1f} on {cores} cores is past "
                f"work; {busy:.0%} of the CPUs busy now)")
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    now = "" if busy is None else f", {busy:.0%} of the CPUs busy now"
    return f"PASSIVE (busy machine: load {load:.1f} on {cores} cores{now})"


OMP_POLICY: str = _choose_omp_policy()
