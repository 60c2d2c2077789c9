"""Decisions that hold beyond the proxy: confirmation at higher fidelity on fresh seeds,
claims controlled as a family, and the recommendation (no torch, no Optuna).

``stats`` (tests, corrections) → ``claims`` (which hypotheses, decided how) →
``recommend`` (the best bet per trade-off) → ``plan`` (what to train, in which order, within
a budget) → ``simulate`` (synthetic runs with known truth through the same code).
"""

from nasl.decide.claims import Arm, Claim, Hypothesis, decide, family, sentence
from nasl.decide.plan import Decision, Plan, claims_of, images_split, priority, run
from nasl.decide.recommend import Pick, recommend
from nasl.decide.stats import Sample, adjust, pair_test, pooled

__all__ = ["Arm", "Claim", "Decision", "Hypothesis", "Pick", "Plan", "Sample", "adjust", "claims_of",
           "decide", "family", "images_split", "pair_test", "pooled", "priority", "recommend", "run",
           "sentence"]
