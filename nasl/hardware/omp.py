"""OpenMP wait policy, chosen by nasl's entry points before torch loads its OpenMP runtime.

libgomp reads ``OMP_WAIT_POLICY`` once, when torch is imported. :func:`choose_wait_policy`
sets ``OMP_WAIT_POLICY=PASSIVE`` when the machine is **busy at that moment** (1-minute load
average at least half the cores, and at least half the CPUs busy over a quarter of a second
of /proc/stat: the load average lags by minutes) and the user set neither
``OMP_WAIT_POLICY`` nor ``GOMP_SPINCOUNT``. Measured on 2 cores (docs/benchmarks.md, "Busy
machines"): beside another computing process, libgomp's default spinning made 2-thread
training up to 18x slower and PASSIVE kept its share; on a quiet machine PASSIVE made the
same training 2.7x slower (threads sleep and wake at every barrier), so a quiet machine
keeps the default.

Importing nasl chooses nothing: the ``nasl`` command (:func:`nasl.cli.main`) and
``python -m nasl.fidelity`` call :func:`choose_wait_policy` first; child processes inherit
the variable. A library user may call it before importing torch. In: the environment, the
load average, /proc/stat. Out: :func:`account` (one line, recorded in env.json as
``omp_policy``) and :data:`TORCH_IMPORTED_FIRST`.
"""

from __future__ import annotations

import os
import sys
import time

#: The account of the choice made in this process; None until :func:`choose_wait_policy` ran.
CHOSEN: str | None = None
#: Whether torch was already imported when the choice was made (then it came too late).
TORCH_IMPORTED_FIRST: bool = False


def cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies over all CPUs, from the first line of /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    return fields[3] + fields[4], sum(fields)  # idle + iowait; user..steal


def busy_share(seconds: float = 0.25) -> float:
    """Share (0..1) of all CPUs that other processes kept busy over the next ``seconds``
    (this process sleeps meanwhile). Raises OSError without /proc/stat."""
    idle0, total0 = cpu_times()
    time.sleep(seconds)
    idle1, total1 = cpu_times()
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def decide() -> str:
    """Set OMP_WAIT_POLICY=PASSIVE on a busy machine → a one-line account of the choice.

    The 1-minute load average is the cheap first test; it lags by minutes (a process that
    ended a moment ago still counts), so a high load is confirmed by measuring how busy the
    CPUs are now (a quarter of a second of /proc/stat) before PASSIVE is chosen."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return "set by the user"
    try:
        load, cores = os.getloadavg()[0], len(os.sched_getaffinity(0))
    except (OSError, AttributeError):
        return "default (load unknown)"
    if load < 0.5 * cores:
        return f"default spin (quiet machine: load {load:.1f} on {cores} cores)"
    try:
        busy = busy_share()
    except (OSError, ValueError, IndexError):
        busy = None
    if busy is not None and busy < 0.5:
        return (f"default spin (quiet machine: load {load:.1f} on {cores} cores is past "
                f"work; {busy:.0%} of the CPUs busy now)")
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    now = "" if busy is None else f", {busy:.0%} of the CPUs busy now"
    return f"PASSIVE (busy machine: load {load:.1f} on {cores} cores{now})"


def choose_wait_policy() -> str:
    """Make the choice once per process (later calls return the first account) → the account.

    Call it before torch is imported; :data:`TORCH_IMPORTED_FIRST` records whether it was."""
    global CHOSEN, TORCH_IMPORTED_FIRST
    if CHOSEN is None:
        TORCH_IMPORTED_FIRST = "torch" in sys.modules
        CHOSEN = decide()
    return CHOSEN


def account() -> str:
    """What governs OpenMP's waits in this process, in one line: the account of the choice,
    or, where no entry point chose (nasl used as a library), what the environment says."""
    if CHOSEN is not None:
        return CHOSEN
    user = os.environ.get("OMP_WAIT_POLICY")
    where = f"OMP_WAIT_POLICY={user} from the environment" if user else "libgomp's default"
    return f"not chosen by nasl in this process ({where})"
