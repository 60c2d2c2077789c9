"""Search strategies scored exactly on a tabular space (issue 23): hypervolume regret and IGD.

Usage:
    nice -n 10 python bench/bench_strategy.py --seeds 10 --n 200 \
        --strategies random,tpe-default,tpe-nasl --out bench/results/strategy.json
    python bench/bench_strategy.py --table bench/results/strategy.json   # markdown only
    nice -n 10 python bench/bench_strategy.py --seeds 10 --n 100 --strategies tpe-pick8-top3-ext  # helper 23c

Every run drives Optuna directly, the way ``nasl search`` samples: the sampler comes from
nasl's factory (``nasl.search.study.make_sampler``) or is built here for the variants, the
design from ``space.sample(trial)`` of the shipped ``nb201`` space, and its objectives from
the space's table (``space.to_arch(params)``: the lookup ``nasl search`` uses). One run of N_max
evaluations per (strategy, device, seed) is scored after 25, 50, 100, 200 evaluations.

Scores (accuracy ↑, latency ↓), on objectives normalised to [0, 1] per device: accuracy
(acc - 80 %) / (max acc - 80 %), latency (lat - min) / (max - min); the reference point is
(80 % accuracy, the table's largest latency), as in the table's README. Hypervolume regret
= 1 - HV(evaluated) / HV(true front of the whole table); IGD = mean distance from each true
front point to the nearest evaluated point (normalised units). Intervals: 95 % t-interval of
the mean over seeds; a bootstrap of the difference of means against random search and
Optuna's default TPE decides "beats beyond noise".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from nasl.search.pick import front_of, hv_gain  # the sampler's own (nasl --sampler pick)
from nasl.search.pickfeatures import FeatureKernel  # helper 23d: path and op-count features
from nasl.search.study import make_sampler
from nasl.space import load_space
from nasl.space.table import index

DEVICES = ("raspi4", "pixel3", "gold_6226", "1080ti_1")
CHECKPOINTS = (25, 50, 100, 200)
ACC_REF = 0.80
NOISE = {"std": 0.0}  # --noise: std of the accuracy the searches see (scores use the true values)
ACC_TOLD = 1.0  # accuracy is told to Optuna × this (100 with --percent: in %, as the table has it)


# ---------------------------------------------------------------- ground truth and scores
class Truth:
    """One device's table: design → (accuracy, latency), the normalisation and the true front."""

    def __init__(self, device: str):
        over: dict[str, Any] = {"table.device": device}
        if NOISE["std"] > 0:  # --noise: the searches see seeded noisy accuracies; scores use the table's
            over["table.noise"] = {"std": NOISE["std"]}
        self.space = load_space("nb201").with_overrides(over)
        rows = index(self.space.spec)
        self.lookup = {k: (r.values["accuracy"], r.values["latency_ms"]) for k, r in rows.items()}
        pts = np.array(list(self.lookup.values()))
        self.acc_max, self.lat_min, self.lat_max = pts[:, 0].max(), pts[:, 1].min(), pts[:, 1].max()
        self.front = front_of(self.norm(pts))
        self.hv_true = hv2(self.front)

    def norm(self, pts: np.ndarray) -> np.ndarray:
        """(accuracy, latency) → loss in [0, 1]²: (1 - acc_n, lat_n); ref point (1, 1)."""
        acc_n = (pts[:, 0] - ACC_REF) / (self.acc_max - ACC_REF)
        lat_n = (pts[:, 1] - self.lat_min) / (self.lat_max - self.lat_min)
        return np.stack([1 - acc_n, lat_n], axis=1)

    def scores(self, evaluated: list[tuple[float, float]]) -> tuple[float, float]:
        """(hypervolume regret, IGD) of the evaluated points."""
        loss = self.norm(np.array(evaluated))
        regret = 1 - hv2(front_of(loss)) / self.hv_true
        d = np.sqrt(((self.front[:, None, :] - loss[None, :, :]) ** 2).sum(-1)).min(1)
        return float(regret), float(d.mean())


def hv2(front: np.ndarray, ref: tuple[float, float] = (1.0, 1.0)) -> float:
    """2-D hypervolume of a sorted front (minimised) against ``ref``."""
    pts = front[(front[:, 0] < ref[0]) & (front[:, 1] < ref[1])]
    hv, prev = 0.0, ref[1]
    for x, y in pts:
        hv += (ref[0] - x) * (prev - y)
        prev = y
    return float(hv)


