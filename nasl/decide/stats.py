"""The statistics of a decision: fresh-seed samples, one-sided pair tests, family-wise control.

In: per design, the accuracies of its fresh seeds at the confirmation fidelity (fractions
0..1) and, optionally, each image's share of seeds that classified it right on the holdout.
Out: :class:`PairTest` (difference, standard error, one-sided p-value) and adjusted p-values
(:func:`adjust`: Holm or Benjamini-Hochberg). No torch, no Optuna.

The rules, stated once:

* **Seed noise** is the pooled within-design standard deviation of the confirmation seeds
  (every design with >= 2 seeds pools, degrees of freedom ``sum(n_i - 1)``): with two or three
  seeds a design's own std is too noisy to test with.
* **Image noise.** All designs are scored on the same holdout images, so a difference also
  carries the sampling error of those images: when both designs have per-image results, the
  variance of the per-image difference over ``m`` images divided by ``m`` is added (paired,
  conservative: it includes some seed noise again).
* **A test** of ``H0: acc_a - acc_b <= -margin`` is Welch/Student's one-sided t with the pooled
  degrees of freedom: ``margin = 0`` asks "is a more accurate?" (superiority), ``margin = δ``
  "is a at most δ worse?" (non-inferiority).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

CORRECTIONS = ("holm", "bh")


@dataclass(frozen=True)
class Sample:
    """One design's confirmation results: seed accuracies, per-image correct shares and,
    where stored, each seed's per-image results (``bits``: seeds × images, 0/1, seed order)."""

    values: tuple[float, ...]
    correct: np.ndarray | None = field(default=None, compare=False)
    bits: np.ndarray | None = field(default=None, compare=False)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else float("nan")


def pooled(samples: Sequence[Sample]) -> tuple[float, int]:
    """(pooled seed std, its degrees of freedom) over the samples with >= 2 seeds; (nan, 0)."""
    groups = [np.asarray(s.values, float) for s in samples if s.n >= 2]
    dof = sum(len(g) - 1 for g in groups)
    if dof == 0:
        return float("nan"), 0
    return math.sqrt(sum(float(((g - g.mean()) ** 2).sum()) for g in groups) / dof), dof


def interval(s: Sample, sd: float, dof: int, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` t-interval of ``s``'s mean with the pooled seed std ``sd`` (``dof``);
    (nan, nan) when the pool is unknown."""
    if not s.n or not math.isfinite(sd) or dof <= 0:
        return float("nan"), float("nan")
    half = float(sps.t.ppf(0.5 + level / 2, dof)) * sd / math.sqrt(s.n)
    return s.mean - half, s.mean + half


def image_var(a: Sample, b: Sample) -> float:
    """Variance of the mean per-image difference of a and b (0 without per-image results)."""
    if a.correct is None or b.correct is None or len(a.correct) != len(b.correct) \
            or len(a.correct) < 2:
        return 0.0
    d = np.asarray(a.correct, float) - np.asarray(b.correct, float)
    return float(d.var(ddof=1)) / len(d)


@dataclass(frozen=True)
class PairTest:
    """``H0: acc_a - acc_b <= -margin`` against fresh seeds: ``diff`` (a - b), its ``se`` and
    ``dof``, the one-sided ``p``, and the 95 % two-sided interval ``low``..``high`` of diff."""

    diff: float
    se: float
    dof: int
    margin: float
    p: float
    low: float
    high: float

    @property
    def testable(self) -> bool:
        return math.isfinite(self.se) and self.se > 0 and self.dof > 0


def pair_test(a: Sample, b: Sample, sd: float, dof: int, margin: float = 0.0) -> PairTest:
    """The one-sided test of ``a`` against ``b`` with pooled seed std ``sd`` (``dof``)."""
    diff = a.mean - b.mean
    if a.n == 0 or b.n == 0 or not math.isfinite(sd) or dof <= 0:
        return PairTest(diff, float("nan"), dof, margin, 1.0, float("nan"), float("nan"))
    se = math.sqrt(sd * sd * (1 / a.n + 1 / b.n) + image_var(a, b))
    if se <= 0:
        se = 1e-12
    t = (diff + margin) / se
    p = float(sps.t.sf(t, dof))
    q = float(sps.t.ppf(0.975, dof))
    return PairTest(diff, se, dof, margin, p, diff - q * se, diff + q * se)


def adjust(pvalues: Sequence[float], method: str = "holm") -> list[float]:
    """Family-adjusted p-values (same order): ``holm`` (family-wise error) or ``bh``
    (Benjamini-Hochberg false discovery rate). A hypothesis is accepted at level α when its
    adjusted p is <= α."""
    if method not in CORRECTIONS:
        raise ValueError(f"correction {method!r}: expected one of {', '.join(CORRECTIONS)}")
    m = len(pvalues)
    if m == 0:
        return []
    order = sorted(range(m), key=lambda i: pvalues[i])
    out = [1.0] * m
    if method == "holm":
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (m - rank) * pvalues[i]))
            out[i] = running
    else:
        running = 1.0
        for rank in range(m - 1, -1, -1):
            i = order[rank]
            running = min(running, m * pvalues[i] / (rank + 1))
            out[i] = min(1.0, running)
    return out


def trainings_to_decide(test: PairTest, a: Sample, b: Sample, sd: float, level: float) -> float:
    """Extra trainings (seeds of a and b together) after which the observed effect would be
    significant at one-sided ``level``, if it stays as it is; inf when the effect points the
    other way or the holdout's image noise alone is too large to ever decide it."""
    effect = test.diff + test.margin
    if effect <= 0 or not math.isfinite(sd) or sd <= 0:
        return math.inf
    z = float(sps.norm.isf(level))
    target = (effect / z) ** 2 - image_var(a, b)
    if target <= 0:
        return math.inf
    n = math.ceil(2 * sd * sd / target)  # equal seeds per design
    # the normal approximation ignores the t-test's few degrees of freedom: an undecided
    # comparison always needs at least one more training
    return float(max(1, max(0, n - a.n) + max(0, n - b.n)))


def image_limits(test: PairTest, a: Sample, b: Sample, level: float) -> tuple[float, float]:
    """When the holdout's image noise alone keeps a comparison from being decided at one-sided
    ``level`` (:func:`trainings_to_decide` is inf with the effect pointing the right way): the
    factor by which the holdout's images would have to grow (the image variance falls as
    1/images) and the margin at which seeds could decide it on these images (the non-inferiority
    margin the data could ever support, rounded up to 0.1 points) → (factor, margin); nan, nan
    when the effect points the other way or there are no per-image results."""
    effect = test.diff + test.margin
    var = image_var(a, b)
    if effect <= 0 or var <= 0:
        return math.nan, math.nan
    z = float(sps.norm.isf(level))
    factor = var * z * z / (effect * effect)
    margin = math.ceil(1000 * (z * math.sqrt(var) - test.diff)) / 1000
    return (factor, max(margin, test.margin)) if factor > 1 else (math.nan, math.nan)


def samples_from(values: Mapping[str, Sequence[float]],
                 correct: Mapping[str, np.ndarray] | None = None) -> dict[str, Sample]:
    """Samples keyed like ``values`` (per-image shares from ``correct`` where given)."""
    correct = correct or {}
    return {k: Sample(tuple(float(x) for x in v), correct.get(k)) for k, v in values.items()}
