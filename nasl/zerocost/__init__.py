"""Zero-cost proxies: score an untrained design in well under a second, check the scores
against a run's trained accuracies, and decide whether to let them pre-screen candidates.

- :func:`compute` (measures): synflow, naswot, grad_norm, snip, jacob_cov of a module.
- :func:`correlate` (stats): Spearman/Kendall with paired bootstrap intervals.
- :func:`decide`, :func:`pick`, :func:`score_design`, :func:`choose` (prescreen).
- :func:`run_proxies`, :func:`add_parser` (command): ``nasl proxies RUN``.
"""

from nasl.zerocost.command import add_parser, load_trained, run_proxies
from nasl.zerocost.measures import ALL_PROXIES, PROXIES, compute
from nasl.zerocost.prescreen import (
    DEFAULT_CONFIDENCE,
    DEFAULT_MARGIN,
    DEFAULT_MIN_TRIALS,
    DEFAULT_PROXY,
    PrescreenDecision,
    choose,
    decide,
    decide_auto,
    fixed_batch,
    pick,
    sample_feasible,
    score_design,
)
from nasl.zerocost.stats import Correlation, correlate

__all__ = [
    "ALL_PROXIES",
    "DEFAULT_CONFIDENCE",
    "DEFAULT_MARGIN",
    "DEFAULT_MIN_TRIALS",
    "DEFAULT_PROXY",
    "PROXIES",
    "Correlation",
    "PrescreenDecision",
    "add_parser",
    "choose",
    "compute",
    "correlate",
    "decide",
    "decide_auto",
    "fixed_batch",
    "load_trained",
    "pick",
    "run_proxies",
    "sample_feasible",
    "score_design",
]