# ---------------------------------------------------------------- strategies
def _quiet(fn: Callable[[], Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


TPE = optuna.samplers.TPESampler
STRATEGIES: dict[str, Callable[[int], Any]] = {
    "random": lambda s: make_sampler("random", s),
    "tpe-nasl": lambda s: make_sampler("tpe", s),  # multivariate, group, constant liar, 10 start-up
    "tpe-default": lambda s: TPE(seed=s),
    "tpe-mv": lambda s: _quiet(lambda: TPE(seed=s, multivariate=True)),
    "tpe-mv-s5": lambda s: _quiet(lambda: TPE(seed=s, multivariate=True, n_startup_trials=5)),
    "tpe-mv-s20": lambda s: _quiet(lambda: TPE(seed=s, multivariate=True, n_startup_trials=20)),
    "tpe-default-s20": lambda s: TPE(seed=s, n_startup_trials=20),
    "tpe-nasl-s5": lambda s: make_sampler("tpe", s, n_startup=5),
    "nsga2-p10": lambda s: optuna.samplers.NSGAIISampler(seed=s, population_size=10),
    "nsga2-p25": lambda s: optuna.samplers.NSGAIISampler(seed=s, population_size=25),
    "nsga2-p50": lambda s: optuna.samplers.NSGAIISampler(seed=s, population_size=50),
    "nsga3-p25": lambda s: optuna.samplers.NSGAIIISampler(seed=s, population_size=25),
    "gp": lambda s: _quiet(lambda: optuna.samplers.GPSampler(seed=s)),
    # candidates proposed by CostAware below (pool size, kappa); Optuna's sampler only samples
    # the start-up designs and then takes the enqueued ones
    "cost-rf": lambda s: make_sampler("random", s),
    "cost-rf-p2000": lambda s: make_sampler("random", s),
    "cost-rf-p2000-k0": lambda s: make_sampler("random", s),
    "cost-rf-p2000-k2": lambda s: make_sampler("random", s),
    "pls": lambda s: make_sampler("random", s),  # start-up designs; then LocalSearch below
    "pls-cost": lambda s: make_sampler("random", s),
    "cost-gp": lambda s: make_sampler("random", s),  # start-up designs; then CostGP below
    # hybrids: nasl's TPE proposes; from trial M on, Pareto local search proposes every E-th trial
    "tpe-pls20": lambda s: make_sampler("tpe", s),
    "tpe-pls20-alt": lambda s: make_sampler("tpe", s),
    "tpe-pls50": lambda s: make_sampler("tpe", s),
    "tpe-pls30-alt": lambda s: make_sampler("tpe", s),
    "tpe-strata4": lambda s: None,  # run_stratified: multivariate TPE + free-cost strata
    "tpe-strata8": lambda s: None,
}
LOCAL = {"pls": False, "pls-cost": True}  # Pareto local search; True: neighbour chosen by free costs
HYBRID = {"tpe-pls20": (20, 1), "tpe-pls20-alt": (20, 2), "tpe-pls50": (50, 1), "tpe-pls30-alt": (30, 2)}
def shv_options(name: str) -> dict[str, Any] | None:
    """SurrogateHV settings from a strategy name (helper 23c): ``shv`` then any of ``-l<r>``
    (candidates within r choices of the front), ``-x<e>`` (exploration ×0.e, e.g. x05 = 0.5,
    x2 = 2), ``-ext`` / ``-ext<e>`` (extrapolate above the best seen), ``-s<n>`` (start-up),
    ``-nolat`` (no latency in the kernel), ``-late`` (exploration 1.5 → 0.3), ``-r<p>`` (the
    sampler's reference accuracy p %, not the scoring's 80 %), ``-rq<p>`` (its reference = the
    p-th percentile of the accuracies seen), ``-k<groups>`` (helper 23d: the kernel on feature
    groups of nasl/search/pickfeatures.py, e.g. kHE = one-hot choices × live op counts). None: not shv."""
    if not (name == "shv" or name.startswith("shv-")):
        return None
    opts: dict[str, Any] = {}
    for part in name.split("-")[1:]:
        if part == "nolat":
            opts["lat_kernel"] = False
        elif part == "late":
            opts.update(explore=1.5, late_explore=0.3)
        elif part.startswith("ext"):
            opts["extrapolate"] = float("0." + part[4:] if part[3:4] == "0" else part[3:] or 1.0)
        elif part.startswith("rq") and part[2:].isdigit():  # reference = this quantile of the seen
            opts.update(ref=int(part[2:]) / 100, ref_is_quantile=True)
        elif part[0] == "r" and part[1:].isdigit():  # the sampler's reference accuracy, in %
            opts["ref"] = int(part[1:]) / 100
        elif part[0] == "k" and part[1:] and set(part[1:]) <= set("HCLEP"):  # helper 23d: features
            opts["groups"] = part[1:]
        elif part[0] in "lsx" and part[1:].isdigit():
            v = part[1:]
            num = float("0." + v[1:]) if v.startswith("0") and len(v) > 1 else float(v)
            opts[{"l": "local", "s": "startup", "x": "explore"}[part[0]]] = (
                int(num) if part[0] != "x" else num)
        else:
            raise SystemExit(f"--strategies: unknown shv option {part!r} in {name!r}")
    return opts


COST_AWARE = {"cost-rf": (500, 1.0), "cost-rf-p2000": (2000, 1.0), "cost-rf-p2000-k0": (2000, 0.0),
              "cost-rf-p2000-k2": (2000, 2.0)}


class CostAware:
    """Uses what is free before evaluation (the design's latency) to choose what to evaluate:
    after ``startup`` random designs, draw ``pool`` random candidates, predict each one's
    accuracy with a random forest on one-hot ops (mean + ``kappa`` × the trees' spread), and
    evaluate the candidate whose predicted point adds the most hypervolume to the front so far.
    The chosen design is enqueued, so Optuna samples it through ``space.sample`` like any trial.
    """

    def __init__(self, truth: Truth, seed: int, startup: int = 10, pool: int = 500, kappa: float = 1.0):
        self.truth, self.rng = truth, np.random.default_rng(seed)
        self.startup, self.pool, self.kappa = startup, pool, kappa
        self.keys = list(truth.lookup)
        self.ops = sorted({o for k in self.keys for o in k})

    def onehot(self, keys: list[tuple[str, ...]]) -> np.ndarray:
        idx = {o: i for i, o in enumerate(self.ops)}
        x = np.zeros((len(keys), len(keys[0]) * len(self.ops)))
        for r, k in enumerate(keys):
            for e, o in enumerate(k):
                x[r, e * len(self.ops) + idx[o]] = 1
        return x

    def propose(self, done: list[tuple[tuple[str, ...], float, float]]) -> tuple[str, ...] | None:
        if len(done) < self.startup:
            return None
        from sklearn.ensemble import ExtraTreesRegressor

        model = ExtraTreesRegressor(n_estimators=30, min_samples_leaf=2, random_state=0, n_jobs=1)
        model.fit(self.onehot([d[0] for d in done]), [d[1] for d in done])
        seen = {d[0] for d in done}
        cands = [self.keys[i] for i in self.rng.choice(len(self.keys), self.pool, replace=False)]
        cands = [c for c in cands if c not in seen]
        x = self.onehot(cands)
        per_tree = np.stack([t.predict(x) for t in model.estimators_])
        acc = per_tree.mean(0) + self.kappa * per_tree.std(0)
        lat = np.array([self.truth.lookup[c][1] for c in cands])  # free: known before training
        front = front_of(self.truth.norm(np.array([(d[1], d[2]) for d in done])))
        base = hv2(front)
        cand_loss = self.truth.norm(np.stack([acc, lat], 1))
        dominated = ((front[None, :, :] <= cand_loss[:, None, :]).all(-1)).any(1)
        open_ = np.flatnonzero(~dominated)  # only these can add hypervolume
        if len(open_) == 0:
            return cands[int(np.argmin(cand_loss.sum(1)))]
        gains = [hv2(front_of(np.vstack([front, cand_loss[i][None]]))) - base for i in open_]
        return cands[int(open_[int(np.argmax(gains))])]


class LocalSearch:
    """Pareto local search (local search is strong on NAS-Bench-201: White et al., 2021): after
    ``startup`` random designs, evaluate an unseen one-choice neighbour of a front member.
    ``use_costs``: among all such neighbours, the one whose point — its known (free) latency,
    its parent's accuracy — would add the most hypervolume; else a random front member's random
    neighbour."""

    def __init__(self, truth: Truth, seed: int, use_costs: bool, startup: int = 10, every: int = 1):
        self.truth, self.rng = truth, np.random.default_rng(seed)
        self.use_costs, self.startup, self.every = use_costs, startup, every
        self.values = [sorted({k[i] for k in truth.lookup}) for i in range(len(next(iter(truth.lookup))))]

    def neighbours(self, key: tuple[str, ...], seen: set[tuple[str, ...]]) -> list[tuple[str, ...]]:
        return [n for i, vals in enumerate(self.values) for v in vals if v != key[i]
                for n in [key[:i] + (v,) + key[i + 1:]] if n not in seen]

    def propose(self, done: list[tuple[tuple[str, ...], float, float]]) -> tuple[str, ...] | None:
        if len(done) < self.startup or (len(done) - self.startup) % self.every:
            return None
        seen = {d[0] for d in done}
        loss = self.truth.norm(np.array([(d[1], d[2]) for d in done]))
        on_front = [i for i in range(len(done))
                    if not ((loss <= loss[i]).all(1) & (loss < loss[i]).any(1)).any()]
        if not self.use_costs:
            for i in self.rng.permutation(on_front):
                nbs = self.neighbours(done[i][0], seen)
                if nbs:
                    return nbs[self.rng.integers(len(nbs))]
            return None
        front = front_of(loss)
        base = hv2(front)
        best, best_gain = None, 0.0
        cands = [(n, done[i][1]) for i in on_front for n in self.neighbours(done[i][0], seen)]
        if not cands:
            return None
        pts = self.truth.norm(np.array([(acc, self.truth.lookup[n][1]) for n, acc in cands]))
        for (n, _), p in zip(cands, pts, strict=True):
            gain = hv2(front_of(np.vstack([front, p[None]]))) - base
            if gain > best_gain:
                best, best_gain = n, gain
        return best if best is not None else cands[self.rng.integers(len(cands))][0]


def expected_gain(front: np.ndarray, y: np.ndarray, mu: np.ndarray, sd: np.ndarray,
                  samples: int = 32) -> np.ndarray:
    """Expected hypervolume gain (2-D, ref (1, 1), both minimised) of candidates whose second
    loss ``y`` is known and whose first is Normal(``mu``, ``sd``), by quadrature.

    Gain of a point (x, y) = ∫_x^1 max(0, h(u) - y) du with h the front's staircase height."""
    xs = np.concatenate([front[:, 0], [1.0]])  # knots: the front is sorted by x, y falling
    h = np.concatenate([[1.0], front[:, 1]])  # height on [knot_{k-1}, knot_k): before x_0 it is 1
    lo = np.concatenate([[-np.inf], front[:, 0]])
    hi = xs
    z = np.linspace(-2.5, 2.5, samples)
    w = np.exp(-z ** 2 / 2)
    w /= w.sum()
    x = np.clip(mu[:, None] + sd[:, None] * z[None, :], -1.0, 1.0)  # C × S
    g = np.maximum(0.0, h[None, :] - y[:, None])  # C × K
    lo_c = np.maximum(lo[None, None, :], x[:, :, None])  # C × S × K overlap of [x, 1] with [lo, hi)
    width = np.clip(hi[None, None, :] - lo_c, 0.0, None)
    gain = (width * g[:, None, :]).sum(-1)  # C × S
    return gain @ w


class CostGP:
    """Free costs + a Gaussian process: after ``startup`` random designs, fit a GP to accuracy
    (one-hot ops; accuracies below the reference clipped to it), draw ``pool`` unseen random
    candidates, and evaluate the one with the largest expected hypervolume gain — its latency
    is known before training (free), only its accuracy is uncertain. Hyper-parameters are
    re-fitted every ``refit`` evaluations."""

    def __init__(self, truth: Truth, seed: int, startup: int = 10, pool: int = 2000, refit: int = 10):
        self.truth, self.rng = truth, np.random.default_rng(seed)
        self.startup, self.pool, self.refit = startup, pool, refit
        self.keys = list(truth.lookup)
        self.ops = sorted({o for k in self.keys for o in k})
        self.kernel: Any = None

    def onehot(self, keys: list[tuple[str, ...]]) -> np.ndarray:
        """One-hot ops plus the design's log latency (free), so the GP sees costs too."""
        idx = {o: i for i, o in enumerate(self.ops)}
        x = np.zeros((len(keys), len(keys[0]) * len(self.ops) + 1))
        for r, k in enumerate(keys):
            for e, o in enumerate(k):
                x[r, e * len(self.ops) + idx[o]] = 1
            x[r, -1] = self.cost_weight * np.log(self.truth.lookup[k][1] / self.truth.lat_max)
        return x

    cost_weight = 0.0  # 0: ops only (a log-latency feature extrapolated badly: see docs)

    def propose(self, done: list[tuple[tuple[str, ...], float, float]]) -> tuple[str, ...] | None:
        if len(done) < self.startup:
            return None
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        t = self.truth
        acc = np.array([d[1] for d in done])  # unclipped: clipping at the reference hid dead cells
        refit = self.kernel is None or len(done) % self.refit == 0
        kernel = (ConstantKernel(1.0) * RBF(3.0, (1.0, 30.0)) + WhiteKernel(1e-3, (1e-6, 1e-1))
                  if refit else self.kernel)
        gp = GaussianProcessRegressor(kernel, normalize_y=True, optimizer="fmin_l_bfgs_b" if refit else None,
                                      random_state=0)
        gp.fit(self.onehot([d[0] for d in done]), acc)
        self.kernel = gp.kernel_
        seen = {d[0] for d in done}
        cands = [self.keys[i] for i in self.rng.choice(len(self.keys), self.pool, replace=False)]
        cands = [c for c in cands if c not in seen]
        mu, sd = gp.predict(self.onehot(cands), return_std=True)
        lat = np.array([t.lookup[c][1] for c in cands])  # free: known before training
        loss = t.norm(np.stack([mu, lat], 1))
        scale = 1.0 / (t.acc_max - ACC_REF)  # accuracy std in normalised loss units
        front = front_of(t.norm(np.array([(d[1], d[2]) for d in done])))
        gains = expected_gain(front, loss[:, 1], loss[:, 0], sd * scale)
        return cands[int(np.argmax(gains))]


class SurrogateHV:
    """A Gaussian process on the designs' choices and their FREE latency, and expected
    hypervolume gain with each candidate's known latency (only accuracy is uncertain).

    Kernel: σ² · exp(-Hamming(x, x') / ℓ) · exp(-(q - q')² / (2 ℓ_lat²)), q the design's latency
    quantile among the candidates; ℓ, ℓ_lat and the noise chosen on a small grid by marginal
    likelihood every 10 evaluations. Accuracies are modelled after a rank (copula) transform
    to normal scores (ties, e.g. dead designs at 10 %, share the worst rank), and a predicted
    score is mapped back through the observed accuracies (monotone interpolation): a dead
    design is just "the worst", not an outlier that inflates the variance. Above the best
    accuracy seen the map is clipped (``extrapolate`` 0: nothing can look better than the best)
    or continued with the slope of the top tenth × ``extrapolate`` (needed: without it nothing
    rewards looking for a more accurate design). Front points below the reference accuracy add
    nothing (``hv_gain``). Startup: ``startup`` designs spread over latency quantiles of the
    pool (costs are free). Candidates: all designs when ``pool`` covers the space, else
    ``pool`` random ones; ``local`` r > 0: only those within r choices of a front member.
    ``explore`` scales the predictive sd in the acquisition (0: pure exploitation)."""

    def __init__(self, truth: Truth, seed: int, startup: int = 10, pool: int = 20000,
                 lat_kernel: bool = True, explore: float = 1.0, late_explore: float | None = None,
                 extrapolate: float = 0.0, local: int = 0, ref: float | None = None,
                 ref_is_quantile: bool = False, groups: str = ""):
        self.truth, self.rng = truth, np.random.default_rng(seed)
        self.startup, self.lat_kernel, self.explore = startup, lat_kernel, explore
        self.late_explore, self.extrapolate, self.local = late_explore, extrapolate, local
        self.ref, self.ref_is_quantile = ref, ref_is_quantile  # None: ACC_REF (the scoring's)
        keys = list(truth.lookup)
        if pool < len(keys):
            keys = [keys[i] for i in self.rng.choice(len(keys), pool, replace=False)]
        self.keys = keys
        self.pos = {k: i for i, k in enumerate(keys)}
        self.values = vals = [sorted({k[i] for k in keys}) for i in range(len(keys[0]))]
        self.codes = np.array([[vals[e].index(o) for e, o in enumerate(k)] for k in keys], dtype=np.int8)
        lat = np.array([truth.lookup[k][1] for k in keys])  # free: known before training
        self.loglat = np.log(lat)  # orders the latency-stratified start
        self.latq = (np.argsort(np.argsort(lat)) + 0.5) / len(lat)  # latency quantile: the GP's cost input
        self.loss_lat = truth.norm(np.stack([np.full(len(keys), ACC_REF), lat], 1))[:, 1]
        self.hp: tuple[Any, float, float] | None = None
        self.last_ei = np.zeros(0)  # set by gains(): expected improvement of the best accuracy
        #: helper 23d: ``groups`` (e.g. "HE"): the kernel is exp(-Σ w_g D_g) over these feature
        #: groups (nasl/search/pickfeatures.py) instead of exp(-Hamming/ℓ); the weights are the "ℓ" of hp
        self.features = FeatureKernel(keys, vals, groups) if groups else None

    def kern(self, a: np.ndarray, b: np.ndarray, ell: Any, ell_lat: float) -> np.ndarray:
        if self.features is not None:  # ell: the groups' weights
            k = self.features.combine(self.features.dists(a, b), ell)
        else:
            ham = (self.codes[a][:, None, :] != self.codes[b][None, :, :]).sum(-1)
            k = np.exp(-ham / ell)
        if self.lat_kernel and ell_lat < 1e6:
            d = self.latq[a][:, None] - self.latq[b][None, :]
            k = k * np.exp(-d ** 2 / (2 * ell_lat ** 2))
        return k

    def fit_hp(self, idx: np.ndarray, z: np.ndarray) -> tuple[Any, float, float]:
        if self.features is not None:
            return self.fit_hp_features(idx, z)
        best, best_ll = (1.0, 1.0, 1e-2), -np.inf
        for ell in (0.5, 1.0, 2.0, 4.0):
            for ell_lat in ((0.02, 0.05, 0.1, 0.2, 0.5) if self.lat_kernel else (1e9,)):
                k0 = self.kern(idx, idx, ell, ell_lat)
                for noise in (1e-3, 1e-2, 1e-1):
                    k = k0 + noise * np.eye(len(idx))
                    try:
                        L = np.linalg.cholesky(k)
                    except np.linalg.LinAlgError:
                        continue
                    a = np.linalg.solve(L, z)
                    s2 = float(a @ a) / len(z)  # σ² profiled out
                    ll = -0.5 * len(z) * np.log(s2) - np.log(np.diag(L)).sum()
                    if ll > best_ll:
                        best, best_ll = (ell, ell_lat, noise), ll
        return best

    def fit_hp_features(self, idx: np.ndarray, z: np.ndarray) -> tuple[Any, float, float]:
        """(group weights, ℓ_lat, noise) by marginal likelihood (``FeatureKernel.fit``)."""
        assert self.features is not None
        return self.features.fit(idx, self.latq[idx], z, self.hp, self.lat_kernel)

    def propose(self, done: list[tuple[tuple[str, ...], float, float]]) -> tuple[str, ...] | None:

        seen = {d[0] for d in done}
        n = len(done)
        if n < self.startup:  # latency-stratified start: quantile slot n of the pool
            order = np.argsort(self.loglat)
            lo, hi = n * len(order) // self.startup, (n + 1) * len(order) // self.startup
            for _ in range(100):
                k = self.keys[order[self.rng.integers(lo, hi)]]
                if k not in seen:
                    return k
            return None
        cand = np.array([i for i in range(len(self.keys)) if self.keys[i] not in seen])
        if self.local:  # only unseen designs within ``local`` choices of a front member
            idx = np.array([self.pos[d[0]] for d in done])
            loss = self.truth.norm(np.array([(d[1], d[2]) for d in done]))
            on_front = [idx[i] for i in range(n) if loss[i, 0] < 1 and
                        not ((loss <= loss[i]).all(1) & (loss < loss[i]).any(1)).any()]
            if on_front:
                ham = (self.codes[cand][:, None, :] != self.codes[on_front][None, :, :]).sum(-1).min(1)
                if (ham <= self.local).any():
                    cand = cand[ham <= self.local]
        gains, mu = self.gains(done, cand)
        if gains.max() <= 0:
            return self.keys[cand[int(np.argmax(mu))]]
        return self.keys[cand[int(np.argmax(gains))]]

    def gains(self, done: list[tuple[tuple[str, ...], float, float]], cand: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """Expected hypervolume gain of the candidates (indices into the pool) and their
        predicted normal scores, from the GP fitted to ``done``."""
        from scipy import stats

        n = len(done)
        idx = np.array([self.pos[d[0]] for d in done])
        acc = np.array([d[1] for d in done])
        ranks = stats.rankdata(acc, method="min")  # ties (dead designs) share the worst rank
        z = stats.norm.ppf((ranks - 0.5) / n)
        if self.hp is None or n % 10 == 0:
            self.hp = self.fit_hp(idx, z)
        ell, ell_lat, noise = self.hp
        K = self.kern(idx, idx, ell, ell_lat) + noise * np.eye(n)
        L = np.linalg.cholesky(K)
        alpha = np.linalg.solve(L.T, np.linalg.solve(L, z))
        s2 = float(np.linalg.solve(L, z) @ np.linalg.solve(L, z)) / n
        ks = self.kern(cand, idx, ell, ell_lat)
        mu = ks @ alpha
        v = np.linalg.solve(L, ks.T)
        sd = np.sqrt(np.clip(s2 * (1 - (v ** 2).sum(0)), 1e-12, None))
        explore = self.explore
        if self.late_explore is not None:
            explore = self.explore + (self.late_explore - self.explore) * min(1.0, n / 100)
        gh_z, gh_w = np.polynomial.hermite_e.hermegauss(12)
        gh_w = gh_w / gh_w.sum()
        zs = mu[:, None] + explore * sd[:, None] * gh_z[None, :]
        zs_sorted, acc_sorted = np.sort(z), np.sort(acc)
        a = np.interp(zs, zs_sorted, acc_sorted)
        if self.extrapolate > 0:  # beyond the best seen: the top tenth's slope, continued
            m = max(2, n // 10)
            slope = (acc_sorted[-1] - acc_sorted[-m]) / max(1e-9, zs_sorted[-1] - zs_sorted[-m])
            a = a + self.extrapolate * slope * np.clip(zs - zs_sorted[-1], 0, None)
        t = self.truth
        ref = ACC_REF if self.ref is None else (
            float(np.quantile(acc, self.ref)) if self.ref_is_quantile else self.ref)
        # the sampler's own reference accuracy (the scoring always uses ACC_REF); loss units
        # are (best seen - ref): the argmax of the gain does not depend on the scale
        scale = max(1e-9, acc.max() - ref)
        x = 1 - (a - ref) / scale
        obs = np.array([(d[1], d[2]) for d in done])
        front = front_of(np.stack([1 - (obs[:, 0] - ref) / scale,
                                   t.norm(obs)[:, 1]], 1))
        self.last_a, self.last_w = a, gh_w  # accuracy quadrature samples (C × S) and weights
        self.last_ei = np.maximum(0.0, a - acc.max()) @ gh_w  # expected accuracy improvement
        return hv_gain(front, x, self.loss_lat[cand]) @ gh_w, mu


def neighbours_of(key: tuple[str, ...], values: list[list[str]]) -> list[tuple[str, ...]]:
    """The designs that differ from ``key`` in exactly one choice."""
    return [key[:i] + (v,) + key[i + 1:] for i, vals in enumerate(values) for v in vals if v != key[i]]


def run_tpe_pick(truth: Truth, seed: int, n: int, k: int, opts: dict[str, Any], neighbours: bool = False,
                 top_every: int = 0, caps: tuple[float, ...] = (), top_all: bool = False
                 ) -> tuple[list[tuple[tuple[str, ...], float, float]], float]:
    """nasl's TPE proposes ``k`` designs per evaluation (asked in a row; its constant liar
    spreads them); SurrogateHV's expected hypervolume gain — the GP on choices + free
    latency, each proposal's known latency — picks the one evaluated; the others are told
    FAIL (TPE ignores them). A proposal evaluated before is told its known values and not
    counted (as ``-dedup``). The first ``opts['startup']`` (10) evaluations take TPE's first
    proposal. ``neighbours``: the unseen one-choice neighbours of the front's members compete
    too (Pareto local search ranked by the same gain); when one wins, it is enqueued and
    asked. ``top_every`` m > 0: every m-th evaluation instead maximises the expected
    improvement of the best accuracy alone (latency ignored), among the proposals and the
    one-choice neighbours of the three most accurate designs: the high-accuracy end of the front
    carries the most hypervolume. ``caps``: the top steps cycle through these latency caps,
    fractions of the most accurate design's latency (1: none), and maximise the best accuracy
    under the cap (an ε-constraint scalarisation; latency is free, so the cap is exact).
    ``top_all`` (helper 23d): the top steps' candidates are every unseen design of the table.
    → the evaluated designs and the seconds spent choosing."""
    space = truth.space
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler("tpe", seed))
    model = SurrogateHV(truth, seed, **opts)
    done: list[tuple[tuple[str, ...], float, float]] = []
    known: dict[tuple[str, ...], tuple[float, float]] = {}
    asking = 0.0
    while len(done) < n:
        t = time.perf_counter()
        props: list[tuple[Any, tuple[str, ...]]] = []
        for _ in range(k if len(done) >= model.startup else 1):
            trial = study.ask()
            key = tuple(space.sample(trial)[p] for p in space.order)
            if key in known or any(key == q for _, q in props):
                old = known.get(key)
                study.tell(trial, [old[0] * ACC_TOLD, old[1]] if old else None,
                           state=None if old else optuna.trial.TrialState.FAIL)
                continue
            props.append((trial, key))
        if not props:
            asking += time.perf_counter() - t
            continue
        best, extra = 0, []
        top = top_every > 0 and len(done) >= model.startup and len(done) % top_every == 0
        cap, best_acc = np.inf, max((d[1] for d in done), default=0.0)
        if top:
            if caps:  # ε-constraint: latency ≤ a fraction of the most accurate design's
                frac = caps[(len(done) // top_every) % len(caps)]
                cap = frac * max(done, key=lambda d: d[1])[2] if frac < 1 else np.inf
            under = [d for d in done if d[2] <= cap]
            best_acc = max((d[1] for d in under), default=ACC_REF)
            taken = set(known) | {q for _, q in props}
            best3 = [d[0] for d in sorted(under, key=lambda d: -d[1])[:3]]
            extra = list(dict.fromkeys(q for f in best3 for q in neighbours_of(f, model.values)
                                       if q not in taken and truth.lookup[q][1] <= cap))
            if top_all:  # every unseen design of the table competes (its latency is free)
                extra = [q for q in model.keys if q not in taken and truth.lookup[q][1] <= cap]
        elif neighbours and len(done) >= model.startup:
            loss = truth.norm(np.array([(d[1], d[2]) for d in done]))
            front = [d[0] for i, d in enumerate(done) if loss[i, 0] < 1
                     and not ((loss <= loss[i]).all(1) & (loss < loss[i]).any(1)).any()]
            taken = set(known) | {q for _, q in props}
            extra = list(dict.fromkeys(q for f in front for q in neighbours_of(f, model.values)
                                       if q not in taken))
        if len(props) + len(extra) > 1:
            gains, _ = model.gains(done, np.array([model.pos[q] for q in [p[1] for p in props] + extra]))
            if top:
                lat_c = np.array([truth.lookup[q][1] for q in [p[1] for p in props] + extra])  # free
                ei = (np.maximum(0.0, model.last_a - best_acc) @ model.last_w) * (lat_c <= cap)
                best = int(np.argmax(ei if ei.max() > 0 else gains))
            else:
                best = int(np.argmax(gains))
        for j, (trial, _) in enumerate(props):
            if j != best:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
        if best >= len(props):  # a front neighbour won
            study.enqueue_trial(dict(zip(space.order, extra[best - len(props)], strict=True)))
            trial = study.ask()
            key = tuple(space.sample(trial)[p] for p in space.order)
        else:
            trial, key = props[best]
        asking += time.perf_counter() - t
        row = space.to_arch(dict(zip(space.order, key, strict=True)))
        acc, lat = row.accuracy(seed), row.values["latency_ms"]
        study.tell(trial, [acc * ACC_TOLD, lat])
        known[key] = (acc, lat)
        done.append((key, acc, lat))
    return done, asking


def run_stratified(truth: Truth, seed: int, n: int, strata: int = 4, tries: int = 8
                   ) -> tuple[list[tuple[tuple[str, ...], float, float]], float]:
    """Cost-stratified TPE: trial i targets latency stratum i mod ``strata`` (quantiles of
    the latency of 2,000 random designs: a free cost); multivariate TPE proposes, and a
    proposal outside the stratum is dropped unevaluated (told FAIL, which TPE ignores) and
    drawn again, up to ``tries`` times. → the evaluated designs and the seconds spent asking."""
    space = truth.space
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=STRATEGIES["tpe-mv"](seed))
    rng = np.random.default_rng(seed)
    keys = list(truth.lookup)
    lats = np.array([truth.lookup[keys[i]][1] for i in rng.choice(len(keys), 2000, replace=False)])
    edges = np.quantile(lats, np.linspace(0, 1, strata + 1))
    edges[0], edges[-1] = -np.inf, np.inf
    done: list[tuple[tuple[str, ...], float, float]] = []
    asking = 0.0
    for i in range(n):
        lo, hi = edges[i % strata], edges[i % strata + 1]
        for attempt in range(tries):
            t = time.perf_counter()
            trial = study.ask()
            params = space.sample(trial)
            asking += time.perf_counter() - t
            row = space.to_arch(params)
            lat = row.values["latency_ms"]
            if lo <= lat < hi or attempt == tries - 1 or i < 10:
                break
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        acc = row.accuracy(seed)
        study.tell(trial, [acc * ACC_TOLD, lat])
        done.append((tuple(params[k] for k in space.order), acc, lat))
    return done, asking


def run_one(strategy: str, truth: Truth, seed: int, n: int) -> dict[str, Any]:
    """One search of ``n`` evaluations → scores at each checkpoint and seconds per suggestion."""
    if strategy.startswith(("tpe-strata", "tpe-pick")):
        c0, w0 = time.process_time(), time.perf_counter()
        if strategy.startswith("tpe-pick"):  # tpe-pick<k>[-shv options], e.g. tpe-pick8-x05
            k, _, rest = strategy[len("tpe-pick"):].partition("-")
            nb = rest == "nb" or rest.startswith("nb-")  # -nb: front neighbours compete too
            rest = rest.removeprefix("nb").removeprefix("-")
            top, caps, top_all = 0, (), False  # -top<m>: every m-th evaluation maximises the best accuracy
            if rest.startswith("top"):  # -top<m>c: ... under latency caps cycling 1, 0.6, 0.35
                head, _, rest = rest.partition("-")
                top_all = head.endswith("a")  # -top<m>a (helper 23d): the top steps score every unseen design
                head = head.removesuffix("a")
                top, caps = int(head[3:].removesuffix("c")), ((1.0, 0.6, 0.35) if head.endswith("c") else ())
            opts = shv_options("shv-" + rest if rest else "shv") or {}
            done, asking = run_tpe_pick(truth, seed, n, int(k), opts, neighbours=nb, top_every=top, caps=caps,
                                          top_all=top_all)
        else:
            done, asking = run_stratified(truth, seed, n, strata=int(strategy[len("tpe-strata"):] or 4))
        out = {"checkpoints": {str(c): dict(zip(("regret", "igd"), truth.scores(
            [truth.lookup[k] for k, _, _ in done[:c]]), strict=True)) for c in CHECKPOINTS if c <= n},
            "seconds_per_suggestion": asking / n}
        out["cpu_over_wall"] = (time.process_time() - c0) / max(1e-9, time.perf_counter() - w0)
        return out
    dedup = strategy.endswith("-dedup")  # a design evaluated before is told its known values
    strategy = strategy.removesuffix("-dedup")  # again, unevaluated and uncounted, and re-asked
    space = truth.space
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=STRATEGIES.get(strategy, STRATEGIES["random"])(seed))
    aware: Any = None
    if strategy in COST_AWARE:
        pool, kappa = COST_AWARE[strategy]
        aware = CostAware(truth, seed, pool=pool, kappa=kappa)
    elif shv_options(strategy) is not None:
        aware = SurrogateHV(truth, seed, **(shv_options(strategy) or {}))
    elif strategy == "cost-gp":
        aware = CostGP(truth, seed)
    elif strategy in LOCAL:
        aware = LocalSearch(truth, seed, LOCAL[strategy])
    elif strategy in HYBRID:
        aware = LocalSearch(truth, seed, False, *HYBRID[strategy])
    done: list[tuple[tuple[str, ...], float, float]] = []
    out: dict[str, Any] = {"checkpoints": {}}
    suggest = 0.0
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(1, n + 1):
        t = time.perf_counter()
        if aware is not None:
            key = aware.propose(done)
            if key is not None:
                study.enqueue_trial(dict(zip(space.order, key, strict=True)))
        trial = study.ask()
        params = space.sample(trial)
        for _ in range(50 if dedup else 0):
            key = tuple(params[k] for k in space.order)
            old = next((d for d in done if d[0] == key), None)
            if old is None:
                break
            study.tell(trial, [old[1] * ACC_TOLD, old[2]])
            out["repeats"] = out.get("repeats", 0) + 1
            trial = study.ask()
            params = space.sample(trial)
        suggest += time.perf_counter() - t
        row = space.to_arch(params)
        acc, lat = row.accuracy(seed), row.values["latency_ms"]
        study.tell(trial, [acc * ACC_TOLD, lat])
        done.append((tuple(params[k] for k in space.order), acc, lat))
        if i in CHECKPOINTS:
            regret, igd = truth.scores([truth.lookup[k] for k, _, _ in done])  # true values
            out["checkpoints"][str(i)] = {"regret": regret, "igd": igd}
    out["seconds_per_suggestion"] = suggest / n
    out["cpu_over_wall"] = (time.process_time() - c0) / max(1e-9, time.perf_counter() - w0)
    return out


# ---------------------------------------------------------------- statistics and table
def t_interval(xs: list[float]) -> tuple[float, float, float]:
    """Mean and its 95 % t-interval."""
    from scipy import stats

    a = np.array(xs)
    m = float(a.mean())
    if len(a) < 2:
        return m, m, m
    h = float(stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a)))
    return m, m - h, m + h


STAT = {"name": "mean"}  # the statistic the verdicts compare (--median: the median)


def diff_interval(a: list[float], b: list[float], reps: int = 4000) -> tuple[float, float, float]:
    """Mean(a) - mean(b) (median with ``--median``) and its 95 % bootstrap interval (seeds
    resampled in each group)."""
    f = np.median if STAT["name"] == "median" else np.mean
    rng = np.random.default_rng(0)
    x, y = np.array(a), np.array(b)
    d = f(rng.choice(x, (reps, len(x))), axis=1) - f(rng.choice(y, (reps, len(y))), axis=1)
    return float(f(x) - f(y)), float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))


