"""Noise-aware statistics for accuracy, latency and the Pareto front (numpy/scipy only).

In: seed accuracies per trial, latency rounds per design, and rows of (mean accuracy, its
standard error, MACs, latency). Out: frozen dataclasses whose ``to_dict()`` goes straight
into trials.csv / pareto.json / the report / W&B. No torch, no optuna.

The rules (stated once, used everywhere):

* **Seed statistics.** A trial trained with seeds ``a_1..a_n`` has mean ``m``, sample std
  ``s`` (ddof 1) and a 95 % t-interval ``m ± t(n-1) · s / √n``. With one seed, the run's
  pooled seed std ``s_p`` (over every trial with ≥ 2 seeds, ``√(Σ (n_i-1) s_i² / Σ (n_i-1))``)
  stands in, with its degrees of freedom. With ≥ 2 seeds the std used is ``max(s, s_p)``:
  two seeds that agree by chance do not make a design certain.
* **Tied accuracy.** Two trials are *tied within noise* when
  ``|m_a - m_b| <= 2 · √(se_a² + se_b²)`` (twice the combined standard error, about a
  two-sided 95 % z-test). An unknown standard error (one seed, no pool) always ties.
* **Latency.** Each design's interleaved rounds give a median and a distribution-free
  order-statistic interval for it (binomial ranks, ≥ 95 % coverage when the rounds allow).
  Two designs *cannot be told apart* when the interval of the paired round-by-round
  differences holds 0 (equal round counts: the rounds were interleaved), else when their
  intervals overlap.
* **Front.** Non-dominance on the means is the front (``nasl.stats.pareto.non_dominated``); see
  :func:`front_confidence` for ties with cheaper members, baseline verdicts and the knee.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

__all__ = [
    "BaselineVerdict",
    "Candidate",
    "FrontConfidence",
    "LatencyStats",
    "MemberVerdict",
    "front_confidence",
    "latency_summary",
    "latency_tied",
    "latency_ties",
    "pick_confident",
    "SeedStats",
    "combined_se",
    "pooled_df",
    "pooled_std",
    "RunSeedStats",
    "run_seed_stats",
    "seed_summary",
    "tied",
    "TIE_FACTOR",
]

#: ``k`` of the tie rule ``|Δ| <= k · combined standard error``.
TIE_FACTOR = 2.0


@dataclass(frozen=True)
class SeedStats:
    """One trial's accuracy over its seeds (same unit as the inputs, e.g. % or 0..1).

    ``std`` is the trial's own sample std (nan with one seed); ``sd_used`` is the std behind
    ``se`` and the interval (own, pooled, or the larger of both); ``df`` its degrees of
    freedom; ``pooled`` whether the pool supplied it. ``low``/``high``: the ``level``
    t-interval of the mean (nan when no std is known).
    """

    values: tuple[float, ...]
    n: int
    mean: float
    std: float
    sd_used: float
    se: float
    df: int
    low: float
    high: float
    level: float
    pooled: bool

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["values"] = list(self.values)
        return d


def _groups(groups: Sequence[Sequence[float]]) -> list[np.ndarray]:
    return [np.asarray(g, dtype=float).ravel() for g in groups]


def pooled_df(groups: Sequence[Sequence[float]]) -> int:
    """Degrees of freedom of the pooled seed std: Σ (n_i - 1) over groups with n_i ≥ 2."""
    return int(sum(len(g) - 1 for g in _groups(groups) if len(g) >= 2))


def pooled_std(groups: Sequence[Sequence[float]]) -> float:
    """Pooled within-trial (seed) std over the groups (trials) with ≥ 2 values; nan if none.

    ``√(Σ_i (n_i - 1) s_i² / Σ_i (n_i - 1))`` with ``s_i`` the sample std (ddof 1) of group i.
    """
    gs = [g for g in _groups(groups) if len(g) >= 2]
    if not gs:
        return float("nan")
    ss = sum(float(((g - g.mean()) ** 2).sum()) for g in gs)
    return math.sqrt(ss / sum(len(g) - 1 for g in gs))


def seed_summary(values: Sequence[float], *, pooled_sd: float | None = None,
                 pooled_dof: int | None = None, level: float = 0.95) -> SeedStats:
    """Mean, std and ``level`` t-interval of one trial's seed accuracies -> SeedStats.

    ``pooled_sd``/``pooled_dof``: the run's pooled seed std and its degrees of freedom
    (:func:`pooled_std`, :func:`pooled_df`); used alone with one seed and as a floor with
    more. Without ``pooled_dof`` the pool counts as well known (normal quantile).
    """
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError("seed_summary needs at least one finite value")
    if not 0 < level < 1:
        raise ValueError(f"level={level!r}; expected a number between 0 and 1")
    n, mean = int(v.size), float(v.mean())
    own = float(v.std(ddof=1)) if n >= 2 else float("nan")
    has_pool = pooled_sd is not None and math.isfinite(pooled_sd)
    pool_df = pooled_dof if pooled_dof is not None and pooled_dof >= 1 else None
    if has_pool and (n == 1 or pooled_sd > own):  # type: ignore[operator]
        sd, df, pooled = float(pooled_sd), pool_df, True  # type: ignore[arg-type]
    else:
        sd, df, pooled = own, n - 1, False
    se = sd / math.sqrt(n) if math.isfinite(sd) else float("nan")
    if math.isfinite(se):
        q = float(sps.t.ppf(0.5 + level / 2, df)) if df else float(sps.norm.ppf(0.5 + level / 2))
        low, high = mean - q * se, mean + q * se
    else:
        low = high = float("nan")
    return SeedStats(tuple(float(x) for x in v), n, mean, own, sd, se, int(df or 0), low, high,
                     level, pooled)


@dataclass(frozen=True)
class RunSeedStats:
    """Every trial's SeedStats plus the run's pooled seed std and its degrees of freedom."""

    trials: dict[str, SeedStats]
    pooled_sd: float
    pooled_df: int

    def to_dict(self) -> dict[str, object]:
        return {"pooled_sd": self.pooled_sd, "pooled_df": self.pooled_df,
                "trials": {k: v.to_dict() for k, v in self.trials.items()}}


def run_seed_stats(by_trial: dict[str, Sequence[float]], level: float = 0.95) -> RunSeedStats:
    """Seed accuracies keyed by trial -> pooled std over the run and each trial's summary
    (one-seed trials borrow the pool; see :func:`seed_summary`)."""
    groups = list(by_trial.values())
    sd, df = pooled_std(groups), pooled_df(groups)
    return RunSeedStats({k: seed_summary(v, pooled_sd=sd, pooled_dof=df, level=level)
                         for k, v in by_trial.items()}, sd, df)


def _mean_se(x: SeedStats | tuple[float, float]) -> tuple[float, float]:
    if isinstance(x, SeedStats):
        return x.mean, x.se
    mean, se = x
    return float(mean), float(se)


def combined_se(a: SeedStats | tuple[float, float], b: SeedStats | tuple[float, float]) -> float:
    """√(se_a² + se_b²) of two (mean, se) pairs or SeedStats (nan if either is unknown)."""
    return math.hypot(_mean_se(a)[1], _mean_se(b)[1])


def tied(a: SeedStats | tuple[float, float], b: SeedStats | tuple[float, float],
         k: float = TIE_FACTOR) -> bool:
    """True when the means of ``a`` and ``b`` differ by no more than ``k`` combined standard
    errors (``k`` = 2 by default); an unknown (nan) standard error always ties."""
    (ma, _), (mb, _) = _mean_se(a), _mean_se(b)
    se = combined_se(a, b)
    if not math.isfinite(se):
        return True
    return abs(ma - mb) <= k * se


from nasl.stats.latency_stats import LatencyStats, latency_summary, latency_tied, latency_ties  # noqa: E402

# ---------------------------------------------------------------- the front


@dataclass(frozen=True)
class Candidate:
    """One trial as the front sees it: accuracy mean and its standard error (any unit, the
    same for all rows), target MACs, latency (or None) and whether it is a baseline."""

    name: str
    accuracy: float
    accuracy_se: float
    macs: float
    latency: LatencyStats | None = None
    baseline: bool = False


@dataclass(frozen=True)
class MemberVerdict:
    """A front member: ``confident`` unless its accuracy is tied within noise with a
    cheaper confident member (``tied_to``, the cheapest such); ``tied_cheaper`` lists every
    cheaper front member it is tied with."""

    name: str
    confident: bool
    tied_to: str | None
    tied_cheaper: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "tied_cheaper": list(self.tied_cheaper)}


@dataclass(frozen=True)
class BaselineVerdict:
    """For one baseline: searched designs that beat it beyond noise (higher accuracy beyond
    noise, MACs no higher, latency not slower beyond noise) and those as accurate within
    noise at strictly fewer MACs (latency not slower beyond noise)."""

    name: str
    beaten_by: tuple[str, ...]
    matched_cheaper_by: tuple[str, ...]

    @property
    def beaten(self) -> bool:
        return bool(self.beaten_by)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "beaten": self.beaten, "beaten_by": list(self.beaten_by),
                "matched_cheaper_by": list(self.matched_cheaper_by)}


@dataclass(frozen=True)
class FrontConfidence:
    """The front on the means with its noise: members (cheapest first), baselines, latency
    pairs that cannot be told apart, and the knee among the confident members."""

    objectives: tuple[str, ...]
    front: tuple[str, ...]
    members: tuple[MemberVerdict, ...]
    baselines: tuple[BaselineVerdict, ...]
    latency_ties: tuple[tuple[str, str], ...]
    knee: str | None
    rule: str

    @property
    def confident(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.members if m.confident)

    def member(self, name: str) -> MemberVerdict:
        return next(m for m in self.members if m.name == name)

    def to_dict(self) -> dict[str, object]:
        return {"objectives": list(self.objectives), "front": list(self.front),
                "confident": list(self.confident), "knee": self.knee, "rule": self.rule,
                "members": [m.to_dict() for m in self.members],
                "baselines": [b.to_dict() for b in self.baselines],
                "latency_ties": [list(p) for p in self.latency_ties]}


_DIRS = {"accuracy": "maximize", "macs": "minimize", "latency_ms": "minimize"}
RULE = (f"accuracies tied when |difference| <= {TIE_FACTOR:g} x the combined standard error "
        "sqrt(se_a^2 + se_b^2); latencies tied when the order-statistic interval of the "
        "paired round differences (or the two medians' intervals) holds 0 (overlap)")


def _points(rows: Sequence[Candidate], objectives: Sequence[str]) -> list[list[float]]:
    get = {"accuracy": lambda r: r.accuracy, "macs": lambda r: r.macs,
           "latency_ms": lambda r: r.latency.median}  # type: ignore[union-attr]
    return [[float(get[o](r)) for o in objectives] for r in rows]


def _not_slower(a: Candidate, b: Candidate, use_latency: bool) -> bool:
    """``a``'s latency is not beyond noise above ``b``'s (always True without latency)."""
    if not use_latency or a.latency is None or b.latency is None:
        return True
    return a.latency.median <= b.latency.median or latency_tied(a.latency, b.latency)


def _acc(r: Candidate) -> tuple[float, float]:
    return r.accuracy, r.accuracy_se


def front_confidence(rows: Sequence[Candidate], objectives: Sequence[str] = ("accuracy", "macs"),
                     k: float = TIE_FACTOR) -> FrontConfidence:
    """Front on the means + ties within noise + baseline verdicts + knee -> FrontConfidence.

    ``objectives``: ``accuracy`` and ``macs``, optionally ``latency_ms`` (then every row
    needs ``latency``). Members are visited cheapest first (MACs, then latency median); a
    member is *not confident* when a cheaper-or-equal confident member (MACs no higher,
    latency not slower beyond noise) has an accuracy tied within noise with it or higher.
    Baseline verdicts consider every searched (non-baseline) row, on the front or not. The
    knee is ``nasl.stats.pareto.knee`` over the confident members only.
    """
    from nasl.stats.pareto import knee, non_dominated

    objectives = tuple(objectives)
    if set(objectives) - set(_DIRS) or "accuracy" not in objectives or "macs" not in objectives:
        raise ValueError(f"objectives {objectives}: expected accuracy, macs and optionally "
                         "latency_ms")
    names = [r.name for r in rows]
    if len(set(names)) != len(names):
        raise ValueError("front_confidence: row names must be unique")
    use_lat = "latency_ms" in objectives
    if use_lat and any(r.latency is None for r in rows):
        raise ValueError("front_confidence: latency_ms is an objective but a row has no latency")
    dirs = [_DIRS[o] for o in objectives]
    front_idx = non_dominated(_points(rows, objectives), dirs) if rows else []
    order = sorted(front_idx, key=lambda i: (rows[i].macs,
                                             rows[i].latency.median if rows[i].latency else 0.0,
                                             -rows[i].accuracy, i))
    members: list[MemberVerdict] = []
    confident: list[Candidate] = []
    for i in order:
        m = rows[i]
        cheaper = [rows[j] for j in order if j != i and rows[j].macs <= m.macs
                   and (rows[j].macs < m.macs or order.index(j) < order.index(i))
                   and _not_slower(rows[j], m, use_lat)]
        tied_all = tuple(c.name for c in cheaper if tied(_acc(c), _acc(m), k))
        blockers = [c for c in confident if c in cheaper and
                    (tied(_acc(c), _acc(m), k) or c.accuracy >= m.accuracy)]
        tied_to = min(blockers, key=lambda c: (c.macs, c.name)).name if blockers else None
        members.append(MemberVerdict(m.name, tied_to is None, tied_to, tied_all))
        if tied_to is None:
            confident.append(m)
    searched = [r for r in rows if not r.baseline]
    verdicts = []
    for b in (r for r in rows if r.baseline):
        ok = [s for s in searched if s.macs <= b.macs and _not_slower(s, b, use_lat)]
        beat = tuple(s.name for s in ok if s.accuracy > b.accuracy and not tied(_acc(s), _acc(b), k))
        match = tuple(s.name for s in ok if s.macs < b.macs and s.name not in beat
                      and (tied(_acc(s), _acc(b), k) or s.accuracy > b.accuracy))
        verdicts.append(BaselineVerdict(b.name, beat, match))
    lat = {rows[i].name: rows[i].latency for i in order if rows[i].latency is not None}
    knee_name = None
    if confident:
        knee_name = confident[knee(_points(confident, objectives), dirs)].name
    return FrontConfidence(objectives, tuple(rows[i].name for i in order), tuple(members),
                           tuple(verdicts), tuple(latency_ties(lat)), knee_name,  # type: ignore[arg-type]
                           RULE.replace(f"{TIE_FACTOR:g} x", f"{k:g} x"))


def pick_confident(fc: FrontConfidence, rows: Sequence[Candidate], how: str = "knee") -> str:
    """Name of the confident member chosen by ``how``: ``knee`` (:attr:`FrontConfidence.knee`)
    or an objective of ``fc`` (best confident member in it, e.g. ``accuracy`` gives the
    cheapest design within noise of the best accuracy on the confident chain)."""
    from nasl.stats.pareto import pick

    if how == "knee":
        if fc.knee is None:
            raise ValueError("pick from an empty front")
        return fc.knee
    chosen = [r for r in rows if r.name in set(fc.confident)]
    if not chosen:
        raise ValueError("pick from an empty front")
    dirs = [_DIRS[o] for o in fc.objectives]
    return chosen[pick(_points(chosen, fc.objectives), dirs, how, list(fc.objectives))].name
