"""nasl: hardware-aware neural-architecture search for lightweight CNNs.

Importing nasl has no side effect (no environment variable set, no sleep, no torch): the
OpenMP wait policy is chosen by the entry points, before torch is imported (:mod:`nasl.omp`).
``nasl.OMP_POLICY`` and ``nasl.TORCH_IMPORTED_FIRST`` read that choice (:func:`__getattr__`).
"""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``OMP_POLICY`` (:func:`nasl.omp.account`) and ``TORCH_IMPORTED_FIRST``
    (:data:`nasl.omp.TORCH_IMPORTED_FIRST`), read when asked; AttributeError otherwise."""
    if name in ("OMP_POLICY", "TORCH_IMPORTED_FIRST"):
        import nasl.omp

        return nasl.omp.account() if name == "OMP_POLICY" else nasl.omp.TORCH_IMPORTED_FIRST
    raise AttributeError(f"module 'nasl' has no attribute {name!r}")
