"""Proxy fidelity, measured: ``nasl fidelity runs/<name>``.

Re-trains a finished run's front, baselines and a stratified sample of other trials at a
higher fidelity and reports how well the proxy ranked them (:mod:`nasl.fidelity.core` runs
and stores it, :mod:`nasl.fidelity.stats` concludes, :mod:`nasl.fidelity.output` shows it,
:mod:`nasl.fidelity.command` is the CLI).

The names below load their module when first asked for, so that importing the package (as
``python -m nasl.fidelity`` does before its ``__main__``) imports no torch: the entry point
chooses the OpenMP wait policy first (:mod:`nasl.hardware.omp`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["FidelityOptions", "add_parser", "cmd_fidelity", "fidelity_html", "log_fidelity_to_wandb",
           "run_fidelity"]


def __getattr__(name: str) -> Any:
    """One of :data:`__all__`, from its module; AttributeError for anything else."""
    if name in ("add_parser", "cmd_fidelity"):
        import nasl.fidelity.command as mod
    elif name in ("FidelityOptions", "run_fidelity"):
        import nasl.fidelity.core as mod  # type: ignore[no-redef]
    elif name in ("fidelity_html", "log_fidelity_to_wandb"):
        import nasl.fidelity.output as mod  # type: ignore[no-redef]
    else:
        raise AttributeError(f"module 'nasl.fidelity' has no attribute {name!r}")
    return getattr(mod, name)
