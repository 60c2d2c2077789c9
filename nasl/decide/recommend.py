"""The recommendation: per trade-off, the design with the highest expected value.

In: confirmed arms and their confirmation samples, the margin δ, the level α. Out:
:class:`Pick` per trade-off — ``accurate`` (most accurate within budget), ``fast`` (the
fastest design *shown* within δ of the most accurate) and ``knee`` (the knee of the confirmed
designs' front) — each with its accuracy interval and the runner-up it was compared to
(difference and its 95 % interval; ``ahead`` when that interval excludes 0, a single
comparison, not family-adjusted, and said so).

``fast``: every confirmed design cheaper than the most accurate one (lower latency, else fewer
MACs) is tested for non-inferiority within δ against it (one-sided t, pooled seed std plus the
holdout's image error, Holm over those designs at α); the pick is the cheapest one shown, with
the most accurate design as its runner-up. When none is shown the pick is the most accurate
design itself (``shown`` False), and its runner-up the cheapest design whose mean alone is
within δ (what the pick was before this rule, ``fast="mean"``), so the answer can say what
might be faster and how far it is from being shown. Why: on seven re-checked Fashion-MNIST
runs, 5 of 14 mean-within-δ picks, each with one seed at 9 epochs, were more than δ below the
best design after 30 epochs (``bench/recheck_scoreboard.py``, docs/benchmarks.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from nasl.decide.claims import Arm
from nasl.decide.stats import Sample, adjust, interval, pair_test, pooled

TRADEOFFS = ("accurate", "fast", "knee")
FAST_RULES = ("shown", "mean")


@dataclass(frozen=True)
class Pick:
    """The best bet for one trade-off, with its runner-up."""

    tradeoff: str
    design: str
    accuracy: float
    low: float
    high: float
    n: int
    runner_up: str | None
    diff: float | None
    diff_low: float | None
    diff_high: float | None
    #: ``fast`` only: a faster design was shown within δ of the most accurate (True), or none
    #: was and the pick is the most accurate itself (False); None for the other trade-offs.
    shown: bool | None = None

    @property
    def ahead(self) -> bool | None:
        """The runner-up is behind beyond noise (None without a runner-up)."""
        if self.diff_low is None or self.diff_high is None:
            return None
        return self.diff_low > 0 or self.diff_high < 0

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "ahead": self.ahead}


def _cost(a: Arm) -> tuple[float, float]:
    return (a.latency.median if a.latency is not None else a.macs, a.macs)


def _pick(tradeoff: str, best: Arm, runner: Arm | None, samples: Mapping[str, Sample],
          sd: float, dof: int, shown: bool | None = None) -> Pick:
    s = samples[best.name]
    low, high = interval(s, sd, dof)
    diff = lo = hi = None
    if runner is not None:
        t = pair_test(s, samples[runner.name], sd, dof)
        diff = t.diff
        lo, hi = (t.low, t.high) if t.testable else (None, None)
    return Pick(tradeoff, best.name, s.mean, low, high, s.n,
                runner.name if runner else None, diff, lo, hi, shown)


def fastest_shown(have: Sequence[Arm], best: Arm, samples: Mapping[str, Sample], sd: float,
                  dof: int, margin: float, alpha: float) -> Arm | None:
    """The cheapest of ``have`` cheaper than ``best`` whose non-inferiority within ``margin``
    against it holds at ``alpha`` (Holm over every cheaper design); None when none does."""
    cheaper = sorted((a for a in have if _cost(a) < _cost(best)), key=_cost)
    p = adjust([pair_test(samples[a.name], samples[best.name], sd, dof, margin).p for a in cheaper])
    return next((a for a, q in zip(cheaper, p, strict=True) if q <= alpha), None)


def recommend(arms: Sequence[Arm], samples: Mapping[str, Sample], margin: float,
              alpha: float = 0.05, fast: str = "shown") -> list[Pick]:
    """One Pick per trade-off over the arms with samples (empty when none has any); ``fast``:
    ``shown`` (the rule of the module's docstring) or ``mean`` (the cheapest design whose mean
    is within δ, the rule before; kept for comparisons)."""
    if fast not in FAST_RULES:
        raise ValueError(f"fast rule {fast!r}: expected one of {', '.join(FAST_RULES)}")
    from nasl.stats.pareto import knee, non_dominated

    have = [a for a in arms if samples.get(a.name) and samples[a.name].n]
    if not have:
        return []
    sd, dof = pooled([samples[a.name] for a in have])
    mean = {a.name: samples[a.name].mean for a in have}
    by_acc = sorted(have, key=lambda a: (-mean[a.name], _cost(a)))
    picks = [_pick("accurate", by_acc[0], by_acc[1] if len(by_acc) > 1 else None, samples, sd, dof)]
    near = sorted((a for a in have if mean[a.name] >= mean[by_acc[0].name] - margin), key=_cost)
    if fast == "mean":
        runner = near[1] if len(near) > 1 else (by_acc[0] if near[0] is not by_acc[0] else None)
        picks.append(_pick("fast", near[0], runner, samples, sd, dof))
    else:
        top = by_acc[0]
        found = fastest_shown(have, top, samples, sd, dof, margin, alpha)
        if found is not None:
            picks.append(_pick("fast", found, top, samples, sd, dof, shown=True))
        else:
            maybe = next((a for a in near if _cost(a) < _cost(top)), None)
            picks.append(_pick("fast", top, maybe, samples, sd, dof, shown=False))
    use_lat = all(a.latency is not None for a in have)
    points = [[mean[a.name], a.macs, *([a.latency.median] if use_lat else [])]  # type: ignore[union-attr]
              for a in have]
    dirs = ["maximize", "minimize", *(["minimize"] if use_lat else [])]
    front = [have[i] for i in non_dominated(points, dirs)]
    k = front[knee([points[have.index(a)] for a in front], dirs)]
    others = sorted((a for a in front if a is not k), key=lambda a: abs(math.log(a.macs / k.macs)))
    picks.append(_pick("knee", k, others[0] if others else None, samples, sd, dof))
    return picks