def verdict(a: list[float], b: list[float]) -> str:
    _, lo, hi = diff_interval(a, b)
    return "better" if hi < 0 else "worse" if lo > 0 else "undecided"


def markdown(res: dict[str, Any]) -> str:
    """One table per device: mean regret [95 % CI] at each N, IGD@100, time per suggestion,
    and the verdicts at N = 100 against random and Optuna's default TPE."""
    runs = res["runs"]
    lines = []
    for dev in res["devices"]:
        lines += [f"\n**{dev}** (hypervolume regret %, mean [95 % CI] over seeds; IGD ×100 at N = 100; "
                  "vs: difference at N = 100 beyond noise)\n",
                  "| strategy | " + " | ".join(f"N={n}" for n in CHECKPOINTS) +
                  " | IGD@100 | ms/suggestion | vs random | vs tpe-default |",
                  "|---|" + "---|" * (len(CHECKPOINTS) + 4)]
        for strat in res["strategies"]:
            rs = [r for r in runs if r["strategy"] == strat and r["device"] == dev]
            if not rs:
                continue
            cells = []
            for n in CHECKPOINTS:
                xs = [100 * r["checkpoints"][str(n)]["regret"] for r in rs if str(n) in r["checkpoints"]]
                cells.append("–" if not xs else "{:.2f} [{:.2f}, {:.2f}]".format(*t_interval(xs)))
            igd = [100 * r["checkpoints"]["100"]["igd"] for r in rs if "100" in r["checkpoints"]]
            ms = 1000 * float(np.mean([r["seconds_per_suggestion"] for r in rs]))
            mine = [r["checkpoints"]["100"]["regret"] for r in rs if "100" in r["checkpoints"]]
            vs = []
            for base in ("random", "tpe-default"):
                other = [r["checkpoints"]["100"]["regret"] for r in runs
                         if r["strategy"] == base and r["device"] == dev and "100" in r["checkpoints"]]
                vs.append("–" if base == strat or not other or not mine else verdict(mine, other))
            lines.append(f"| {strat} | " + " | ".join(cells) +
                         f" | {np.mean(igd) if igd else float('nan'):.2f} | {ms:.1f} | {vs[0]} | {vs[1]} |")
    return "\n".join(lines)


