"""The ``pick`` strategy for tabular spaces: TPE proposes, a Gaussian process with the free cost picks.

In: a ``family: table`` space (every candidate's latency is known before evaluation: only
accuracy is expensive) and the run's study. Out: before each ``study.ask()`` the design to
evaluate next, enqueued on the study (:meth:`PickProposer.before_ask`).

Per evaluation nasl's TPE (``make_sampler("tpe")``, in a private in-memory study that mirrors the
run's completed trials) proposes ``k`` = 8 designs in a row (its constant liar spreads them); a
Gaussian process on the choices and the latency quantile (kernel exp(-Hamming/l) ·
exp(-dq²/2l_q²), accuracy as rank normal scores, continued above the best seen with the top
tenth's slope) scores each by its expected hypervolume gain at its KNOWN latency, and the best
is evaluated; the others are told FAIL there. Every 3rd evaluation maximises instead the
expected improvement of the best accuracy, among the proposals and the one-choice neighbours of
the three most accurate designs. The first 10 evaluations are TPE's random start-up. This is
``tpe-pick8-top3-ext`` of ``bench/bench_strategy.py`` with the reference accuracy of
:func:`nasl.stats.pareto` (0 for accuracy); docs/benchmarks.md ("A strategy for ≤ 2 %") has
its numbers on NAS-Bench-201. On a table whose choices are NAS-Bench-201's six edges × its ops
(:func:`nasl.search.pickfeatures.looks_nb201`) the kernel is instead on the ops counted over
the live edges and the path encoding (``nasl.search.pickfeatures``): bench
``tpe-pick8-top3-ext-r0-kEP`` (docs/benchmarks.md, "Path and op-count features").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from nasl.common.errors import NaslError
from nasl.search.pickfeatures import NB201_GROUPS, FeatureKernel, looks_nb201, profiled_loglik

Key = tuple[str, ...]


def hv_gain(front: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Hypervolume gain (2-D, reference (1, 1), both minimised) of points (x[c, s], y[c])
    added to a ``front`` sorted by its first loss: ∫_x^1 max(0, h(u) - y) du with h the front's
    staircase height → C × S. Front points outside the box are dropped and x is clipped to it
    (a point below the reference accuracy adds nothing)."""
    front = front[(front[:, 0] < 1) & (front[:, 1] < 1)]
    x = np.minimum(x, 1.0)
    lo = np.concatenate([[-np.inf], front[:, 0]])
    hi = np.concatenate([front[:, 0], [1.0]])
    h = np.concatenate([[1.0], front[:, 1]])
    g = np.maximum(0.0, h[None, :] - y[:, None])
    width = np.clip(hi[None, None, :] - np.maximum(lo[None, None, :], x[:, :, None]), 0.0, None)
    return np.einsum("csk,ck->cs", width, g)


def front_of(loss: np.ndarray) -> np.ndarray:
    """Non-dominated points of a 2-D loss array (both minimised), sorted by the first."""
    loss = loss[np.lexsort((loss[:, 1], loss[:, 0]))]
    keep, best = [], np.inf
    for p in loss:
        if p[1] < best:
            keep.append(p)
            best = p[1]
    return np.array(keep).reshape(-1, 2)


