"""nasl: hardware-aware neural-architecture search for lightweight CNNs.

Importing nasl sets ``OMP_WAIT_POLICY=PASSIVE`` unless the user set ``OMP_WAIT_POLICY`` or
``GOMP_SPINCOUNT``: with libgomp's default (threads spin ~300k iterations at every barrier
before they sleep), 2-thread training beside another computing process ran 18x slower; with
idle threads asleep it keeps its share of the cores (docs/benchmarks.md, "Busy machines").
OpenMP reads the variable once, when torch loads it, so this only takes effect when nasl is
imported before torch (the ``nasl`` command always is; child processes inherit it).
``TORCH_IMPORTED_FIRST`` says whether torch was already imported, i.e. too late.
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"

TORCH_IMPORTED_FIRST: bool = "torch" in _sys.modules
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
