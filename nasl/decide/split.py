"""Sample splitting: the first high-fidelity seed chooses the claims, the later seeds test them.

In: the arms, every confirmed design's :class:`~nasl.decide.stats.Sample` in the order its
seeds were trained, the margin δ, and how many claims the budget can test. Out: the
*selection* view (each design's first ``select_seeds`` seeds), the *tested* view (the rest),
and the family of :class:`~nasl.decide.claims.Hypothesis` fixed from the selection view only.

Why: a family fixed from the search's low-fidelity numbers is unbiased but often aims at the
wrong design (a fidelity bias reorders designs). Choosing on the first high-fidelity seed
aims better; testing on the later seeds only keeps the test free of that choice, so the
family-wise correction (Holm / BH) stays valid: the family is fixed before the tested data
exist. What stays shared: the holdout images (a design that is lucky on those images at its
selection seed stays lucky at its tested seeds); the per-image noise term of each test
covers the sampling error of the images, not that selection.

The family (:func:`split_family`): for every baseline with a selection seed,

* **superiority**: the searched design at no more cost whose selection seed is highest,
  when it is above the baseline's;
* **non-inferiority**: the strictly cheaper searched design whose selection seed is highest,
  when it is above the baseline's minus δ;

then the most promising of each kind first (selection difference, plus δ for
non-inferiority), the kinds taking turns (superiority first), as many as the budget left can
test.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

from nasl.decide.claims import KINDS, Arm, Hypothesis, cheaper, family, no_costlier
from nasl.decide.stats import Sample

#: Challenger candidates per baseline and kind that get a selection seed (budget allowing).
CANDIDATES = 3


def selection_view(samples: Mapping[str, Sample], k: int = 1) -> dict[str, float]:
    """Each design's mean over its first ``k`` seeds (designs with at least ``k``)."""
    return {n: sum(s.values[:k]) / k for n, s in samples.items() if s.n >= k}


def later_seeds(samples: Mapping[str, Sample], k: int = 1) -> dict[str, Sample]:
    """Each design's seeds after the first ``k`` (designs that have any). The per-image
    shares stay those of all seeds (the images are the same holdout)."""
    return {n: Sample(s.values[k:], s.correct) for n, s in samples.items() if s.n > k}


def selection_order(arms: Sequence[Arm], order: Sequence[str], margin: float,
                    candidates: int = CANDIDATES) -> list[str]:
    """``order`` (:func:`nasl.decide.plan.priority`) with, after each baseline, up to
    ``candidates`` superiority and non-inferiority candidates more, from the search's numbers
    (most accurate at no more cost; strictly cheaper rated within δ, most accurate first),
    and after a searched design listed before any baseline it could beat, the strongest
    such baseline (so that its selection seed can be compared)."""
    by = {a.name: a for a in arms}
    searched = [a for a in arms if a.baseline is None and math.isfinite(a.low_accuracy)]
    extra: dict[str, list[str]] = {}
    for h in family(arms, margin, challengers=candidates):
        if h.kind == "superior":
            extra.setdefault(h.other, []).append(h.design)
    for b in (a for a in arms if a.baseline is not None):
        cheap = sorted((s for s in searched if cheaper(s, b)), key=lambda s: (-s.low_accuracy, s.macs))
        near = [s for s in cheap if s.low_accuracy >= b.low_accuracy - margin] or cheap
        extra.setdefault(b.name, []).extend(s.name for s in near[:candidates])
    bases = sorted((a for a in arms if a.baseline is not None), key=lambda a: -a.low_accuracy)
    out: list[str] = []
    for n in (x for x in order if x in by):
        out.append(n)
        if by[n].baseline is not None:
            out += extra.get(n, [])
        elif not any(by[x].baseline is not None and no_costlier(by[n], by[x]) for x in out):
            # a searched design (the top of the front, the knee) with the baseline it could beat
            out += [b.name for b in bases if no_costlier(by[n], b)][:1]
    return list(dict.fromkeys(out))


def split_family(arms: Sequence[Arm], first: Mapping[str, float], margin: float,
                 max_claims: int) -> list[Hypothesis]:
    """The family chosen from the selection seeds ``first`` (name → accuracy) and the arms'
    costs: at most ``max_claims`` hypotheses, the most promising first."""
    searched = [a for a in arms if a.baseline is None and a.name in first]
    scored: list[tuple[float, Hypothesis]] = []
    for b in (a for a in arms if a.baseline is not None and a.name in first):
        ok = [s for s in searched if no_costlier(s, b)]
        if ok:
            s = max(ok, key=lambda s: (first[s.name], -s.macs))
            if first[s.name] > first[b.name]:
                scored.append((first[s.name] - first[b.name], Hypothesis("superior", s.name, b.name)))
        cheap = [s for s in searched if cheaper(s, b)]
        if cheap:
            s = max(cheap, key=lambda s: (first[s.name], -s.macs))
            if first[s.name] > first[b.name] - margin:
                scored.append((first[s.name] - first[b.name] + margin,
                               Hypothesis("noninferior", s.name, b.name)))
    scored.sort(key=lambda x: (-x[0], x[1].kind, x[1].design, x[1].other))
    kinds = [[h for _, h in scored if h.kind == k] for k in KINDS]
    mixed = [h for pair in itertools.zip_longest(*kinds) for h in pair if h is not None]
    return mixed[:max(0, max_claims)]