class ChoiceGP:
    """A Gaussian process on categorical designs plus their free cost, and the acquisitions.

    ``keys``: every candidate (choice values in order); ``cost``: its latency (known);
    ``names``: the choice columns. When they look like NAS-Bench-201's edges
    (:func:`nasl.search.pickfeatures.looks_nb201`) the kernel is on live op counts and path
    features (:data:`NB201_GROUPS`), else exp(-Hamming/ℓ) on the choices."""

    def __init__(self, keys: list[Key], cost: np.ndarray, ref: float = 0.0,
                 names: tuple[str, ...] | None = None):
        self.keys, self.ref = keys, ref
        self.pos = {k: i for i, k in enumerate(keys)}
        self.values = [sorted({k[i] for k in keys}) for i in range(len(keys[0]))]
        self.codes = np.array([[self.values[e].index(o) for e, o in enumerate(k)] for k in keys],
                              dtype=np.int8)
        self.latq = (np.argsort(np.argsort(cost)) + 0.5) / len(cost)  # the latency quantile
        self.loss_lat = (cost - cost.min()) / max(1e-12, cost.max() - cost.min())
        self.hp: tuple[Any, float, float] | None = None
        self.last_a, self.last_w = np.zeros((0, 0)), np.zeros(0)
        self.features = (FeatureKernel(keys, self.values, NB201_GROUPS)
                         if names is not None and looks_nb201(self.values, names) else None)

    def kern(self, a: np.ndarray, b: np.ndarray, ell: Any, ell_lat: float) -> np.ndarray:
        """The kernel between designs ``a`` and ``b`` (indices); ``ell``: ℓ, or the feature
        groups' weights."""
        if self.features is not None:
            k = self.features.combine(self.features.dists(a, b), ell)
        else:
            k = np.exp(-(self.codes[a][:, None, :] != self.codes[b][None, :, :]).sum(-1) / ell)
        d = self.latq[a][:, None] - self.latq[b][None, :]
        return k * np.exp(-d ** 2 / (2 * ell_lat ** 2))

    def fit_hp(self, idx: np.ndarray, z: np.ndarray) -> tuple[Any, float, float]:
        """(ℓ or the groups' weights, ℓ_lat, noise) of the largest marginal likelihood on a
        small grid (σ² profiled)."""
        if self.features is not None:
            return self.features.fit(idx, self.latq[idx], z, self.hp)
        best, best_ll = (1.0, 1.0, 1e-2), -np.inf
        for ell in (0.5, 1.0, 2.0, 4.0):
            for ell_lat in (0.02, 0.05, 0.1, 0.2, 0.5):
                k0 = self.kern(idx, idx, ell, ell_lat)
                for noise in (1e-3, 1e-2, 1e-1):
                    ll = profiled_loglik(k0 + noise * np.eye(len(idx)), z)
                    if ll > best_ll:
                        best, best_ll = (ell, ell_lat, noise), ll
        return best

    def gains(self, done: list[tuple[Key, float, float]], cand: np.ndarray) -> np.ndarray:
        """Expected hypervolume gain of the candidates (indices) given the evaluated ``done``
        (design, accuracy, latency); keeps the accuracy samples for :meth:`improvement`."""
        from scipy import stats

        n = len(done)
        idx = np.array([self.pos[d[0]] for d in done])
        acc = np.array([d[1] for d in done])
        z = stats.norm.ppf((stats.rankdata(acc, method="min") - 0.5) / n)  # ties: the worst rank
        if self.hp is None or n % 10 == 0:
            self.hp = self.fit_hp(idx, z)
        ell, ell_lat, noise = self.hp
        L = np.linalg.cholesky(self.kern(idx, idx, ell, ell_lat) + noise * np.eye(n))
        w = np.linalg.solve(L, z)
        ks = self.kern(cand, idx, ell, ell_lat)
        mu = ks @ np.linalg.solve(L.T, w)
        v = np.linalg.solve(L, ks.T)
        sd = np.sqrt(np.clip(float(w @ w) / n * (1 - (v ** 2).sum(0)), 1e-12, None))
        gh_z, gh_w = np.polynomial.hermite_e.hermegauss(12)
        gh_w = gh_w / gh_w.sum()
        zs = mu[:, None] + sd[:, None] * gh_z[None, :]
        zs_sorted, acc_sorted = np.sort(z), np.sort(acc)
        a = np.interp(zs, zs_sorted, acc_sorted)
        m = max(2, n // 10)  # above the best seen: the top tenth's slope, continued
        slope = (acc_sorted[-1] - acc_sorted[-m]) / max(1e-9, zs_sorted[-1] - zs_sorted[-m])
        a = a + slope * np.clip(zs - zs_sorted[-1], 0, None)
        self.last_a, self.last_w = a, gh_w
        scale = max(1e-9, acc.max() - self.ref)  # the argmax does not depend on this scale
        lat = self.loss_lat[idx]
        front = front_of(np.stack([1 - (acc - self.ref) / scale, lat], 1))
        return hv_gain(front, 1 - (a - self.ref) / scale, self.loss_lat[cand]) @ gh_w

    def improvement(self, best: float) -> np.ndarray:
        """Expected improvement over ``best`` accuracy of the last :meth:`gains` candidates."""
        return np.maximum(0.0, self.last_a - best) @ self.last_w


def proposer_for(sampler: str, space: Any, settings: Any) -> PickProposer | None:
    """The proposer of ``--sampler pick`` for ``space`` with the run's resolved ``settings``
    (objectives, seed, budgets); None for any other sampler. ``NaslError`` for a CNN space."""
    if sampler != "pick":
        return None
    return PickProposer(space, [d for _, d in settings.objectives], [m for m, _ in settings.objectives],
                        settings.seed, dict(settings.budgets))


class PickProposer:
    """Chooses the run's next design and enqueues it (see the module doc)."""

    def __init__(self, space: Any, directions: list[str], metrics: list[str], seed: int,
                 budgets: dict[str, float] | None = None, k: int = 8, top_every: int = 3, startup: int = 10):
        from nasl.search.study import make_sampler, quiet_optuna
        from nasl.space.table import index

        if getattr(space, "family", None) != "table":
            raise NaslError(f"--sampler pick: for tabular spaces (family: table) only; space "
                            f"{space.name!r} is family {space.family!r}")
        acc = [m for m, d in zip(metrics, directions, strict=True) if d == "maximize"]
        cost = [m for m, d in zip(metrics, directions, strict=True) if d == "minimize"]
        if len(metrics) != 2 or not acc or not cost:
            raise NaslError(f"--sampler pick: expects one maximised and one minimised objective; "
                            f"space {space.name!r} has {', '.join(metrics)}")
        rows = index(space.spec)
        self.space, self.metrics, self.k, self.top_every, self.startup = space, metrics, k, top_every, startup
        self.acc_i, self.cost_i = metrics.index(acc[0]), metrics.index(cost[0])
        self.keys = list(rows)
        self.cost = {key: float(r.values[cost[0]]) for key, r in rows.items()}  # free: known
        self.model = ChoiceGP(self.keys, np.array([self.cost[key] for key in self.keys]),
                              names=tuple(space.order))
        limits = {m: float(v) for m, v in (budgets or {}).items() if v is not None}
        #: designs within the budgets the table's own columns can check (free: known before
        #: evaluation); a TPE proposal outside is dropped unevaluated, as over-budget designs are
        self.allowed = {key for key, r in rows.items()
                        if all(float(r.values[m]) <= v for m, v in limits.items() if m in r.values)}
        with quiet_optuna():
            self.tpe = optuna.create_study(directions=directions, sampler=make_sampler("tpe", seed))
        self.done: list[tuple[Key, float, float]] = []
        self.known: dict[Key, list[float]] = {}
        self.mirrored: set[int] = set()
        self.pending: dict[Key, Any] = {}  # enqueued design → its trial in the TPE study

    def _key(self, params: dict[str, Any]) -> Key:
        return tuple(str(params[n]) for n in self.space.order)

    def _sync(self, study: optuna.Study) -> None:
        """Tell the TPE study what the run's finished trials gave (in trial order)."""
        for t in study.get_trials(deepcopy=False):
            if t.number in self.mirrored or t.state in (TrialState.RUNNING, TrialState.WAITING):
                continue
            self.mirrored.add(t.number)
            if not t.params or any(n not in t.params for n in self.space.order):
                continue
            key = self._key(t.params)
            own = self.pending.pop(key, None)
            ua = t.user_attrs  # rejected (over budget, not in the table) and repeats: not evaluated
            if (t.state != TrialState.COMPLETE or not t.values or not ua.get("trained", True)
                    or not ua.get("feasible", True)):
                if own is not None:
                    self.tpe.tell(own, state=TrialState.FAIL)
                self.known.setdefault(key, [])  # never proposed again
                continue
            vals = [float(v) for v in t.values]
            if own is not None:
                self.tpe.tell(own, vals)
            else:
                self.tpe.add_trial(optuna.trial.create_trial(
                    params=dict(t.params), distributions=dict(t.distributions), values=vals))
            if not self.known.get(key):
                self.done.append((key, vals[self.acc_i], vals[self.cost_i]))
            self.known[key] = vals

    def before_ask(self, study: optuna.Study) -> None:
        """Enqueue the next design on ``study`` (nothing when one is already waiting)."""
        if any(t.state == TrialState.WAITING for t in study.get_trials(deepcopy=False)):
            return
        self._sync(study)
        props: list[tuple[Any, Key]] = []
        for _ in range(50):  # as the benchmark: k asks (repeats use theirs up), again if none is new
            for _ in range(self.k if len(self.done) >= self.startup else 1):
                trial = self.tpe.ask()
                key = self._key(self.space.sample(trial))
                if key not in self.allowed:  # not in the table or over a budget: never proposed
                    self.tpe.tell(trial, state=TrialState.FAIL)
                    continue
                if key in self.known or key in self.pending or any(key == q for _, q in props):
                    old = self.known.get(key)
                    if old:
                        self.tpe.tell(trial, old)
                    else:
                        self.tpe.tell(trial, state=TrialState.FAIL)
                    continue
                props.append((trial, key))
            if props:
                break
        if not props:
            return  # TPE repeats itself: the run's own sampler asks (its repeat guard stops it)
        chosen = self._choose(props)
        for trial, key in props:
            if key != chosen:
                self.tpe.tell(trial, state=TrialState.FAIL)
        own = next((t for t, key in props if key == chosen), None)
        if own is None:  # a neighbour of an accurate design won
            params = dict(zip(self.space.order, chosen, strict=True))
            self.tpe.enqueue_trial(params)
            own = self.tpe.ask()
            self.space.sample(own)
        self.pending[chosen] = own
        study.enqueue_trial({n: _typed(self.space, n, v)
                             for n, v in zip(self.space.order, chosen, strict=True)})

    def _choose(self, props: list[tuple[Any, Key]]) -> Key:
        n = len(self.done)
        if n < self.startup:
            return props[0][1]
        extra: list[Key] = []
        top = self.top_every > 0 and n % self.top_every == 0
        if top:
            taken = set(self.known) | set(self.pending) | {q for _, q in props}
            best3 = [d[0] for d in sorted(self.done, key=lambda d: -d[1])[:3]]
            extra = list(dict.fromkeys(q for f in best3 for q in _neighbours(f, self.model.values)
                                       if q not in taken and q in self.allowed))
        cands = [q for _, q in props] + extra
        if len(cands) == 1:
            return cands[0]
        gains = self.model.gains(self.done, np.array([self.model.pos[q] for q in cands]))
        if top:
            ei = self.model.improvement(max(d[1] for d in self.done))
            if ei.max() > 0:
                return cands[int(np.argmax(ei))]
        return cands[int(np.argmax(gains))]


def _neighbours(key: Key, values: list[list[str]]) -> list[Key]:
    """The designs that differ from ``key`` in exactly one choice."""
    return [key[:i] + (v,) + key[i + 1:] for i, vals in enumerate(values) for v in vals if v != key[i]]


def _typed(space: Any, name: str, text: str) -> Any:
    """The choice of ``name`` whose text is ``text`` (as the space's sampler returns it)."""
    for p in space.params:
        if p.name == name:
            return next((c for c in p.choices if str(c) == text), text)
    return text
