"""The recommendation: per trade-off, the design with the highest expected value.

In: confirmed arms and their confirmation samples, the margin δ. Out: :class:`Pick` per
trade-off — ``accurate`` (most accurate within budget), ``fast`` (the cheapest — lowest
latency, else fewest MACs — whose mean is within δ of the most accurate) and ``knee`` (the
knee of the confirmed designs' front) — each with its accuracy interval and the runner-up it
was compared to (difference and its 95 % interval; ``ahead`` when that interval excludes 0,
a single comparison, not family-adjusted, and said so).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from nasl.decide.claims import Arm
from nasl.decide.stats import Sample, interval, pair_test, pooled

TRADEOFFS = ("accurate", "fast", "knee")


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
          sd: float, dof: int) -> Pick:
    s = samples[best.name]
    low, high = interval(s, sd, dof)
    diff = lo = hi = None
    if runner is not None:
        t = pair_test(s, samples[runner.name], sd, dof)
        diff = t.diff
        lo, hi = (t.low, t.high) if t.testable else (None, None)
    return Pick(tradeoff, best.name, s.mean, low, high, s.n,
                runner.name if runner else None, diff, lo, hi)


def recommend(arms: Sequence[Arm], samples: Mapping[str, Sample], margin: float) -> list[Pick]:
    """One Pick per trade-off over the arms with samples (empty when none has any)."""
    from nasl.stats.pareto import knee, non_dominated

    have = [a for a in arms if samples.get(a.name) and samples[a.name].n]
    if not have:
        return []
    sd, dof = pooled([samples[a.name] for a in have])
    mean = {a.name: samples[a.name].mean for a in have}
    by_acc = sorted(have, key=lambda a: (-mean[a.name], _cost(a)))
    picks = [_pick("accurate", by_acc[0], by_acc[1] if len(by_acc) > 1 else None, samples, sd, dof)]
    near = sorted((a for a in have if mean[a.name] >= mean[by_acc[0].name] - margin), key=_cost)
    runner = near[1] if len(near) > 1 else (by_acc[0] if near[0] is not by_acc[0] else None)
    picks.append(_pick("fast", near[0], runner, samples, sd, dof))
    use_lat = all(a.latency is not None for a in have)
    points = [[mean[a.name], a.macs, *([a.latency.median] if use_lat else [])]  # type: ignore[union-attr]
              for a in have]
    dirs = ["maximize", "minimize", *(["minimize"] if use_lat else [])]
    front = [have[i] for i in non_dominated(points, dirs)]
    k = front[knee([points[have.index(a)] for a in front], dirs)]
    others = sorted((a for a in front if a is not k), key=lambda a: abs(math.log(a.macs / k.macs)))
    picks.append(_pick("knee", k, others[0] if others else None, samples, sd, dof))
    return picks
