"""Pre-screening with a zero-cost proxy: score designs, decide whether to trust the proxy, pick.

In: a search space, candidate params, proxy data (a callable ``resolution → DataSplits``,
e.g. ``Evaluator.data``), and for the decision the scores and accuracies of the run's
completed trials. Out: proxy scores per design, a :class:`PrescreenDecision` (on/off, why,
and the correlations behind it), and the index of the candidate to train.

The rule (:func:`decide`): the pre-screen turns on only when, over at least ``min_trials``
completed trials, the proxy's Spearman ρ with accuracy exceeds the better of |ρ(params)|
and |ρ(MACs)| by at least ``margin`` (default 0.1) AND the proxy beats both in at least
``confidence`` (default 90 %) of paired bootstrap resamples. Why these numbers: on
NAS-Bench-201 the best proxies (synflow 0.74-0.76) only tie FLOPs/params (0.69-0.75), a
gap under 0.1, and ZiCo found no proxy that beats #params consistently; a proxy that
merely ties the free cost metrics must stay off. With 10-20 designs the 95 % bootstrap
interval of one ρ is 0.5-0.8 wide, so the point gap alone is noise; the paired resampling
asks whether the gap survives that noise. Costs enter as |ρ| because a cost predicts in
either direction, while the pre-screen always trains the proxy's highest score.
:func:`decide_auto` (``--prescreen-proxy auto``, the default) applies the rule to each
proxy with the confidence Bonferroni-corrected for trying several and takes the one that
leads most among those that pass.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from nasl.common import vocab
from nasl.common.errors import NaslError
from nasl.zerocost.measures import check_names, compute
from nasl.zerocost.stats import N_BOOT, Correlation, correlate, interval

DEFAULT_PROXY = vocab.DEFAULT_PRESCREEN_PROXY
DEFAULT_MARGIN = 0.1
DEFAULT_CONFIDENCE = 0.9
DEFAULT_MIN_TRIALS = 10
DEFAULT_BATCH = 64
COST_METRICS = ("params", "macs")


@dataclass(frozen=True)
class PrescreenDecision:
    """Whether to pre-screen with ``proxy``, the reason in words, and the numbers behind it."""

    on: bool
    reason: str
    proxy: str
    n: int
    margin: float
    min_trials: int
    confidence: float
    delta: float  # ρ(proxy) - max(|ρ(params)|, |ρ(MACs)|)
    delta_ci: tuple[float, float]
    p_better: float  # share of paired resamples where the proxy beats both costs
    correlations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (for env.json / report.html): every field, NaN → None."""
        def f(v: float) -> float | None:
            return round(float(v), 4) if math.isfinite(v) else None

        return {"on": self.on, "reason": self.reason, "proxy": self.proxy, "n": self.n,
                "margin": self.margin, "min_trials": self.min_trials,
                "confidence": self.confidence, "delta": f(self.delta),
                "delta_ci": [f(v) for v in self.delta_ci], "p_better": f(self.p_better),
                "correlations": self.correlations}


def _pct(x: float) -> str:
    """0.9 → '90%', 0.975 → '97.5%'."""
    return f"{x:.1%}".replace(".0%", "%")


def _nanmax(*xs: float) -> float:
    vals = [x for x in xs if not math.isnan(x)]
    return max(vals) if vals else math.nan


def decide(scores: Mapping[str, Sequence[float]], accuracies: Sequence[float],
           proxy: str, margin: float = DEFAULT_MARGIN,
           min_trials: int = DEFAULT_MIN_TRIALS, *, confidence: float = DEFAULT_CONFIDENCE,
           n_boot: int = N_BOOT, seed: int = 0,
           corr: Mapping[str, Correlation] | None = None) -> PrescreenDecision:
    """Turn the pre-screen on or off from the completed trials (see the module doc for the rule).

    ``scores`` must hold ``proxy``, ``"params"`` and ``"macs"``, one value per completed
    trial, aligned with ``accuracies``; other metrics are correlated and reported too.
    ``corr``: ``correlate(scores, accuracies, n_boot=n_boot, seed=seed)`` when the caller
    already has it (several decisions on the same scores share one bootstrap).
    """
    missing = [k for k in (proxy, *COST_METRICS) if k not in scores]
    if missing:
        raise ValueError(f"decide: scores lack {missing}; have {sorted(scores)}")
    if corr is None:
        corr = correlate(scores, accuracies, n_boot=n_boot, seed=seed, kendall_boot=True)
    table = {k: c.to_dict() for k, c in corr.items()}
    n = corr[proxy].n
    rho = corr[proxy].spearman
    base = _nanmax(*(abs(corr[m].spearman) for m in COST_METRICS))
    delta = rho - base if not math.isnan(base) else rho
    bp = corr[proxy].boot_spearman
    bc = np.fmax(np.abs(corr["params"].boot_spearman), np.abs(corr["macs"].boot_spearman))
    bd = bp - np.where(np.isnan(bc), 0.0, bc)
    finite = bd[np.isfinite(bd)]
    p_better = float((finite > 0).mean()) if finite.size else math.nan
    d_ci = interval(bd)

    def off(why: str) -> PrescreenDecision:
        return PrescreenDecision(False, why, proxy, n, margin, min_trials, confidence, delta,
                                 d_ci, p_better, table)

    best_cost = max(COST_METRICS, key=lambda m: -1 if math.isnan(corr[m].spearman)
                    else abs(corr[m].spearman))
    if n < min_trials:
        return off(f"off: {n} completed trials, the pre-screen needs at least {min_trials}")
    if math.isnan(rho):
        return off(f"off: {proxy} has no rank correlation with accuracy (constant or undefined)")
    vs = f"{proxy} ρ={rho:.2f} vs {best_cost} |ρ|={base:.2f} over {n} trials"
    if not delta >= margin:
        return off(f"off: {vs}; needs a lead of {margin:.2f}, has {delta:+.2f}")
    if not p_better >= confidence:
        return off(f"off: {vs}; leads by {delta:+.2f} but only in {p_better:.0%} of bootstrap "
                   f"resamples (needs {_pct(confidence)})")
    return PrescreenDecision(True, f"on: {vs}; leads by {delta:+.2f} in {p_better:.0%} of "
                                   "bootstrap resamples", proxy, n, margin, min_trials,
                             confidence, delta, d_ci, p_better, table)


