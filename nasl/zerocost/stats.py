"""Rank correlations of scores with trained accuracies, with paired bootstrap intervals.

In: ``{metric: [score per design]}`` (proxies, params, MACs) and the designs' accuracies.
Out: per metric the Spearman ρ and Kendall τ-b (point estimates from scipy) and percentile
bootstrap intervals. Every metric is resampled with the *same* bootstrap indices, so the
difference of two metrics' correlations has a valid (paired) interval too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

N_BOOT = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class Correlation:
    """One metric against accuracy over ``n`` designs (NaN where undefined, e.g. constant)."""

    metric: str
    n: int
    spearman: float
    spearman_ci: tuple[float, float]
    kendall: float
    kendall_ci: tuple[float, float]
    boot_spearman: np.ndarray = field(repr=False, compare=False)  # one value per resample

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: metric, n, spearman, spearman_ci, kendall, kendall_ci (NaN → None)."""
        return {"metric": self.metric, "n": self.n, "spearman": finite(self.spearman),
                "spearman_ci": [finite(v) for v in self.spearman_ci],
                "kendall": finite(self.kendall), "kendall_ci": [finite(v) for v in self.kendall_ci]}


def finite(v: float) -> float | None:
    """``v`` rounded to 4 decimals, or None when it is NaN or infinite (JSON has neither)."""
    return round(float(v), 4) if math.isfinite(v) else None


def _ranks(a: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (-inf sorts first; ties share their mean rank)."""
    return stats.rankdata(a, axis=-1)


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman ρ of each row of ``x`` with the same row of ``y`` (B x n → B); NaN if constant."""
    rx, ry = _ranks(x), _ranks(y)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    den = np.sqrt((rx * rx).sum(-1) * (ry * ry).sum(-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (rx * ry).sum(-1) / den, np.nan)


def kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall τ-b of each row of ``x`` with the same row of ``y`` (B x n → B); NaN if constant."""
    rx, ry = _ranks(x), _ranks(y)  # ranks keep the order and make ±inf safe to subtract
    sx = np.sign(rx[..., :, None] - rx[..., None, :])
    sy = np.sign(ry[..., :, None] - ry[..., None, :])
    den = np.sqrt((sx * sx).sum((-1, -2)) * (sy * sy).sum((-1, -2)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (sx * sy).sum((-1, -2)) / den, np.nan)


def bootstrap_indices(n: int, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """``n_boot`` x ``n`` indices drawn with replacement (seeded)."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of the finite ``samples`` (NaN, NaN if there are none)."""
    s = samples[np.isfinite(samples)]
    if s.size == 0:
        return (math.nan, math.nan)
    lo, hi = np.quantile(s, [(1 - level) / 2, (1 + level) / 2])
    return (float(lo), float(hi))


def _point(fn: Any, x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(fn(_ranks(x), y).statistic)


def correlate(scores: Mapping[str, Sequence[float]], accuracies: Sequence[float], *,
              n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL,
              kendall_boot: bool = True) -> dict[str, Correlation]:
    """Spearman and Kendall of every ``scores`` metric with ``accuracies`` → {metric: Correlation}.

    Designs whose score or accuracy is NaN are left out for that metric (``n`` says how many
    remain); ±inf is a valid extreme. All metrics share the bootstrap indices (``seed``).
    ``kendall_boot=False`` skips Kendall's O(B·n²) resampling (interval NaN).
    """
    acc = np.asarray(accuracies, dtype=np.float64)
    idx = bootstrap_indices(len(acc), n_boot, seed) if len(acc) else np.zeros((0, 0), int)
    out: dict[str, Correlation] = {}
    for metric, values in scores.items():
        v = np.asarray(values, dtype=np.float64)
        if v.shape != acc.shape:
            raise ValueError(f"{metric}: {v.shape[0]} scores for {acc.shape[0]} accuracies")
        ok = ~np.isnan(v) & ~np.isnan(acc)
        x, y = v[ok], acc[ok]
        n = int(ok.sum())
        if n < 3:
            nan2 = (math.nan, math.nan)
            out[metric] = Correlation(metric, n, math.nan, nan2, math.nan, nan2,
                                      np.full(n_boot, np.nan))
            continue
        # paired with the other metrics unless NaNs removed designs from this one
        sub = idx if n == len(acc) else bootstrap_indices(n, n_boot, seed)
        bx, by = x[sub], y[sub]
        boot_rho = spearman_rows(bx, by)
        boot_tau = kendall_rows(bx, by) if kendall_boot else np.full(n_boot, np.nan)
        out[metric] = Correlation(metric, n, _point(stats.spearmanr, x, y), interval(boot_rho, level),
                                  _point(stats.kendalltau, x, y), interval(boot_tau, level), boot_rho)
    return out
