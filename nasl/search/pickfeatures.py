"""Design features for the ``pick`` sampler's Gaussian process (issue 23), beside the one-hot choices.

In: designs as tuples of choice values (a table's choice columns, in order). Out: per feature
group a matrix (designs × features) whose squared Euclidean distance, divided by its mean over
random pairs, enters the kernel exp(-Σ_g w_g · D_g) (:class:`FeatureKernel`), weights by
marginal likelihood (:meth:`FeatureKernel.fit`). :func:`nasl.search.pick.PickProposer` uses
:data:`NB201_GROUPS` when the table's choices look like NAS-Bench-201's (:func:`looks_nb201`:
six choice columns named ``edge_1_0`` .. ``edge_3_2`` — the names a ``cell: {format: nb201}``
table gets — whose values are NB201 ops), else the plain Hamming kernel of ``pick.py``.

Groups (one letter each, as in ``bench/bench_strategy.py``'s strategy names ``-k<letters>``):

- ``H``: the choices themselves (Hamming distance, as ``pick.py``'s own kernel). Generic.
- ``C``: counts of each value over the choice columns (generic: every table whose columns share
  values, e.g. NB201's five ops over six edges).
- ``L``: the choices with every edge that lies on no live input→output path set to ``none``
  (NB201 only: two cells that compute the same function get the same code).
- ``E``: counts of each op over the live edges, and whether the cell is cut off (NB201 only).
- ``P``: path encoding (White et al., BANANAS 2021): for each input→output path 0→3, 0→1→3,
  0→2→3, 0→1→2→3 that has no ``none`` edge, its op sequence counted in a vocabulary of the
  4 + 16 + 64 sequences over the four other ops (NB201 only).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product
from typing import Any

import numpy as np

from nasl.space.tabledata import NB201_EDGES, NB201_OPS

Key = tuple[str, ...]
NONE = "none"
#: NB201 edges in the table's order edge_1_0, edge_2_0, edge_2_1, edge_3_0, edge_3_1, edge_3_2;
#: the four input→output paths as edge indices
PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))
NB201_LIKE = set(NB201_OPS)
#: the groups ``pick`` uses on NAS-Bench-201-like tables (docs/benchmarks.md, "Path and
#: op-count features for the pick sampler")
NB201_GROUPS = "EP"


def looks_nb201(values: list[list[str]], names: Sequence[str] | None = None) -> bool:
    """True when the path features apply: six choice columns whose values are NB201 ops and,
    when ``names`` are given, named as NB201's edges (``edge_1_0`` .. ``edge_3_2``, the names a
    ``cell: {format: nb201}`` table gets), so that the edge order is known."""
    return (len(values) == 6 and all(set(v) <= NB201_LIKE for v in values)
            and (names is None or tuple(names) == NB201_EDGES))


def live_edges(key: Key) -> list[int]:
    """Edges on at least one input→output path without a ``none`` edge."""
    live: set[int] = set()
    for path in PATHS:
        if all(key[e] != NONE for e in path):
            live.update(path)
    return sorted(live)


def group_matrix(keys: list[Key], values: list[list[str]], group: str) -> np.ndarray:
    """The feature matrix of one group (see the module doc) for ``keys``."""
    if group == "H":
        return np.array([[values[e].index(o) for e, o in enumerate(k)] for k in keys], dtype=float)
    if group == "C":
        vocab = sorted({o for vals in values for o in vals})
        return np.array([[k.count(o) for o in vocab] for k in keys], dtype=float)
    if not looks_nb201(values):
        raise ValueError(f"feature group {group!r} needs NB201's six edges × five ops")
    ops = sorted(NB201_LIKE - {NONE})
    if group == "L":
        code = {o: i for i, o in enumerate(sorted(NB201_LIKE))}
        return np.array([[code[k[e] if e in live_edges(k) else NONE] for e in range(6)]
                         for k in keys], dtype=float)
    if group == "E":
        out = []
        for k in keys:
            live = live_edges(k)
            out.append([sum(k[e] == o for e in live) for o in ops] + [2.0 * (not live)])
        return np.array(out, dtype=float)
    if group == "P":
        seqs = [s for n in (1, 2, 3) for s in product(ops, repeat=n)]
        pos = {s: i for i, s in enumerate(seqs)}
        x = np.zeros((len(keys), len(seqs) + 1))
        for r, k in enumerate(keys):
            for path in PATHS:
                seq = tuple(k[e] for e in path)
                if NONE not in seq:
                    x[r, pos[seq]] += 1
            x[r, -1] = 2.0 * (x[r, :-1].sum() == 0)  # cut off: far from every live cell
        return x
    raise ValueError(f"unknown feature group {group!r} (expected some of H, C, L, E, P)")


def profiled_loglik(k: np.ndarray, z: np.ndarray) -> float:
    """Log marginal likelihood of ``z`` under a zero-mean GP with covariance ∝ ``k`` (the
    scale σ² profiled out, constants dropped); -inf when ``k`` is not positive definite."""
    try:
        L = np.linalg.cholesky(k)
    except np.linalg.LinAlgError:
        return -np.inf
    a = np.linalg.solve(L, z)
    return float(-0.5 * len(z) * np.log(float(a @ a) / len(z)) - np.log(np.diag(L)).sum())


class FeatureKernel:
    """exp(-Σ_g w_g · D_g(a, b)) over the groups, D_g = squared distance (Hamming for the
    categorical groups H and L) / its mean over random pairs of ``keys`` (so w = 1 means "an
    average pair is e⁻¹ alike")."""

    def __init__(self, keys: list[Key], values: list[list[str]], groups: str):
        self.groups = groups
        self.mats = [group_matrix(keys, values, g) for g in groups]
        rng = np.random.default_rng(0)
        i, j = rng.integers(len(keys), size=(2, 4000))
        self.scale = [max(1e-12, float(self._dist(m, g, i, j, pairwise=True).mean()))
                      for m, g in zip(self.mats, groups, strict=True)]

    @staticmethod
    def _dist(m: np.ndarray, g: str, a: np.ndarray, b: np.ndarray, pairwise: bool = False) -> np.ndarray:
        if pairwise:
            d = m[a] - m[b]
            return (d != 0).sum(-1).astype(float) if g in "HL" else (d ** 2).sum(-1)
        if g in "HL":
            return (m[a][:, None, :] != m[b][None, :, :]).sum(-1).astype(float)
        return ((m[a][:, None, :] - m[b][None, :, :]) ** 2).sum(-1)

    def dists(self, a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
        """Normalised distance matrices of each group between designs ``a`` and ``b`` (indices)."""
        return [self._dist(m, g, a, b) / s
                for m, g, s in zip(self.mats, self.groups, self.scale, strict=True)]

    @staticmethod
    def combine(ds: list[np.ndarray], w: tuple[float, ...]) -> np.ndarray:
        """The kernel matrix exp(-Σ_g w_g · D_g) from :meth:`dists` and the groups' weights."""
        return np.exp(-sum(wi * d for wi, d in zip(w, ds, strict=True)))

    def fit(self, idx: np.ndarray, latq: np.ndarray, z: np.ndarray, prev: tuple[Any, float, float] | None,
            lat_kernel: bool = True) -> tuple[tuple[float, ...], float, float]:
        """(group weights, ℓ_lat, noise) of the largest marginal likelihood (σ² profiled) for
        normal scores ``z`` of designs ``idx`` with latency quantiles ``latq``; the kernel is this
        one × exp(-Δq²/2ℓ_lat²). The full grid for one or two groups, else coordinate sweeps
        from ``prev`` (the last choice)."""
        ds = self.dists(idx, idx)
        dq2 = (latq[:, None] - latq[None, :]) ** 2
        n_g = len(ds)
        w_grid = (0.5, 1.0, 2.0, 4.0, 8.0) if n_g == 1 else (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
        lat_grid = (0.02, 0.05, 0.1, 0.2, 0.5) if lat_kernel else (1e9,)
        noise_grid = (1e-3, 1e-2, 1e-1)
        eye = np.eye(len(idx))

        def ll(h: tuple[tuple[float, ...], float, float]) -> float:
            w, ell_lat, noise = h
            if not any(w):
                return -np.inf
            return profiled_loglik(self.combine(ds, w) * np.exp(-dq2 / (2 * ell_lat ** 2)) + noise * eye, z)

        if n_g <= 2:
            grid = [(w, el, nz) for w in product(w_grid, repeat=n_g) for el in lat_grid for nz in noise_grid]
            return max(grid, key=ll)
        cur = prev if prev is not None else ((1.0,) * n_g, 0.1, 1e-2)
        cur_ll = ll(cur)
        for _ in range(3):  # coordinate sweeps
            moved = False
            for c in range(n_g + 2):
                w, el, nz = cur
                for v in (w_grid if c < n_g else lat_grid if c == n_g else noise_grid):
                    h = (((*w[:c], v, *w[c + 1:]), el, nz) if c < n_g
                         else (w, v, nz) if c == n_g else (w, el, v))
                    val = ll(h)
                    if val > cur_ll + 1e-9:
                        cur, cur_ll, moved = h, val, True
            if not moved:
                break
        return cur
