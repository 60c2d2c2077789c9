"""Proxy fidelity, measured: ``nasl fidelity runs/<name>``.

Re-trains a finished run's front, baselines and a stratified sample of other trials at a
higher fidelity and reports how well the proxy ranked them (:mod:`nasl.fidelity.core` runs
and stores it, :mod:`nasl.fidelity.stats` concludes, :mod:`nasl.fidelity.output` shows it,
:mod:`nasl.fidelity.command` is the CLI).
"""

from nasl.fidelity.command import add_parser, cmd_fidelity
from nasl.fidelity.core import FidelityOptions, run_fidelity
from nasl.fidelity.output import fidelity_html, log_fidelity_to_wandb

__all__ = ["FidelityOptions", "add_parser", "cmd_fidelity", "fidelity_html", "log_fidelity_to_wandb",
           "run_fidelity"]
