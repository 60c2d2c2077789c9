"""Latency with its noise: a median and a distribution-free interval from repeated rounds,
and whether two designs' latencies can be told apart (numpy only).

In: each design's round medians (interleaved rounds). Out: :class:`LatencyStats` and ties.
See :mod:`nasl.stats.confidence` for the rule in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class LatencyStats:
    """One design's latency rounds (ms): their median and an interval for the median.

    ``low``/``high`` are order statistics of the rounds chosen by binomial ranks so that
    they bracket the true median with probability ``coverage`` (≥ ``level`` when the rounds
    allow it; with fewer than 6 rounds it is min..max and ``coverage`` = 1 - 2·0.5^n).
    """

    rounds: tuple[float, ...]
    median: float
    low: float
    high: float
    coverage: float
    level: float

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["rounds"] = list(self.rounds)
        return d


def _median_ci(x: np.ndarray, level: float) -> tuple[float, float, float]:
    """Distribution-free interval for the median of ``x`` -> (low, high, coverage).

    Ranks ``j < k`` (0-based ``j``, ``k = n-1-j``) with ``P(j < B ≤ k)`` for B ~ Bin(n, ½)
    as small as possible but ≥ ``level``; none exists for tiny n: min..max.
    """
    s = np.sort(x)
    n = len(s)
    best = (0, n - 1)
    for j in range(n // 2, -1, -1):
        k = n - 1 - j
        cover = float(sps.binom.cdf(k, n, 0.5) - sps.binom.cdf(j, n, 0.5))
        if cover >= level:
            best = (j, k)
            break
    j, k = best
    coverage = float(sps.binom.cdf(k, n, 0.5) - sps.binom.cdf(j, n, 0.5))
    return float(s[j]), float(s[k]), coverage


def latency_summary(rounds: Sequence[float], level: float = 0.95) -> LatencyStats:
    """Median and order-statistic interval of one design's latency rounds -> LatencyStats."""
    x = np.asarray(rounds, dtype=float).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError("latency_summary needs at least one finite round")
    low, high, coverage = _median_ci(x, level)
    return LatencyStats(tuple(float(v) for v in x), float(np.median(x)), low, high, coverage,
                        level)


def latency_tied(a: LatencyStats, b: LatencyStats) -> bool:
    """True when the latencies of ``a`` and ``b`` cannot be told apart.

    Equal round counts (interleaved rounds, round i of both timed side by side): the
    interval of the median of the paired differences holds 0. Otherwise: the two
    intervals overlap.
    """
    if len(a.rounds) == len(b.rounds) and len(a.rounds) >= 2:
        diff = np.asarray(a.rounds) - np.asarray(b.rounds)
        low, high, _ = _median_ci(diff, min(a.level, b.level))
        return low <= 0.0 <= high
    return a.low <= b.high and b.low <= a.high


def latency_ties(named: dict[str, LatencyStats]) -> list[tuple[str, str]]:
    """Every pair of names (in the given order) whose latencies cannot be told apart."""
    names = list(named)
    return [(p, q) for i, p in enumerate(names) for q in names[i + 1:]
            if latency_tied(named[p], named[q])]
