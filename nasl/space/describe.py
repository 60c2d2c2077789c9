"""What a space contains and costs: size, fixed-seed samples, cost ranges, minimum cost.

In: a :class:`~nasl.space.model.SearchSpace` (and budgets). Out: plain data for the CLI
(``nasl space show`` / ``sample``) and the search ("budget cannot be met" messages).
Costs are the analytic target costs of ``SearchSpace.to_arch`` (microseconds each).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import statistics
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from nasl.common.errors import NaslError
from nasl.common.units import ANALYTIC, Budgets, format_budget, format_cost, size_mb
from nasl.network.arch import ArchConfig
from nasl.space.core import RandomTrial
from nasl.space.model import SearchSpace
from nasl.space.scalars import fmt_value
from nasl.space.schema import plain


def costs(cfg: ArchConfig) -> dict[str, float]:
    """Analytic costs of a network: ``{'macs', 'params', 'size_mb'}``."""
    n = cfg.params()
    return {"macs": cfg.macs(), "params": n, "size_mb": size_mb(n)}


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def sample_params(space: SearchSpace, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` params dicts from Optuna's RandomSampler(seed) through ``space.sample``
    (an in-memory study; the same seed gives the same list)."""
    import optuna

    with _quiet_optuna():
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        return [space.sample(study.ask()) for _ in range(n)]


