"""nasl: hardware-aware neural-architecture search for lightweight CNNs.

OpenMP wait policy (read once, when torch loads its OpenMP runtime): importing nasl sets
``OMP_WAIT_POLICY=PASSIVE`` when the machine is **busy at that moment** (1-minute load
average at least half the cores) and the user set neither ``OMP_WAIT_POLICY`` nor
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


def _choose_omp_policy() -> str:
    """Set OMP_WAIT_POLICY=PASSIVE on a busy machine → a one-line account of the choice."""
    if "OMP_WAIT_POLICY" in _os.environ or "GOMP_SPINCOUNT" in _os.environ:
        return "set by the user"
    try:
        load, cores = _os.getloadavg()[0], len(_os.sched_getaffinity(0))
    except (OSError, AttributeError):
        return "default (load unknown)"
    if load >= 0.5 * cores:
        _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        return f"PASSIVE (busy machine: load {load:.1f} on {cores} cores)"
    return f"default spin (quiet machine: load {load:.1f} on {cores} cores)"


OMP_POLICY: str = _choose_omp_policy()
