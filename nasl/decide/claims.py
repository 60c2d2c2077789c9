"""Which claims a run makes, chosen before the fresh seeds are seen, and how they are decided.

In: the confirmed designs as :class:`Arm` (costs, baseline name, the search's low-fidelity
accuracy), their confirmation :class:`~nasl.decide.stats.Sample`\\ s, the margin δ, the level α
and the correction. Out: :class:`Claim` objects, one per hypothesis of the family, each
``holds``, or ``undecided`` with what it would cost to decide.

The family is fixed by the search's (low-fidelity) numbers only, so that selecting a
challenger does not bias its test on the fresh seeds: for every confirmed baseline,

* **superiority**: the searched design at no higher cost (MACs no higher, latency not slower
  beyond noise) that the search rated most accurate: "more accurate at no more cost";
* **non-inferiority**: the cheapest strictly cheaper searched design the search rated within
  δ of the baseline (else the most accurate strictly cheaper one): "as accurate within δ
  points, and cheaper by a factor".

A claim holds when its family-adjusted p-value (Holm by default: the chance of *any* false
claim in the run stays below α) is at most α. Everything else is *undecided*: the data do
not show it, which is not evidence of the contrary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from nasl.decide.stats import Sample, adjust, image_limits, pair_test, pooled, trainings_to_decide
from nasl.stats.latency_stats import LatencyStats, latency_tied

KINDS = ("superior", "noninferior")


@dataclass(frozen=True)
class Arm:
    """A design as the decision sees it: name (trial number), MACs, latency (or None), the
    baseline's name (None for a searched design) and the search's accuracy (fraction)."""

    name: str
    macs: float
    latency: LatencyStats | None = None
    baseline: str | None = None
    low_accuracy: float = float("nan")


@dataclass(frozen=True)
class Hypothesis:
    """``design`` against ``other`` (a baseline): superiority or non-inferiority."""

    kind: str
    design: str
    other: str


@dataclass(frozen=True)
class Claim:
    """One decided (or undecided) hypothesis. Accuracies and differences are fractions; the
    cost factors are other/design (> 1: the design is cheaper); ``latency_factor_low/high``
    bound it from the two medians' intervals."""

    kind: str
    design: str
    other: str
    other_name: str
    diff: float
    low: float
    high: float
    margin: float
    p: float
    p_adjusted: float
    holds: bool
    n_design: int
    n_other: int
    macs_factor: float
    latency_factor: float | None
    latency_factor_low: float | None
    latency_factor_high: float | None
    to_decide: float  # extra trainings that would decide it at the current effect (inf: never)
    #: when seeds alone cannot decide it (the holdout's image noise exceeds the effect): how many
    #: times the holdout's images, and (non-inferiority) which margin, would let seeds decide it
    holdout_factor: float = math.nan
    decidable_margin: float = math.nan

    @property
    def status(self) -> str:
        return "holds" if self.holds else "undecided"

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["status"] = self.status
        d["to_decide"] = None if not math.isfinite(self.to_decide) else int(self.to_decide)
        for k in ("holdout_factor", "decidable_margin"):
            d[k] = None if not math.isfinite(d[k]) else d[k]
        return d


#: Above this many times the holdout's images, no holdout could decide a comparison: the
#: answer says so instead of a factor (a 0.1-point effect once read "193.7x the holdout's images").
HOLDOUT_CAP = 10


def no_costlier(a: Arm, b: Arm) -> bool:
    """``a`` costs no more than ``b``: MACs no higher and latency not slower beyond noise."""
    if a.macs > b.macs:
        return False
    if a.latency is None or b.latency is None:
        return True
    return a.latency.median <= b.latency.median or latency_tied(a.latency, b.latency)


def cheaper(a: Arm, b: Arm) -> bool:
    """``a`` is strictly cheaper than ``b``: no costlier, and fewer MACs or faster beyond noise."""
    if not no_costlier(a, b):
        return False
    faster = (a.latency is not None and b.latency is not None
              and a.latency.median < b.latency.median and not latency_tied(a.latency, b.latency))
    return a.macs < b.macs or faster


#: Superiority challengers per baseline: the searched designs the search rated most accurate.
CHALLENGERS = 1


def family(arms: Sequence[Arm], margin: float, challengers: int | None = None) -> list[Hypothesis]:
    """The hypotheses of a run, from the arms' costs and low-fidelity accuracies only
    (``challengers`` superiority challengers per baseline, default CHALLENGERS)."""
    challengers = CHALLENGERS if challengers is None else challengers
    searched = [a for a in arms if a.baseline is None and math.isfinite(a.low_accuracy)]
    out: list[Hypothesis] = []
    for b in (a for a in arms if a.baseline is not None):
        ok = sorted((s for s in searched if no_costlier(s, b)), key=lambda s: (-s.low_accuracy, s.macs))
        out += [Hypothesis("superior", s.name, b.name) for s in ok[:challengers]]
        cheap = [s for s in searched if cheaper(s, b)]
        near = [s for s in cheap if s.low_accuracy >= b.low_accuracy - margin]
        if near:
            pick = min(near, key=lambda s: (s.latency.median if s.latency else s.macs, s.macs))
        elif cheap:
            pick = max(cheap, key=lambda s: (s.low_accuracy, -s.macs))
        else:
            continue
        out.append(Hypothesis("noninferior", pick.name, b.name))
    return out