def sample_configs(space: SearchSpace, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` fixed-seed samples with their target costs: dicts of ``number``, ``params``,
    ``macs``, ``n_params``, ``size_mb``, ``arch_id``, ``feasible`` (under ``space.budget``'s
    analytic limits)."""
    if n < 1:
        raise NaslError(f"-n {n}: expected a number of samples >= 1")
    out = []
    for i, params in enumerate(sample_params(space, n, seed)):
        cfg = space.to_arch(params)
        c = costs(cfg)
        out.append({"number": i, "params": params, "macs": c["macs"], "n_params": c["params"],
                    "size_mb": round(c["size_mb"], 4), "arch_id": cfg.id,
                    "feasible": space.budget.analytic().fits(c)})
    return out


def space_size(space: SearchSpace) -> int | None:
    """Number of distinct parameter assignments (None when a range is continuous).

    Conditional parameters count only where active (exact, by enumerating the values of
    the parameters that conditions refer to).
    """
    refs = {ref for p in space.params for ref, _ in p.when}
    states: dict[tuple[tuple[str, Any], ...], int] = {(): 1}
    for name in space.order:
        if name in space.fixed:
            continue
        p = space.by_name[name]
        nxt: dict[tuple[tuple[str, Any], ...], int] = {}
        count = p.count()
        if count is None:
            return None
        for state, mult in states.items():
            if not p.active({**dict(state), **space.fixed}):
                nxt[state] = nxt.get(state, 0) + mult
            elif name in refs:
                for v in p.values() or []:
                    key = (*state, (name, v))
                    nxt[key] = nxt.get(key, 0) + mult
            else:
                nxt[state] = nxt.get(state, 0) + mult * count
        states = nxt
    return sum(states.values())


@dataclass(frozen=True)
class ParamRow:
    """One row of the parameter table."""

    name: str
    domain: str  # "choices: 1, 2, 3" / "int 2..6" / "fixed: 3"
    count: int | None  # values (None: continuous)
    when: str  # "" when always active


@dataclass(frozen=True)
class Range:
    """min / median / max of a cost over the sample."""

    min: float
    median: float
    max: float


@dataclass(frozen=True)
class BaselineRow:
    """A baseline's target costs and whether it fits the budget (None: no analytic limit)."""

    name: str
    params: dict[str, Any]
    macs: int
    n_params: int
    size_mb: float
    fits: bool | None


@dataclass(frozen=True)
class SpaceSummary:
    """Everything ``nasl space show`` prints."""

    name: str
    family: str
    description: str
    source: str  # where the space came from (SearchSpace.origin)
    rows: list[ParamRow]
    size: int | None
    n: int
    seed: int
    macs: Range
    params: Range
    budget: Budgets
    feasible_fraction: float | None  # None when no analytic (macs/params/size) limit
    baselines: list[BaselineRow] = field(default_factory=list)
    min_costs: dict[str, float] = field(default_factory=dict)

    @property
    def size_text(self) -> str:
        return "continuous" if self.size is None else f"{self.size:,}"

    def lines(self) -> list[str]:
        """A plain-text rendering (one string per line)."""
        out = [f"{self.name} ({self.family}) — {self.description}".rstrip(" —"),
               f"  from {self.source}", "", "parameters:"]
        w = max([len(r.name) for r in self.rows] + [4])
        for r in self.rows:
            cond = f"   [when {r.when}]" if r.when else ""
            out.append(f"  {r.name:<{w}}  {r.domain}{cond}")
        out += ["", f"size of the space: {self.size_text} configurations",
                f"sample of {self.n} (seed {self.seed}): MACs "
                f"{format_cost('macs', self.macs.min)} / {format_cost('macs', self.macs.median)}"
                f" / {format_cost('macs', self.macs.max)} (min / median / max), params "
                f"{format_cost('params', self.params.min)} / "
                f"{format_cost('params', self.params.median)} / "
                f"{format_cost('params', self.params.max)}"]
        if self.min_costs:
            out.append("smallest found: " + ", ".join(
                format_cost(k, v) for k, v in self.min_costs.items()))
        out.append(f"budget: {self.budget}")
        if self.feasible_fraction is not None:
            out.append(f"feasible under the budget: {100 * self.feasible_fraction:.1f}% of "
                       f"the sample")
        if self.baselines:
            out += ["", "baselines:"]
            w = max(len(b.name) for b in self.baselines)
            for b in self.baselines:
                fit = "" if b.fits is None else ("  fits" if b.fits else "  over budget")
                out.append(f"  {b.name:<{w}}  {format_cost('macs', b.macs):>14}  "
                           f"{format_cost('params', b.n_params):>15}  {b.size_mb:6.2f} MB{fit}")
        return out


def param_rows(space: SearchSpace) -> list[ParamRow]:
    """The parameter table, in declared order (fixed ones included)."""
    rows = []
    for name in space.order:
        if name in space.fixed:
            rows.append(ParamRow(name, f"fixed: {fmt_value(space.fixed[name])}", 1, ""))
        else:
            p = space.by_name[name]
            rows.append(ParamRow(name, p.describe(), p.count(), p.when_text()))
    return rows


def describe(space: SearchSpace, budgets: Mapping[str, float] | None = None, *,
             n: int = 200, seed: int = 0) -> SpaceSummary:
    """Summarise ``space`` under its budget merged with ``budgets`` (CLI ``--budget``)."""
    budget = space.budget.merged(budgets or {})
    samples = [costs(space.to_arch(p)) for p in sample_params(space, n, seed)]
    analytic = budget.analytic()
    feasible = (sum(analytic.fits(c) for c in samples) / len(samples)) if analytic else None
    rows = []
    for bname, params in space.baselines.items():
        c = costs(space.to_arch(params))
        rows.append(BaselineRow(bname, params, int(c["macs"]), int(c["params"]), c["size_mb"],
                                analytic.fits(c) if analytic else None))

    def rng(metric: str) -> Range:
        vals = [c[metric] for c in samples]
        return Range(min(vals), statistics.median(vals), max(vals))

    return SpaceSummary(space.name, space.family, space.description, space.origin,
                        param_rows(space), space_size(space), n, seed, rng("macs"),
                        rng("params"), budget, feasible, rows,
                        {m: min_cost(space, m) for m in ("macs", "params")})


# ---------------------------------------------------------------- minimum cost

EXHAUSTIVE_LIMIT = 4096
RANDOM_SAMPLES = 1000


def _enumerate(space: SearchSpace) -> Iterator[dict[str, Any]]:
    def rec(i: int, assigned: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if i == len(space.order):
            yield dict(assigned)
            return
        name = space.order[i]
        if name in space.fixed:
            yield from rec(i + 1, {**assigned, name: plain(space.fixed[name])})
            return
        p = space.by_name[name]
        if not p.active(assigned):
            yield from rec(i + 1, assigned)
            return
        for v in p.values() or []:
            yield from rec(i + 1, {**assigned, name: plain(v)})

    yield from rec(0, {})


def _cost(space: SearchSpace, params: Mapping[str, Any], metric: str) -> float:
    return costs(space.to_arch(params))[metric]


def _descend(space: SearchSpace, start: dict[str, Any], metric: str) -> float:
    """Coordinate descent: change one parameter at a time while the cost drops."""
    best, best_cost = start, _cost(space, start, metric)
    for _ in range(4):
        improved = False
        for p in space.params:
            if p.name not in best:
                continue
            vals = p.values() or [p.low, p.high]
            for v in vals[:: max(1, len(vals) // 64)]:
                cand = {**best, p.name: plain(v)}
                try:
                    cand = space.complete(cand)
                    c = _cost(space, cand, metric)
                except NaslError:
                    continue
                if c < best_cost:
                    best, best_cost, improved = cand, c, True
        if not improved:
            break
    return best_cost


_MIN_CACHE: dict[str, dict[str, float]] = {}


def _min_costs_uncached(space: SearchSpace) -> dict[str, float]:
    metrics = ("macs", "params")
    size = space_size(space)
    if size is not None and size <= EXHAUSTIVE_LIMIT:
        every = [costs(space.to_arch(p)) for p in _enumerate(space)]
        return {m: min(c[m] for c in every) for m in metrics}
    rng = random.Random(0)
    starts = list(space.baselines.values())
    low: dict[str, Any] = {}
    for name in space.order:  # the "all-low" corner: first choice / low end of every range
        if name in space.fixed:
            low[name] = plain(space.fixed[name])
        elif space.by_name[name].active(low):
            p = space.by_name[name]
            low[name] = plain(p.choices[0]) if p.kind == "choices" else (
                int(p.low) if p.kind == "int" else p.low)  # type: ignore[arg-type]
    starts.append(low)
    starts += [space.sample(RandomTrial(rng)) for _ in range(RANDOM_SAMPLES)]
    scored = [costs(space.to_arch(s)) for s in starts]
    out = {}
    for m in metrics:
        best = sorted(range(len(starts)), key=lambda i: scored[i][m])[:2]
        out[m] = min(_descend(space, starts[i], m) for i in best)
    return out


def min_cost(space: SearchSpace, metric: str) -> float:
    """The smallest ``metric`` (macs, params or size_mb) a configuration of the space has.

    Exact for spaces of at most :data:`EXHAUSTIVE_LIMIT` configurations (all evaluated).
    Otherwise the best of the baselines, the "all-low" corner and :data:`RANDOM_SAMPLES`
    seeded random samples, refined by coordinate descent from the two cheapest: an upper
    bound, exact when each cost is monotone in each parameter. Cached per space.
    """
    if metric not in ANALYTIC:
        raise ValueError(f"min_cost needs an analytic metric {ANALYTIC}, got {metric!r}")
    if metric == "size_mb":
        return size_mb(min_cost(space, "params"))
    key = dataclasses.replace(space, budget=Budgets()).to_yaml()
    if key not in _MIN_CACHE:
        if len(_MIN_CACHE) > 64:
            _MIN_CACHE.clear()
        _MIN_CACHE[key] = _min_costs_uncached(space)
    return _MIN_CACHE[key][metric]


def unsatisfiable_budget_message(space: SearchSpace, budgets: Mapping[str, float] | None = None
                                 ) -> str | None:
    """A one-line reason when no configuration can meet an analytic budget, else None.

    ``budgets`` (e.g. from the CLI) are merged over ``space.budget``. Each limit is checked
    on its own against :func:`min_cost`.
    """
    budget = space.budget.merged(budgets or {})
    for metric, limit in budget.analytic().items():
        smallest = min_cost(space, metric)
        if smallest > limit:
            return (f"the smallest configuration in {space.source} needs "
                    f"{format_cost(metric, smallest)}; the budget is "
                    f"{metric}<={format_budget(metric, limit)}")
    return None
