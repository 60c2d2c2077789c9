"""What the power law misses for kernels a sweep never timed: random forests on its residuals.

In: the measured kernels' structure rows (:func:`structure`, one per measured key) and their
log residuals against the per-kind power law. Out: :class:`ResidualForests`, whose
:meth:`~ResidualForests.factors` gives, for a batch of unmeasured kernels, the factor by
which each power-law time is multiplied.

Why: in a ShuffleNet space most of a held-out design's predicted time comes from kernels
whose exact key was never timed (a median 79 % after a 420-design sweep, docs/benchmarks.md),
so the model of those kernels sets the predictor's error. A random forest on the power law's
residuals (nn-Meter's model family for kernels, here correcting the power law rather than
replacing it, so that it extrapolates no worse than the power law) cut one kernel's median
error from 12-15 % to 4-6 % in cross-validation over timed keys; per design, where the
timings' noise dominates, it is undecided (five ShuffleNet runs, 2026-12-07: better in two,
equal in two, worse in one; docs/benchmarks.md).

A forest is not stored (no pickle in a predictor's JSON): the rows are, and each group's
forest is refitted, deterministically (fixed seed), the first time a kernel of that group
needs it — one per kind with at least :data:`MIN_ROWS` rows, else one per family (``*conv``:
convolutions and linear layers, ``*misc``), else one for all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MIN_ROWS = 40  # rows for a kind's own forest (else its family's, else everyone's)
TREES = 100
_SIZE = re.compile(r"(\d+)x\d+")
_GROUPS = re.compile(r"_g(\d+)")
_STRIDE = re.compile(r"_s(\d+)")


def family(kind: str) -> str:
    """``conv`` for convolutions and linear layers, ``misc`` for the rest."""
    return "conv" if kind.startswith(("conv", "dwconv", "linear")) else "misc"


def kind_of(key: str) -> str:
    """The kind of a kernel key (``kind|signature|shapes``)."""
    return key.split("|", 1)[0]


def structure(kind: str, features: Sequence[float], inputs: Sequence[Sequence[int]]) -> list[float]:
    """A kernel as numbers: the logs of its counts (MACs, input, output, parameters; the
    power law's features first), its input channels and side (logs), kernel size, stride,
    groups, depthwise, a memory-format change, its number of inputs."""
    shape = inputs[0] if inputs else ()
    cin, side = (shape[1], shape[-1]) if len(shape) == 4 else (shape[-1] if shape else 0, 1)
    m, g, s = _SIZE.search(kind), _GROUPS.search(kind), _STRIDE.search(kind)
    return [*(math.log1p(v) for v in features), math.log1p(cin), math.log1p(side),
            float(m.group(1)) if m else 0.0, float(s.group(1)) if s else 1.0,
            float(g.group(1)) if g else 1.0, float(kind.startswith("dwconv")),
            float("+" in kind), float(len(inputs))]


class ResidualForests:
    """Forests of ``log measured - log power law`` per kernel group, fitted on first use.

    ``rows``: measured key → :func:`structure`; ``residuals``: key → log residual (same keys).
    """

    def __init__(self, rows: Mapping[str, Sequence[float]], residuals: Mapping[str, float]) -> None:
        self._groups: dict[str, list[str]] = {}
        for key in rows:
            kind = kind_of(key)
            for name in (kind, "*" + family(kind), "*"):
                self._groups.setdefault(name, []).append(key)
        self._rows, self._res = rows, residuals
        self._fitted: dict[str, Any] = {}

    def __bool__(self) -> bool:
        return bool(self._rows)

    def group(self, kind: str) -> str:
        """The group whose forest corrects a kernel of ``kind``."""
        for name in (kind, "*" + family(kind)):
            if len(self._groups.get(name, ())) >= MIN_ROWS:
                return name
        return "*"

    def _forest(self, name: str) -> Any:
        if name not in self._fitted:
            from sklearn.ensemble import RandomForestRegressor

            keys = self._groups[name]
            f = RandomForestRegressor(n_estimators=TREES, min_samples_leaf=2, max_features=0.6,
                                      random_state=0, n_jobs=1)
            self._fitted[name] = f.fit(np.array([self._rows[k] for k in keys], float),
                                       np.array([self._res[k] for k in keys], float))
        return self._fitted[name]

    def factors(self, kinds: Sequence[str], rows: Sequence[Sequence[float]]) -> list[float]:
        """The factor on each kernel's power-law time (one batched prediction per group)."""
        out = [1.0] * len(kinds)
        by: dict[str, list[int]] = {}
        for i, kind in enumerate(kinds):
            by.setdefault(self.group(kind), []).append(i)
        for name, idx in by.items():
            pred = self._forest(name).predict(np.array([rows[i] for i in idx], float))
            for i, v in zip(idx, pred, strict=True):
                out[i] = math.exp(float(v))
        return out