def _latency_factor(a: Arm, b: Arm) -> tuple[float | None, float | None, float | None]:
    if a.latency is None or b.latency is None or a.latency.median <= 0:
        return None, None, None
    lo = b.latency.low / a.latency.high if a.latency.high > 0 else None
    hi = b.latency.high / a.latency.low if a.latency.low > 0 else None
    return b.latency.median / a.latency.median, lo, hi


def decide(arms: Sequence[Arm], samples: Mapping[str, Sample], *, margin: float, alpha: float = 0.05,
           correction: str = "holm", hypotheses: Sequence[Hypothesis] | None = None) -> list[Claim]:
    """Test every hypothesis (``family(arms, margin)`` unless given) → one Claim each.

    Hypotheses whose designs have no samples are left out (they were not confirmed)."""
    by = {a.name: a for a in arms}
    hyps = [h for h in (family(arms, margin) if hypotheses is None else hypotheses)
            if samples.get(h.design) and samples[h.design].n and samples.get(h.other)
            and samples[h.other].n]
    sd, dof = pooled(list(samples.values()))
    tests = [pair_test(samples[h.design], samples[h.other], sd, dof,
                       margin if h.kind == "noninferior" else 0.0) for h in hyps]
    padj = adjust([t.p for t in tests], correction)
    undecided = sum(1 for p in padj if p > alpha) or 1
    out = []
    for h, t, pa in zip(hyps, tests, padj, strict=True):
        a, b = by[h.design], by[h.other]
        holds = t.testable and pa <= alpha
        cost = 0.0 if holds else trainings_to_decide(t, samples[h.design], samples[h.other], sd,
                                                     alpha / undecided)
        factor, dmargin = (image_limits(t, samples[h.design], samples[h.other], alpha / undecided)
                           if not holds and math.isinf(cost) else (math.nan, math.nan))
        lf, lflo, lfhi = _latency_factor(a, b)
        out.append(Claim(h.kind, h.design, h.other, b.baseline or h.other, t.diff, t.low, t.high,
                         t.margin, t.p, pa, holds, samples[h.design].n, samples[h.other].n,
                         b.macs / a.macs if a.macs > 0 else math.inf, lf, lflo, lfhi, cost,
                         factor, dmargin if h.kind == "noninferior" else math.nan))
    return out


def margin_text(margin: float, noun: str = "point") -> str:
    """A margin (fraction) in points, as text: ``1 point``, ``2 points``, ``1 accuracy point``
    with ``noun="accuracy point"``."""
    return f"{100 * margin:g} {noun}{'' if abs(100 * margin - 1) < 1e-9 else 's'}"


def sentence(c: Claim, by_name: Mapping[str, str] | None = None) -> str:
    """One line: ``#12 beats shufflenet_0.5x_g3: +2.1 points [0.8, 3.4], 1.4x fewer MACs``."""
    name = (by_name or {}).get(c.design, f"#{c.design}")
    pts = f"{100 * c.diff:+.1f} points [{100 * c.low:+.1f}, {100 * c.high:+.1f}]"
    cost = f"{c.macs_factor:.2f}x fewer MACs" if c.macs_factor > 1.0005 else "same MACs"
    if c.latency_factor is not None:
        cost += f", {c.latency_factor:.2f}x faster"
    verb = {"superior": "more accurate than", "noninferior":
            f"as accurate within {margin_text(c.margin)} as"}[c.kind]
    if not c.holds:
        if math.isfinite(c.to_decide):
            todo = f"~{int(c.to_decide)} more trainings would decide it if the effect held"
        elif c.diff + c.margin <= 0:
            todo = "the data point the other way"
        elif not math.isfinite(c.high - c.low):
            todo = "noise unknown: fewer than 2 seeds"
        else:
            todo = "more seeds would not decide it: the holdout's image noise exceeds the effect"
            could = []
            if math.isfinite(c.holdout_factor) and c.holdout_factor <= HOLDOUT_CAP:
                could.append(f"{c.holdout_factor:.1f}x the holdout's images")
            elif math.isfinite(c.holdout_factor):  # more images than any split could hold out
                todo += f" (over {HOLDOUT_CAP}x the holdout's images would be needed)"
            if math.isfinite(c.decidable_margin):
                could.append(f"a margin of {100 * c.decidable_margin:.1f} points")
            if could:
                todo += f"; {' or '.join(could)} would let seeds decide it"
        return f"undecided: {name} {verb} {c.other_name}? {pts} ({todo})"
    return f"{name} is {verb} {c.other_name}: {pts}, {cost} (adjusted p {c.p_adjusted:.3f})"
