"""The confirmation plan: which designs to train again at higher fidelity, and in what order.

In: the arms (every design the search completed within budget, with its low-fidelity
accuracy), the low-fidelity front and knee, a budget in trainings, and ``train(name)``,
a callable that trains one more fresh seed of a design at the confirmation fidelity and
returns its :class:`~nasl.decide.stats.Sample` contribution. Out: :class:`Decision` (samples,
claims, recommendation, what was spent).

Order of the candidates that can change the answer: the most accurate front member, its
contender (:func:`contender`: the costliest design tied with it at the search's fidelity), the
knee, then per baseline (strongest first) the baseline, its superiority challenger and its
non-inferiority challenger (:func:`nasl.decide.claims.family`), then the rest of the front.

The rule (``Plan.select_seeds`` = 1, the default) is **sample splitting**
(:mod:`nasl.decide.split`): a selection stage gives one fresh seed each to the first
:func:`selection_size` designs of that order, widened to ``Plan.candidates`` challengers per
baseline and kind (3; more above a budget of 48); the family of claims is then fixed from
those first seeds (at most :func:`claims_budget` claims, the most promising first), and the
budget left goes to the family's designs in turn (``seeds`` each first, then one at a time
to the design with the fewest), so that the tested seeds decide nothing before the end. The
claims are tested on the seeds after the first only; where every design has per-image
results the selection reads half A of the holdout images and the tests half B
(``Plan.split_images``, :func:`nasl.decide.split.views`). With ``select_seeds`` = 0 (the
rule before): the family comes from the search's numbers; phase 1 gives each of the first
``max_designs`` ``seeds`` fresh seeds; phase 2 spends what is left one training at a time on
the undecided claim that is cheapest to decide, until every claim is decided or nothing can
be decided within the budget. The same data always give the same plan, so a resumed run
replays the trainings it stored and continues where it stopped."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from nasl.decide.claims import Arm, Claim, decide, family
from nasl.decide.recommend import Pick, recommend
from nasl.decide.split import CANDIDATES, selection_order, split_family, views
from nasl.decide.stats import Sample, pooled
from nasl.stats.confidence import TIE_FACTOR

#: Selection share of the budget, and trainings per tested claim (sample splitting).
SELECT_SHARE = 3
PER_CLAIM = 8


@dataclass(frozen=True)
class Plan:
    """How much to confirm: ``budget`` trainings, ``seeds`` per design first (>= 2),
    ``max_designs`` (None: budget // seeds), margin δ and level α (fractions), correction."""

    budget: int = 12
    seeds: int = 2
    max_designs: int | None = None
    margin: float = 0.01
    alpha: float = 0.05
    correction: str = "holm"
    sequential: bool = True
    #: sample splitting (nasl.decide.split): each candidate's first ``select_seeds`` seeds
    #: choose the family, the later ones test it (0: the family from the search's numbers).
    select_seeds: int = 1
    #: trainings of the selection stage (None: :func:`selection_size`).
    select: int | None = None
    #: superiority / non-inferiority candidates per baseline in the selection stage
    #: (None: CANDIDATES, one more per 16 trainings above 48).
    candidates: int | None = None
    #: claims tested at most (None: :func:`claims_budget`).
    max_claims: int | None = None
    #: with sample splitting: the selection reads half A of the holdout images, the tests half B
    #: (when every design has per-image results; False: both read every image).
    split_images: bool = True
    #: share of the holdout images the selection reads (the tests read the rest).
    select_images: float = 0.5
    #: with sample splitting: False spreads the budget left over the family's designs in turn
    #: (no look at the tested seeds before the end); True feeds the claim nearest to a decision.
    adaptive: bool = False
    #: confirm the top of the front's :func:`contender` (the costliest design tied with it at
    #: the search's fidelity) right after it (False: the order before).
    contender: bool = True


@dataclass
class Decision:
    """What the confirmation found under one recipe at one fidelity."""

    recipe: str
    epochs: int
    samples: dict[str, Sample]
    claims: list[Claim]
    picks: list[Pick]
    spent: int
    budget: int
    order: list[str] = field(default_factory=list)

    @property
    def pooled_sd(self) -> float:
        return pooled(list(self.samples.values()))[0]


def screening_sd(arms: Sequence[Arm]) -> float | None:
    """The residual std of the arms' search accuracies around their trend on log MACs, robustly
    (Theil-Sen trend, 1.4826 x the median absolute residual, so a few failed or poor designs
    neither tilt nor widen it): seed noise plus what the trend does not explain, so an upper
    bound of the search's seed noise that needs no repeated seed (None with fewer than 5 arms)."""
    pts = [(math.log(a.macs), a.low_accuracy) for a in arms
           if a.macs > 0 and math.isfinite(a.low_accuracy)]
    if len(pts) < 5:
        return None
    from scipy.stats import theilslopes

    x = np.array([lm for lm, _ in pts])
    y = np.array([acc for _, acc in pts])
    slope, intercept = theilslopes(y, x)[:2] if np.ptp(x) > 0 else (0.0, float(np.median(y)))
    resid = y - (intercept + slope * x)
    return float(1.4826 * np.median(np.abs(resid - np.median(resid))))


#: Tied designs within this share of the costliest tied design's MACs count as equally costly:
#: among them the contender is the most accurate at the search's fidelity.
COST_TIER = 0.95


def contender(arms: Sequence[Arm], top: str | None) -> str | None:
    """The costliest arm (most MACs; among arms within :data:`COST_TIER` of that, the most
    accurate) whose search accuracy ties with ``top``'s — within twice the combined std of two
    one-seed numbers, with :func:`screening_sd` as the std — when it is costlier than ``top``:
    the design that longer training is most likely to lift above the top of the front (a short
    proxy favours small, fast-converging designs; in two of seven re-checked Fashion-MNIST runs
    the 37-39 M MACs baselines tied with or trailed a smaller top at 3 epochs, were never
    confirmed and were the best designs at 30, docs/benchmarks.md). None: no such arm."""
    by = {a.name: a for a in arms}
    sd = screening_sd(arms)
    if top not in by or sd is None or not math.isfinite(by[top].low_accuracy):
        return None
    band = TIE_FACTOR * math.sqrt(2.0) * sd
    tied = [a for a in arms if math.isfinite(a.low_accuracy)
            and a.low_accuracy >= by[top].low_accuracy - band]
    dearest = max(a.macs for a in tied)
    tier = [a for a in tied if a.macs >= COST_TIER * dearest]  # costs that barely differ
    best = max(tier, key=lambda a: (a.low_accuracy, a.macs))
    return None if best.name == top or best.macs <= by[top].macs else best.name


def priority(arms: Sequence[Arm], front: Sequence[str], knee: str | None, margin: float,
             with_contender: bool = True) -> list[str]:
    """Names of the arms in the order they should be confirmed (no repeats): the most accurate
    front member, its :func:`contender` (``with_contender``), the knee, each baseline (strongest
    first) with its challengers, the rest of the front."""
    by = {a.name: a for a in arms}
    on_front = sorted((by[n] for n in front if n in by), key=lambda a: -a.low_accuracy)
    order: list[str] = []
    if on_front:
        order.append(on_front[0].name)
        rival = contender(arms, on_front[0].name) if with_contender else None
        if rival is not None:
            order.append(rival)
    if knee in by:
        order.append(str(knee))
    hyps = family(arms, margin)
    for b in sorted((a for a in arms if a.baseline is not None), key=lambda a: -a.low_accuracy):
        mine = [h.design for h in hyps if h.other == b.name]
        if mine:
            order += [b.name, *mine]
    order += [a.name for a in on_front]
    return list(dict.fromkeys(order))


def selection_size(plan: Plan) -> int:
    """Trainings of the selection stage: ``plan.select``, else a third of the budget (>= 3),
    at most ``plan.max_designs`` when given."""
    n = plan.select if plan.select is not None else max(3, plan.budget // SELECT_SHARE)
    return n if plan.max_designs is None else min(n, plan.max_designs)


def claims_budget(plan: Plan, selected: int) -> int:
    """Claims the budget left after ``selected`` selection trainings can test (>= 1)."""
    if plan.max_claims is not None:
        return plan.max_claims
    return max(1, (plan.budget - selected) // PER_CLAIM)


def images_split(samples: dict[str, Sample], plan: Plan) -> bool:
    """Whether the claims of ``samples`` under ``plan`` choose and test on different halves
    of the holdout images (sample splitting, ``plan.split_images`` and per-image results)."""
    return plan.select_seeds > 0 and views(samples, plan.select_seeds, plan.split_images,
                                           plan.select_images)[2]


def claims_of(arms: Sequence[Arm], samples: dict[str, Sample], plan: Plan) -> list[Claim]:
    """The run's claims from its stored samples (seeds in the order trained): with sample
    splitting the family is chosen on each design's first ``plan.select_seeds`` seeds (on
    half A of the holdout images when split, :func:`nasl.decide.split.views`) and tested on
    the rest (on half B); else the family of the search's numbers, tested on every seed."""
    confirmed = [a for a in arms if a.name in samples]
    k = plan.select_seeds
    if k <= 0:
        return decide(confirmed, samples, margin=plan.margin, alpha=plan.alpha,
                      correction=plan.correction)
    first, tested, _ = views(samples, k, plan.split_images, plan.select_images)
    fam = split_family(confirmed, first, plan.margin, claims_budget(plan, len(first)))
    return decide(confirmed, tested, margin=plan.margin, alpha=plan.alpha,
                  correction=plan.correction, hypotheses=fam)


def selection(arms: Sequence[Arm], order: Sequence[str], plan: Plan) -> list[str]:
    """The designs the selection stage trains, in order: the first :func:`selection_size` of
    :func:`~nasl.decide.split.selection_order` (the top of the front and its contender first
    when ``order`` has one)."""
    names = {a.name for a in arms}
    cands = plan.candidates if plan.candidates is not None else max(CANDIDATES, plan.budget // 16)
    lead = 2 if plan.contender and len(order) > 1 and contender(arms, order[0]) == order[1] else 1
    return [n for n in selection_order(arms, order, plan.margin, cands, lead)
            if n in names][: selection_size(plan)]


def run(arms: Sequence[Arm], order: Sequence[str], train: Callable[[str], Sample],
        plan: Plan, *, recipe: str = "", epochs: int = 0,
        on_step: Callable[[str, int, int], None] | None = None) -> Decision:
    """Spend ``plan.budget`` trainings on ``order`` → Decision.

    ``train(name)`` returns the design's sample after one more fresh seed (all its seeds so
    far). ``on_step(name, done, budget)`` is called before each training. With sample
    splitting (``plan.select_seeds``) the first stage gives that many seeds to the first
    :func:`selection_size` designs of :func:`~nasl.decide.split.selection_order`; the family
    is then fixed from them, and its designs get ``plan.seeds`` more (tested) seeds each."""
    if plan.seeds < 1 or plan.budget < 0 or plan.select_seeds < 0:
        raise ValueError("plan: seeds >= 1, budget >= 0 and select_seeds >= 0 expected")
    samples: dict[str, Sample] = {}
    spent = 0
    names = {a.name for a in arms}
    k = plan.select_seeds

    def step(name: str) -> None:
        nonlocal spent
        if on_step is not None:
            on_step(name, spent, plan.budget)
        samples[name] = train(name)
        spent += 1

    def fill(name: str, n: int) -> None:
        while samples.get(name, Sample(())).n < n and spent < plan.budget:
            step(name)

    if k > 0:
        chosen = selection(arms, order, plan)
        for name in chosen:
            fill(name, k)
        first = views(samples, k, plan.split_images, plan.select_images)[0]
        fam = split_family([a for a in arms if a.name in samples], first, plan.margin,
                           claims_budget(plan, len(first)))
        tested = list(dict.fromkeys(n for h in fam for n in (h.other, h.design)))
        for name in tested:
            fill(name, k + plan.seeds)
        while tested and not plan.adaptive and spent < plan.budget:
            step(min(tested, key=lambda n: (samples[n].n, tested.index(n))))
    else:
        cap = plan.max_designs if plan.max_designs is not None else plan.budget // plan.seeds
        chosen = [n for n in order if n in names][: max(0, min(cap, plan.budget // plan.seeds))]
        for name in chosen:
            fill(name, plan.seeds)
    confirmed = [a for a in arms if a.name in samples]
    while plan.sequential and spent < plan.budget:
        claims = claims_of(confirmed, samples, plan)
        open_ = [c for c in claims if not c.holds and math.isfinite(c.to_decide)
                 and c.to_decide <= plan.budget - spent]
        if open_:
            c = min(open_, key=lambda c: (c.to_decide, c.p))
            step(c.design if samples[c.design].n <= samples[c.other].n else c.other)
            continue
        # every claim decided (or out of reach): sharpen the most accurate pick vs its runner-up
        pick = next((p for p in recommend(confirmed, samples, plan.margin, plan.alpha)
                     if p.tradeoff == "accurate"), None)
        if pick is None or pick.runner_up is None or pick.ahead:  # None: noise unknown yet
            break
        a, b = samples[pick.design], samples[pick.runner_up]
        step(pick.design if a.n <= b.n else pick.runner_up)
    return Decision(recipe, epochs, samples, claims_of(confirmed, samples, plan),
                    recommend(confirmed, samples, plan.margin, plan.alpha), spent, plan.budget, list(chosen))
