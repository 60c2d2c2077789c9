"""Synthetic runs with known truth, decided by the real confirmation code.

In: a :class:`World` (how many designs and baselines, seed noise at low and high fidelity,
a fidelity bias that reorders designs, the scenario) and a :class:`~nasl.decide.plan.Plan`.
Out: :class:`Outcome` per run (false claims, the true claims found, whether the
recommendation is the truly best design) and :func:`summary` rates over many runs.

Scenarios (accuracies are fractions; every claim is scored against the truth):

* ``null``: no searched design is truly more accurate than any baseline at no more cost
  (each is at most as accurate as the least accurate baseline that costs as much or more),
  so every superiority claim is false; a non-inferiority claim is false when the design is
  truly more than δ worse.
* ``eq_null``: every searched design exactly as accurate as the least accurate baseline that
  costs as much or more: every superiority claim is false (the worst case for a selection
  bias), every non-inferiority claim true.
* ``ni_null``: every searched design is exactly δ less accurate than every baseline: every
  claim is false.
* ``superior``: ``null`` plus one searched design truly ``effect`` more accurate than the
  strongest baseline at no more MACs: power = the share of runs that claim it.
* ``noninferior``: ``null`` plus one searched design as accurate as the strongest baseline
  at half its MACs: power = the share of runs that claim it non-inferior.

The search's (low-fidelity) view of each design is its truth plus a fidelity bias — random
(``bias_sd``) and systematic (``tilt``: small designs look better at low fidelity, as fast
converging designs do in short training) — plus seed noise (``low_sd``); the confirmation
sees the truth plus seed noise (``seed_sd``) and, with ``confirm_tilt`` > 0, a smaller bias
of the same direction (the confirmation's few epochs still favour small designs against the
long-training truth: on Fashion-MNIST without augmentation, the gap between a run's confirmed
0.5x baseline and its smaller confirmed designs (8-32 M MACs) grew by −0.5 to +1.1 points,
+0.5 on average over 14 pairs, from 9 to 30 epochs — what ``confirm_tilt`` = 0.01 gives; with
augmentation −0.2 on average, ``confirm_tilt`` = 0). The low-fidelity front and knee choose
what is confirmed, exactly as after a real search.

With ``images`` > 0 each confirmation seed is scored image by image on a holdout of that
many images (per-image results in ``Sample.bits``, so the claims split the images as after a
real run): design d gets image i right when ``mu_d + u_di + z_s + e_dsi > h_i`` (probit
units): ``h_i`` the image's difficulty, shared by all designs (``difficulty_sd``);
``u_di`` a design × image interaction fixed at every seed (``interaction_sd``); ``z_s`` a
seed's shift of the whole model and ``e_dsi`` its per-image noise (``image_noise_sd``).
``mu_d`` is set so that the expectation over images and seeds is the design's truth exactly:
the interaction makes a design lucky or unlucky on a given holdout, never truly better.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nasl.decide.claims import Arm
from nasl.decide.plan import Plan, priority, run
from nasl.decide.recommend import Pick, recommend
from nasl.decide.stats import Sample

SCENARIOS = ("null", "eq_null", "ni_null", "superior", "noninferior")


@dataclass(frozen=True)
class World:
    """Sizes and noise of the synthetic runs (accuracy in fractions, MACs in millions)."""

    designs: int = 20
    baselines: int = 10
    seed_sd: float = 0.008
    low_sd: float = 0.01
    bias_sd: float = 0.01
    tilt: float = 0.02
    spread: float = 0.02
    effect: float = 0.02
    scenario: str = "null"
    #: holdout images scored one by one (0: seed accuracies only, no per-image results).
    images: int = 0
    difficulty_sd: float = 2.0
    interaction_sd: float = 0.5
    image_noise_sd: float = 0.5
    #: a seed's shift of the whole model (probit units, images > 0).
    shift_sd: float = 0.05
    #: the confirmation's own tilt toward small designs (as ``tilt``, against the truth).
    confirm_tilt: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """One synthetic run: claims made, false ones, whether the planted truth was claimed,
    whether the ``accurate`` pick is the truly best (or within δ of it), and what the rule of
    nasl before the confirmation (a separate 2-standard-error test per baseline on the
    search's one seed) would have claimed falsely, and whether its most accurate front design
    was the truly best."""

    claims: int
    false_claims: int
    found: bool | None
    best_picked: bool
    within_margin: bool
    spent: int
    old_false_claims: int = 0
    old_best_picked: bool = False
    confirmed_planted: bool | None = None
    #: the ``fast`` pick truly within δ of the truly best design, and its MACs over the
    #: ``accurate`` pick's; ``old_fast_*``: the same for the mean-within-δ rule before.
    fast_within: bool = False
    fast_macs: float = 1.0
    old_fast_within: bool = False
    old_fast_macs: float = 1.0


def _world(rng: np.random.Generator, w: World,
           margin: float) -> tuple[list[Arm], dict[str, float], str | None]:
    nb, nd = w.baselines, w.designs
    b_macs = np.sort(rng.uniform(10, 40, nb))
    b_acc = 0.80 + w.spread * (b_macs - 25) / 30 + rng.normal(0, w.spread / 4, nb)
    s_macs = rng.uniform(5, 40, nd)
    truth: dict[str, float] = {}
    arms_meta: list[tuple[str, float, str | None]] = []
    for i in range(nb):
        truth[f"b{i}"] = float(b_acc[i])
        arms_meta.append((f"b{i}", float(b_macs[i]), f"baseline_{i}"))
    for j in range(nd):
        costlier = b_acc[b_macs >= s_macs[j]]
        cap = float(costlier.min()) if len(costlier) else float(b_acc.max())
        acc = cap - abs(rng.normal(0, w.spread / 2))
        if w.scenario == "ni_null":
            acc = float(b_acc.min()) - margin
        elif w.scenario == "eq_null":
            acc = cap
        truth[f"s{j}"] = acc
        arms_meta.append((f"s{j}", float(s_macs[j]), None))
    planted = None
    strongest = int(np.argmax(b_acc))
    if w.scenario == "superior":
        planted = "s0"
        truth["s0"] = float(b_acc.max()) + w.effect
        arms_meta[nb] = ("s0", float(b_macs[strongest]) * 0.9, None)
    elif w.scenario == "noninferior":
        planted = "s0"
        truth["s0"] = float(b_acc.max())
        arms_meta[nb] = ("s0", float(b_macs[strongest]) / 2, None)
    arms = []
    for name, macs, base in arms_meta:
        low = truth[name] + rng.normal(0, w.bias_sd) + w.tilt * (25 - macs) / 30 + rng.normal(0, w.low_sd)
        arms.append(Arm(name, macs * 1e6, None, base, float(low)))
    return arms, truth, planted


def _low_front(arms: Sequence[Arm]) -> tuple[list[str], str | None]:
    from nasl.stats.pareto import knee, non_dominated

    pts = [[a.low_accuracy, a.macs] for a in arms]
    dirs = ["maximize", "minimize"]
    idx = non_dominated(pts, dirs)
    front = [arms[i].name for i in idx]
    k = front[knee([pts[i] for i in idx], dirs)] if idx else None
    return front, k


def simulate_one(rng: np.random.Generator, w: World, plan: Plan) -> Outcome:
    """One synthetic run through :func:`nasl.decide.plan.run` → Outcome."""
    arms, truth, planted = _world(rng, w, plan.margin)
    front, knee = _low_front(arms)
    order = priority(arms, front, knee, plan.margin, plan.contender)
    seen: dict[str, list[float]] = {}
    macs = {a.name: a.macs / 1e6 for a in arms}
    seen_truth = {k: v + w.confirm_tilt * (25 - macs[k]) / 30 for k, v in truth.items()}
    train = _image_trainer(rng, w, seen_truth) if w.images > 0 else None

    def seeds_only(name: str) -> Sample:
        seen.setdefault(name, []).append(seen_truth[name] + float(rng.normal(0, w.seed_sd)))
        return Sample(tuple(seen[name]))

    d = run(arms, order, train or seeds_only, plan)
    false = 0
    found = False if planted else None
    for c in d.claims:
        if not c.holds:
            continue
        true_diff = truth[c.design] - truth[c.other]
        ok = true_diff > 0 if c.kind == "superior" else true_diff > -c.margin
        false += not ok
        if planted and c.design == planted and (c.kind == "superior") == (w.scenario == "superior"):
            found = True
    best = max(truth, key=lambda k: truth[k])
    pick = next((p.design for p in d.picks if p.tradeoff == "accurate"), None)
    within = pick is not None and truth[pick] >= truth[best] - plan.margin
    old_false = _old_rule_false(arms, truth, w.low_sd)
    old_best = max(arms, key=lambda a: a.low_accuracy).name == best
    confirmed = [a for a in arms if a.name in d.samples]
    before = recommend(confirmed, d.samples, plan.margin, plan.alpha, fast="mean")

    def fast(picks: Sequence[Pick]) -> tuple[bool, float]:
        f = next((p.design for p in picks if p.tradeoff == "fast"), None)
        if f is None or pick is None:
            return False, 1.0
        return truth[f] >= truth[best] - plan.margin, macs[f] / macs[pick]

    return Outcome(sum(c.holds for c in d.claims), false, found, pick == best, within, d.spent,
                   old_false, old_best, (planted in d.samples) if planted else None,
                   *fast(d.picks), *fast(before))


def _image_trainer(rng: np.random.Generator, w: World,
                   truth: dict[str, float]) -> Callable[[str], Sample]:
    """train(name) → the design's Sample with each seed's per-image results on ``w.images``
    holdout images (the probit model of the module's docstring)."""
    from scipy.stats import norm

    m = w.images
    h = rng.normal(0, w.difficulty_sd, m)
    scale = float(np.sqrt(w.difficulty_sd ** 2 + w.interaction_sd ** 2 + w.image_noise_sd ** 2
                          + w.shift_sd ** 2))
    u: dict[str, np.ndarray] = {}
    rows: dict[str, list[np.ndarray]] = {}

    def train(name: str) -> Sample:
        if name not in u:
            u[name] = rng.normal(0, w.interaction_sd, m)
        mu = float(norm.ppf(truth[name])) * scale
        z = rng.normal(0, w.shift_sd)
        rows.setdefault(name, []).append(
            (mu + u[name] + z + rng.normal(0, w.image_noise_sd, m) > h).astype(np.uint8))
        bits = np.stack(rows[name])
        return Sample(tuple(float(x) for x in bits.mean(axis=1)), bits.mean(axis=0), bits)

    return train


def _old_rule_false(arms: Sequence[Arm], truth: dict[str, float], low_sd: float) -> int:
    """False "beats the baseline" claims of the earlier rule: searched s at no more MACs whose
    search accuracy exceeds the baseline's by more than 2 combined standard errors (one seed
    each, the seed std known)."""
    false = 0
    for b in (a for a in arms if a.baseline is not None):
        for s in (a for a in arms if a.baseline is None and a.macs <= b.macs):
            if s.low_accuracy - b.low_accuracy > 2 * low_sd * 2 ** 0.5 and truth[s.name] <= truth[b.name]:
                false += 1
    return false


def simulate(w: World, plan: Plan, runs: int = 500, seed: int = 0) -> list[Outcome]:
    """``runs`` independent synthetic runs (seeded) → their Outcomes. Run ``i`` draws its world
    first from the generator seeded ``(seed, i)``: two plans see the same worlds."""
    return [simulate_one(np.random.default_rng([seed, i]), w, plan) for i in range(runs)]


def summary(outcomes: Sequence[Outcome]) -> dict[str, float]:
    """Rates over runs: any false claim, power (planted truth claimed), best picked, within δ,
    mean claims and trainings spent; ``*_se``: binomial standard errors of the rates."""
    n = len(outcomes)
    rate = lambda xs: float(np.mean(xs)) if len(xs) else float("nan")  # noqa: E731
    se = lambda p, k: float(np.sqrt(p * (1 - p) / k)) if k else float("nan")  # noqa: E731
    any_false = rate([o.false_claims > 0 for o in outcomes])
    found = [o.found for o in outcomes if o.found is not None]
    power = rate(found)
    confirmed = [o.found for o in outcomes if o.confirmed_planted]
    old_false = rate([o.old_false_claims > 0 for o in outcomes])
    return {"runs": n, "any_false": any_false, "any_false_se": se(any_false, n),
            "power": power, "power_se": se(power, len(found)),
            "power_if_confirmed": rate(confirmed), "confirmed_planted": rate(
                [bool(o.confirmed_planted) for o in outcomes if o.found is not None]),
            "old_any_false": old_false, "old_best_picked": rate([o.old_best_picked for o in outcomes]),
            "best_picked": rate([o.best_picked for o in outcomes]),
            "within_margin": rate([o.within_margin for o in outcomes]),
            "fast_within": rate([o.fast_within for o in outcomes]),
            "fast_macs": rate([o.fast_macs for o in outcomes]),
            "old_fast_within": rate([o.old_fast_within for o in outcomes]),
            "old_fast_macs": rate([o.old_fast_macs for o in outcomes]),
            "claims": rate([o.claims for o in outcomes]), "spent": rate([o.spent for o in outcomes])}