def summary(res: dict[str, Any], n: int = 100) -> str:
    """Per strategy: on how many devices its regret at ``n`` beats random and Optuna's default
    TPE beyond noise, and its mean regret per device (the default rule of docs/tabular.md)."""
    runs = res["runs"]

    def regrets(s: str, d: str) -> list[float]:
        return [r["checkpoints"][str(n)]["regret"] for r in runs
                if r["strategy"] == s and r["device"] == d and str(n) in r["checkpoints"]]

    lines = [f"\n| strategy (N = {n}, {STAT['name']} regret %) | " + " | ".join(res["devices"])
             + " | beats both on |",
             "|---|" + "---|" * (len(res["devices"]) + 1)]
    for s in res["strategies"]:
        cells, wins = [], 0
        for d in res["devices"]:
            mine = regrets(s, d)
            if not mine:
                cells.append("–")
                continue
            v = [verdict(mine, regrets(b, d)) if b != s and regrets(b, d) else "–"
                 for b in ("random", "tpe-default")]
            wins += all(x == "better" for x in v)
            f = np.median if STAT["name"] == "median" else np.mean
            cells.append(f"{100 * f(mine):.2f} ({v[0]}, {v[1]})")
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {wins} of {len(res['devices'])} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--strategies", default="random,tpe-default,tpe-nasl")
    p.add_argument("--devices", default=",".join(DEVICES))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--percent", action="store_true", help="tell Optuna accuracy in %% (not a fraction)")
    p.add_argument("--noise", type=float, default=0.0,
                   help="accuracy noise std (fraction) the searches see; scores use the table's values")
    p.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    p.add_argument("--n", type=int, default=200, help="evaluations per run (scored at 25/50/100/200)")
    p.add_argument("--out", type=Path, default=Path("bench/results/strategy.json"))
    p.add_argument("--table", type=Path, nargs="+",
                   help="print the markdown of existing JSON files (runs pooled) and stop")
    p.add_argument("--only", help="with --table: these strategies only (comma-separated)")
    p.add_argument("--median", action="store_true",
                   help="with --table: the summary and verdicts compare median regrets (bootstrap)")
    args = p.parse_args()
    STAT["name"] = "median" if args.median else "mean"
    NOISE["std"] = args.noise
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    global ACC_TOLD
    ACC_TOLD = 100.0 if args.percent else 1.0
    if args.table:
        parts = [json.loads(f.read_text()) for f in args.table]
        res = {**parts[0], "runs": [r for part in parts for r in part["runs"]],
               "strategies": list(dict.fromkeys(x for part in parts for x in part["strategies"]))}
        if args.only:
            res["strategies"] = [x for x in res["strategies"] if x in args.only.split(",")]
        print(markdown(res) + "\n" + summary(res))
        return
    res: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {"runs": []}
    strategies = args.strategies.split(",")
    devices = args.devices.split(",")
    for s in strategies:
        if (s.removesuffix("-dedup") not in STRATEGIES and shv_options(s) is None
                and not s.startswith("tpe-pick")):
            raise SystemExit(f"--strategies: unknown {s!r}; expected some of {', '.join(STRATEGIES)}, "
                             "shv[-options] or tpe-pick<k>[-nb][-top<m>[c]][-options] (see shv_options)")
    res["strategies"] = list(dict.fromkeys([*res.get("strategies", []), *strategies]))
    res["devices"] = list(dict.fromkeys([*res.get("devices", []), *devices]))
    res["meta"] = {"reference_point": "accuracy 80 %, latency = the table's largest (normalised (1, 1))",
                   "optuna": optuna.__version__, "python": platform.python_version(),
                   "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
                   "date": time.strftime("%Y-%m-%d"), "checkpoints": list(CHECKPOINTS),
                   "accuracy_told_as": "percent" if args.percent else "fraction", "noise_std": args.noise}
    for dev in devices:
        truth = Truth(dev)
        for s in strategies:
            res["runs"] = [r for r in res["runs"] if not (r["strategy"] == s and r["device"] == dev)]
            t = time.perf_counter()
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                r = run_one(s, truth, seed, args.n)
                res["runs"].append({"strategy": s, "device": dev, "seed": seed, "n": args.n, **r})
            reg = [r["checkpoints"][str(min(100, args.n))]["regret"] for r in res["runs"]
                   if r["strategy"] == s and r["device"] == dev]
            print(f"{dev:10s} {s:16s} regret@{min(100, args.n)} median {100 * np.median(reg):.2f} % "
                  f"({time.perf_counter() - t:.1f} s)", flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(res, indent=1))
    print(markdown(res) + "\n" + summary(res))


if __name__ == "__main__":
    main()
