"""Selection-corrected accuracies: what each design is expected to score on a fresh seed at the
search's fidelity (numpy only).

Why. A front is picked on noisy accuracies — one seed per design in a default search — so its
members are, more often than not, designs whose seed was lucky: their numbers are biased up
(the winner's curse; 0.3-1.1 points relative to the baselines on three Fashion-MNIST runs,
docs/benchmarks.md) and rank the designs' long-training accuracy poorly.

How. Empirical Bayes with a normal prior centred on the run's trend of accuracy on log MACs:
each design's accuracy ``y_i`` (the mean of its ``n_i`` seeds) is ``trend_i + e_i + noise``
with design effects ``e_i ~ N(0, τ²)`` and seed noise of variance ``σ²/n_i``; the posterior
mean is ``trend_i + w_i (y_i − trend_i)``, ``w_i = τ² / (τ² + σ²/n_i)``. The trend at a design
is fitted without it (leave-one-out least squares on ``[1, log MACs]``), so a lucky design does
not pull its own prior up; ``τ²`` is the residual variance of the full fit minus the mean seed
variance (method of moments, floored at zero: when the seed noise explains all the spread,
every estimate is its trend). ``σ`` is an input (the run's pooled seed std); with none known
there is no estimate — nothing here is assumed.

In: accuracies, MACs and seed counts per design (same order), the seed std. Out:
:class:`Shrinkage` (the estimates in the same order, τ, σ and the weights' range), or None with
fewer than :data:`MIN_DESIGNS` designs. The estimates are reported beside the measured
accuracies (``accuracy_expected`` in trials.csv, pareto.json and the report); no decision reads
them (claims and recommendation are decided on the confirmation's fresh seeds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Fewest designs for a trend of two parameters left out one at a time, and a spread around it.
MIN_DESIGNS = 5

RULE = ("expected accuracy on a fresh seed at the search's fidelity: each design's accuracy "
        "shrunk toward the run's log-MACs trend by its seed noise (empirical Bayes; corrects "
        "the front's selection luck)")


@dataclass(frozen=True)
class Shrinkage:
    """Posterior means (``values``, same order as the input), the prior std around the trend
    (``prior_sd``), the seed std used (``seed_sd``) and the weights' range (1: the design's own
    number kept, 0: its trend)."""

    values: tuple[float, ...]
    prior_sd: float
    seed_sd: float
    weight_min: float
    weight_max: float

    def to_dict(self) -> dict[str, float | str]:
        return {"rule": RULE, "prior_sd": self.prior_sd, "seed_sd": self.seed_sd,
                "weight_min": self.weight_min, "weight_max": self.weight_max}


def expected(accuracy: Sequence[float], macs: Sequence[float], seeds: Sequence[int],
             seed_sd: float) -> Shrinkage | None:
    """Selection-corrected accuracies (see the module doc) → Shrinkage, or None when fewer than
    MIN_DESIGNS designs, a MACs value is not positive or the seed std is unknown."""
    y = np.asarray(accuracy, dtype=float)
    m = np.asarray(macs, dtype=float)
    n = np.maximum(1, np.asarray(seeds, dtype=float))
    if (len(y) < MIN_DESIGNS or len(m) != len(y) or len(n) != len(y) or not math.isfinite(seed_sd)
            or seed_sd < 0 or not np.all(np.isfinite(y)) or not np.all(m > 0)):
        return None
    x = np.column_stack([np.ones(len(y)), np.log(m)])
    if np.ptp(x[:, 1]) == 0:  # one cost for all: the trend is the mean
        x = x[:, :1]
    trend = np.empty(len(y))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        trend[i] = x[i] @ np.linalg.lstsq(x[keep], y[keep], rcond=None)[0]
    resid = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
    noise = seed_sd ** 2 / n
    prior = max(0.0, float(np.sum(resid ** 2)) / max(1, len(y) - x.shape[1]) - float(np.mean(noise)))
    w = np.where(prior + noise > 0, prior / np.maximum(prior + noise, 1e-300), 1.0)
    values = w * y + (1 - w) * trend
    return Shrinkage(tuple(float(v) for v in values), math.sqrt(prior), float(seed_sd),
                     float(w.min()), float(w.max()))
