"""Sample splitting: the first high-fidelity seed chooses the claims, the later seeds test them.

In: the arms, every confirmed design's :class:`~nasl.decide.stats.Sample` in the order its
seeds were trained, the margin δ, and how many claims the budget can test. Out: the
*selection* view (each design's first ``select_seeds`` seeds), the *tested* view (the rest),
and the family of :class:`~nasl.decide.claims.Hypothesis` fixed from the selection view only.

Why: a family fixed from the search's low-fidelity numbers is unbiased but often aims at the
wrong design (a fidelity bias reorders designs). Choosing on the first high-fidelity seed
aims better; testing on the later seeds only keeps the test free of that choice, so the
family-wise correction (Holm / BH) stays valid: the family is fixed before the tested data
exist. The holdout **images** are split too (:func:`image_halves`, :func:`views`): the
selection reads the first seed's results on half A of the images only, the tests the later
seeds' results on half B only, so a design that is lucky on particular images (a
design × image interaction) is not chosen for luck its test then sees again. This needs each
seed's per-image results (``Sample.bits``); without them (older runs, table spaces) both steps
use every image, and the image selection bias stays.

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

import numpy as np

from nasl.decide.claims import KINDS, Arm, Hypothesis, cheaper, family, no_costlier
from nasl.decide.stats import Sample

#: Challenger candidates per baseline and kind that get a selection seed (budget allowing).
CANDIDATES = 3
#: Seed of the holdout images' split: fixed, so a resumed run replays the same halves.
IMAGE_SEED = 18
#: Fewest holdout images worth splitting.
MIN_IMAGES = 4

Halves = tuple[np.ndarray, np.ndarray]


def image_halves(m: int, labels: Sequence[int] | np.ndarray | None = None,
                 seed: int = IMAGE_SEED, share: float = 0.5) -> Halves:
    """The ``m`` holdout images' indices split in two parts (A: selection, B: tests), sorted:
    after a seeded permutation (within each class when ``labels`` are given: stratified),
    every position whose running share crosses a multiple of 1/``share`` goes to A (share 0.5:
    the odd positions), the rest to B. Deterministic in ``m``, ``labels``, ``seed``, ``share``."""
    key = np.random.default_rng(seed).permutation(m)
    order = np.lexsort((key, np.asarray(labels))) if labels is not None else np.argsort(key)
    j = np.arange(m)
    in_a = np.floor((j + 1) * share + 1e-9) > np.floor(j * share + 1e-9)
    return np.sort(order[in_a]), np.sort(order[~in_a])


def image_split(samples: Mapping[str, Sample], share: float = 0.5) -> Halves | None:
    """The two parts of the holdout (:func:`image_halves`, ``share`` of the images for the
    selection) when every sample has per-image results for each of its seeds on the same
    ``m`` >= MIN_IMAGES images; None otherwise (then nothing is split by image)."""
    shapes = {None if s.bits is None else np.shape(s.bits) for s in samples.values()}
    ms = {sh[1] for sh in shapes if sh is not None and len(sh) == 2}
    if not samples or None in shapes or len(ms) != 1 or any(
            np.shape(s.bits)[0] != s.n for s in samples.values()):
        return None
    m = ms.pop()
    return image_halves(m, share=share) if m >= MIN_IMAGES else None


def on_images(s: Sample, seeds: slice, images: np.ndarray) -> Sample:
    """``s`` restricted to the seeds ``seeds`` and the images ``images``: each seed's accuracy
    and each image's correct share recomputed from the per-image results."""
    assert s.bits is not None
    sub = np.asarray(s.bits, float)[seeds][:, images]
    return Sample(tuple(float(x) for x in sub.mean(axis=1)), sub.mean(axis=0) if len(sub) else None, sub)


def selection_view(samples: Mapping[str, Sample], k: int = 1,
                   images: np.ndarray | None = None) -> dict[str, float]:
    """Each design's mean over its first ``k`` seeds (designs with at least ``k``), on the
    images ``images`` only when given (else the stored accuracies)."""
    if images is not None:
        return {n: on_images(s, slice(0, k), images).mean for n, s in samples.items() if s.n >= k}
    return {n: sum(s.values[:k]) / k for n, s in samples.items() if s.n >= k}


def later_seeds(samples: Mapping[str, Sample], k: int = 1,
                images: np.ndarray | None = None) -> dict[str, Sample]:
    """Each design's seeds after the first ``k`` (designs that have any): on the images
    ``images`` only when given; else the stored accuracies, and the per-image shares stay
    those of all seeds and images."""
    if images is not None:
        return {n: on_images(s, slice(k, None), images) for n, s in samples.items() if s.n > k}
    return {n: Sample(s.values[k:], s.correct) for n, s in samples.items() if s.n > k}


def views(samples: Mapping[str, Sample], k: int = 1, split_images: bool = True,
          share: float = 0.5) -> tuple[dict[str, float], dict[str, Sample], bool]:
    """(selection view, tested samples, whether the images were split): the first ``k`` seeds
    on part A (``share`` of the holdout images, half by default) and the later seeds on part B
    when ``split_images`` and every sample has per-image results (:func:`image_split`); else
    both on every image."""
    halves = image_split(samples, share) if split_images else None
    if halves is None:
        return selection_view(samples, k), later_seeds(samples, k), False
    a, b = halves
    return selection_view(samples, k, a), later_seeds(samples, k, b), True


def selection_order(arms: Sequence[Arm], order: Sequence[str], margin: float,
                    candidates: int = CANDIDATES, lead: int = 1) -> list[str]:
    """``order`` (:func:`nasl.decide.plan.priority`) with, after each baseline, up to
    ``candidates`` superiority and non-inferiority candidates more, from the search's numbers
    (most accurate at no more cost; strictly cheaper rated within δ, most accurate first),
    and after a searched design listed before any baseline it could beat, the strongest
    such baseline (so that its selection seed can be compared). The first ``lead`` names of
    ``order`` come first, before any of these additions (the top of the front and its
    contender, :func:`nasl.decide.plan.contender`)."""
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
    out: list[str] = [x for x in order[:max(1, lead)] if x in by]
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
