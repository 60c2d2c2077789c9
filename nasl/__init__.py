"""nasl: hardware-aware neural-architecture search for lightweight CNNs.

Importing nasl has no side effect (no environment variable set, no sleep, no torch): the
OpenMP wait policy is chosen by the entry points, before torch is imported, and recorded by
:mod:`nasl.hardware.omp` (``nasl.hardware.omp.account()``, ``nasl.hardware.omp.TORCH_IMPORTED_FIRST``).
"""

__version__ = "0.1.0"