def decide_auto(scores: Mapping[str, Sequence[float]], accuracies: Sequence[float],
                proxies: Sequence[str], margin: float = DEFAULT_MARGIN,
                min_trials: int = DEFAULT_MIN_TRIALS, *, confidence: float = DEFAULT_CONFIDENCE,
                n_boot: int = N_BOOT, seed: int = 0,
                corr: Mapping[str, Correlation] | None = None) -> PrescreenDecision:
    """``--prescreen-proxy auto``: the rule of :func:`decide` for each of ``proxies``, with the
    confidence Bonferroni-corrected for trying several (``1 - (1 - confidence) / k``); on
    with the proxy that leads the cost metrics most among those that pass, else off with the
    reason of the most promising one. Which proxy works depends on the space (measured:
    naswot on ShuffleNet, synflow on MobileNet; docs/benchmarks.md)."""
    if not proxies:
        raise ValueError("decide_auto: no proxies")
    k = len(proxies)
    conf = 1.0 - (1.0 - confidence) / k
    if corr is None:
        corr = correlate(scores, accuracies, n_boot=n_boot, seed=seed, kendall_boot=True)
    each = [decide(scores, accuracies, p, margin, min_trials, confidence=conf, n_boot=n_boot,
                   seed=seed, corr=corr) for p in proxies]

    def lead(d: PrescreenDecision) -> float:
        return d.delta if math.isfinite(d.delta) else -math.inf

    passed = [d for d in each if d.on]
    best = max(passed or each, key=lead)
    tried = f"auto, best of {', '.join(proxies)} at {_pct(conf)} confidence"
    return dataclasses.replace(best, reason=f"{best.reason} ({tried})")


def pick(candidate_scores: Sequence[float]) -> int:
    """Index of the candidate with the highest proxy score (NaN never wins; ties → first)."""
    if not candidate_scores:
        raise ValueError("pick: no candidates")
    valid = [(v, -i) for i, v in enumerate(candidate_scores) if not math.isnan(v)]
    return -max(valid)[1] if valid else 0


def fixed_batch(data: Any, batch_size: int = DEFAULT_BATCH, seed: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded batch of ``batch_size`` training images and labels (global RNG untouched)."""
    n = int(data.train_x.shape[0])
    if n < 2:
        raise NaslError(f"{data.name}: {n} training images; zero-cost proxies need at least 2")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(n, generator=g)[:batch_size]
    return data.train_x[idx], data.train_y[idx]


def score_design(space: Any, params: Mapping[str, Any], data_for: Callable[[int], Any],
                 names: Sequence[str], *, seed: int = 0,
                 batch_size: int = DEFAULT_BATCH) -> dict[str, float]:
    """Proxies of one design at the proxy size (proxy resolution × ρ, the data's classes).

    ``data_for(resolution)`` returns the proxy data at that resolution (``Evaluator.data``).
    The network is built with ``seed`` and scored on :func:`fixed_batch` (same ``seed``).
    """
    from nasl.network.builder import build_model

    names = check_names(names)
    data = data_for(space.proxy_arch(params, 1, 3).input_size)
    arch = space.proxy_arch(params, data.num_classes, data.in_channels)
    x, y = fixed_batch(data, batch_size, seed)
    return compute(build_model(arch, seed=seed), x, y, names, seed=seed)


def sample_feasible(space: Any, n: int, seed: int, fits: Callable[[dict[str, Any]], bool],
                    max_tries: int = 2000) -> list[dict[str, Any]]:
    """Up to ``n`` random params (uniform over the space, seeded) that ``fits`` accepts."""
    from nasl.space.model import RandomTrial

    rng, out = random.Random(seed), []
    for _ in range(max_tries):
        if len(out) == n:
            break
        p = space.sample(RandomTrial(rng))
        if fits(p):
            out.append(p)
    return out


def choose(space: Any, candidates: Sequence[Mapping[str, Any]], data_for: Callable[[int], Any],
           proxy: str, *, seed: int = 0, batch_size: int = DEFAULT_BATCH
           ) -> tuple[int, list[float]]:
    """Score every candidate with ``proxy`` → (index of the one to train, all scores)."""
    scores = [score_design(space, c, data_for, (proxy,), seed=seed, batch_size=batch_size)[proxy]
              for c in candidates]
    return pick(scores), scores
