"""Pareto utilities: non-dominated sort, hypervolume, knee, picking, rank correlation.

Pure Python + numpy (no torch). Every function takes ``points`` as a sequence of
equal-length sequences of finite numbers (one row per trial, one column per objective)
and ``directions`` with one ``"maximize"`` / ``"minimize"`` per objective (Optuna's
``StudyDirection`` values are accepted too). Internally everything is turned into
minimisation by negating maximised objectives.

Domination is the usual strict one: ``a`` dominates ``b`` when ``a`` is no worse in every
objective and strictly better in at least one. Identical points therefore never dominate
each other, so duplicates of a non-dominated point are all kept on the front.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "ALIASES",
    "feasible_points",
    "finite",
    "hypervolume",
    "hypervolume_curve",
    "knee",
    "non_dominated",
    "non_dominated_sort",
    "normalised_hypervolume",
    "objective_reference",
    "pick",
    "reference_point",
    "spearman",
]

#: Short names accepted by :func:`pick` for objective columns.
ALIASES: dict[str, str] = {"latency": "latency_ms", "size": "size_mb"}

_DIRECTIONS = {"minimize": 1.0, "maximize": -1.0}


def _signs(directions: Sequence[Any]) -> np.ndarray:
    """Directions -> array of +1 (minimize) / -1 (maximize)."""
    signs = []
    for d in directions:
        key = str(getattr(d, "name", d)).lower()
        if key not in _DIRECTIONS:
            raise ValueError(f"direction {d!r} is not one of 'maximize', 'minimize'")
        signs.append(_DIRECTIONS[key])
    return np.asarray(signs, dtype=float)


def _as_loss(points: Sequence[Sequence[float]], directions: Sequence[Any]) -> np.ndarray:
    """Points + directions -> float array (n, m) to be minimised; validates shape and values."""
    signs = _signs(directions)
    arr = np.asarray(points, dtype=float)
    if arr.size == 0:
        return np.empty((0, len(signs)))
    if arr.ndim != 2 or arr.shape[1] != len(signs):
        raise ValueError(
            f"points must be a (n, {len(signs)}) table, one value per objective; got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("points must be finite numbers (drop trials with missing values)")
    return arr * signs


def _non_dominated_mask(loss: np.ndarray) -> np.ndarray:
    """Loss array (n, m) -> boolean mask of the non-dominated rows."""
    keep = np.ones(len(loss), dtype=bool)
    for i, row in enumerate(loss):
        dominated_by = np.all(loss <= row, axis=1) & np.any(loss < row, axis=1)
        keep[i] = not dominated_by.any()
    return keep


def non_dominated(points: Sequence[Sequence[float]], directions: Sequence[Any]) -> list[int]:
    """Indices (ascending) of the non-dominated points; identical front points are all kept."""
    loss = _as_loss(points, directions)
    return [int(i) for i in np.flatnonzero(_non_dominated_mask(loss))]


def non_dominated_sort(
    points: Sequence[Sequence[float]], directions: Sequence[Any]
) -> list[list[int]]:
    """Indices grouped into fronts: rank 0 (the Pareto front) first, each front ascending."""
    loss = _as_loss(points, directions)
    remaining = np.arange(len(loss))
    fronts: list[list[int]] = []
    while remaining.size:
        mask = _non_dominated_mask(loss[remaining])
        fronts.append([int(i) for i in remaining[mask]])
        remaining = remaining[~mask]
    return fronts


def _hv_exact(loss: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume by slicing on the last objective (2-D sweep at the bottom).

    ``loss`` (n, m) must be strictly better than ``ref`` (m,) in every coordinate.
    """
    if len(loss) == 0:
        return 0.0
    if loss.shape[1] == 1:
        return float(ref[0] - loss[:, 0].min())
    if loss.shape[1] == 2:
        area, best_y = 0.0, float(ref[1])
        for x, y in sorted(map(tuple, loss)):
            if y < best_y:
                area += (float(ref[0]) - x) * (best_y - y)
                best_y = y
        return area
    order = np.argsort(loss[:, -1], kind="stable")
    pts = loss[order]
    volume = 0.0
    for i in range(len(pts)):
        upper = pts[i + 1, -1] if i + 1 < len(pts) else ref[-1]
        if upper > pts[i, -1]:
            sub = pts[: i + 1, :-1]
            volume += float(upper - pts[i, -1]) * _hv_exact(sub[_non_dominated_mask(sub)], ref[:-1])
    return volume


def hypervolume(
    points: Sequence[Sequence[float]],
    directions: Sequence[Any],
    reference: Sequence[float],
) -> float:
    """Exact hypervolume dominated by ``points`` and bounded by ``reference``.

    Points not strictly better than the reference in every objective add nothing (they are
    dropped). Uses ``optuna._hypervolume.compute_hypervolume`` (WFG) when available, else an
    exact slicing algorithm (fine for the few tens of front points a search produces).
    """
    loss = _as_loss(points, directions)
    ref = _as_loss([list(reference)], directions)[0]
    loss = loss[np.all(loss < ref, axis=1)]
    if len(loss) == 0:
        return 0.0
    try:
        from optuna._hypervolume import compute_hypervolume
    except ImportError:  # private Optuna API moved: fall back to our own exact version
        return _hv_exact(loss[_non_dominated_mask(loss)], ref)
    return float(compute_hypervolume(loss, ref))


def reference_point(
    points: Sequence[Sequence[float]],
    directions: Sequence[Any],
    budgets: Mapping[str, float] | Sequence[float | None] | None = None,
    names: Sequence[str] | None = None,
) -> list[float]:
    """A hypervolume reference point, one value per objective.

    Per objective: its budget when one is given (``budgets`` is either a mapping keyed by
    ``names``, e.g. ``{"macs": 40e6}``, or a sequence aligned with the objectives, ``None``
    for no budget); else ``0`` for a maximised objective whose values are all >= 0
    (accuracy); else the worst value moved 10 % further out (10 % of its magnitude, or of
    the value range / 1.0 when the worst value is 0).
    """
    signs = _signs(directions)
    arr = np.asarray(points, dtype=float).reshape(-1, len(signs))
    if isinstance(budgets, Mapping):
        if names is None:
            raise ValueError("budgets given by name need `names`, one per objective")
        aligned = [budgets.get(n, budgets.get(ALIASES.get(n, n))) for n in names]
    else:
        aligned = list(budgets) if budgets is not None else [None] * len(signs)
    if len(aligned) != len(signs):
        raise ValueError(f"need {len(signs)} budgets (None for none), got {len(aligned)}")
    ref: list[float] = []
    for j, sign in enumerate(signs):
        col = arr[:, j]
        if aligned[j] is not None:
            ref.append(float(aligned[j]))  # type: ignore[arg-type]
            continue
        if sign < 0 and col.size and np.all(col >= 0):
            ref.append(0.0)
            continue
        if not col.size:
            label = names[j] if names else f"objective {j}"
            raise ValueError(f"no points and no budget to place the reference for {label}")
        worst = float(col.max() if sign > 0 else col.min())
        span = float(col.max() - col.min())
        margin = 0.1 * (abs(worst) if worst != 0 else (span or 1.0))
        ref.append(worst + sign * margin)
    return ref


def knee(points: Sequence[Sequence[float]], directions: Sequence[Any]) -> int:
    """Index of the knee of the Pareto front of ``points``.

    Method: take the front, min-max normalise each (minimised) objective over it, find the
    extreme point of each objective (best in it, ties broken by the sum of the others), and
    return the front point with the largest signed distance from the hyperplane through the
    extremes, measured towards the ideal point. When the extremes do not span a hyperplane
    (degenerate fronts) the point nearest the ideal point is taken instead. A front of one
    point returns it; of two points (or equal distances) the better on the first objective
    wins, then the lower index. A concave front has no bulge, so an extreme is returned.
    """
    loss = _as_loss(points, directions)
    if len(loss) == 0:
        raise ValueError("knee of an empty set of points")
    front = np.flatnonzero(_non_dominated_mask(loss))
    f = loss[front]
    m = f.shape[1]
    if len(front) <= 2 or m == 1:
        return _best(loss, front, 0)
    lo, hi = f.min(axis=0), f.max(axis=0)
    z = (f - lo) / np.where(hi > lo, hi - lo, 1.0)
    extremes = [min(range(len(z)), key=lambda i, j=j: (z[i, j], z[i].sum())) for j in range(m)]
    e = z[extremes]
    if len(set(extremes)) == m and np.linalg.cond(e) < 1e12:
        normal = np.linalg.solve(e, np.ones(m))
        dist = (1.0 - z @ normal) / np.linalg.norm(normal)
    else:
        dist = -np.linalg.norm(z, axis=1)
    tied = front[dist >= dist.max() - 1e-12]
    return _best(loss, tied, 0)


def _best(loss: np.ndarray, candidates: np.ndarray, j: int) -> int:
    """Candidate best on objective ``j``; ties by the other objectives in order, then index."""
    order = [j] + [k for k in range(loss.shape[1]) if k != j]
    return int(min(candidates, key=lambda i: (*loss[i, order], i)))


def pick(
    points: Sequence[Sequence[float]],
    directions: Sequence[Any],
    how: str,
    names: Sequence[str] | None = None,
) -> int:
    """Index of one front point chosen by ``how``.

    ``how`` is ``"knee"`` (see :func:`knee`) or an objective name from ``names`` (aliases:
    ``latency`` -> ``latency_ms``, ``size`` -> ``size_mb``): the front point best in that
    objective (highest accuracy, lowest MACs, ...), ties by the other objectives in order.
    Raises ``ValueError`` naming the valid options for anything else.
    """
    if how == "knee":
        return knee(points, directions)
    names = list(names or [])
    valid = ["knee", *names, *(a for a, n in ALIASES.items() if n in names and a not in names)]
    column = how if how in names else ALIASES.get(how)
    if column not in names:
        raise ValueError(f"pick: unknown choice {how!r}; valid: {', '.join(valid)}")
    loss = _as_loss(points, directions)
    if len(loss) == 0:
        raise ValueError("pick from an empty set of points")
    front = np.flatnonzero(_non_dominated_mask(loss))
    return _best(loss, front, names.index(column))


def _average_ranks(a: np.ndarray) -> np.ndarray:
    """1-based ranks of ``a``; tied values share the average of their ranks."""
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse.reshape(-1)]


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation of two equal-length finite sequences (ties averaged).

    Returns ``nan`` with fewer than 2 pairs or when either side is constant.
    """
    xa, ya = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if xa.shape != ya.shape:
        raise ValueError(f"spearman needs equal lengths, got {xa.size} and {ya.size}")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise ValueError("spearman needs finite values (drop missing pairs first)")
    if xa.size < 2:
        return float("nan")
    rx, ry = _average_ranks(xa), _average_ranks(ya)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


# ----------------------------------------------------------------------------- rows of a run
def _col(metric: str) -> str:
    return ALIASES.get(metric, metric)


def finite(value: Any) -> float | None:
    """Finite float of ``value`` or None (bools and blanks are not numbers)."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def feasible_points(rows: Sequence[Mapping[str, Any]], objectives: Sequence[tuple[str, str]]
            ) -> list[tuple[int, list[float]]]:
    """(row index, objective values) of the feasible COMPLETE rows that have every value."""
    out = []
    for i, r in enumerate(rows):
        if str(r.get("state")) != "COMPLETE" or r.get("feasible") is False:
            continue
        vals = [finite(r.get(_col(m))) for m, _ in objectives]
        if None not in vals:
            out.append((i, [float(v) for v in vals if v is not None]))
    return out


def normalised_hypervolume(points: Sequence[Sequence[float]], directions: Sequence[str],
                           reference: Sequence[float]) -> float:
    """Hypervolume of ``points`` with every objective divided by ``|reference|`` (when not 0).

    With MACs/latency budgets as the reference and accuracy (reference 0) this is the
    fraction of the box [0, budget] × [0, 1] that the front dominates, in [0, 1].
    """
    if not points:
        return 0.0
    scale = [abs(r) if r else 1.0 for r in reference]
    pts = [[v / s for v, s in zip(p, scale, strict=True)] for p in points]
    ref = [r / s for r, s in zip(reference, scale, strict=True)]
    return float(hypervolume(pts, list(directions), ref))


def objective_reference(points: Sequence[Sequence[float]], objectives: Sequence[tuple[str, str]],
               budgets: Mapping[str, float]) -> list[float] | None:
    names = [_col(m) for m, _ in objectives]
    aligned = {_col(k): float(v) for k, v in budgets.items()}
    try:
        return reference_point(points, [d for _, d in objectives], aligned, names)
    except ValueError:  # no points and no budget for some objective: nothing to measure yet
        return None


def hypervolume_curve(rows: Sequence[Mapping[str, Any]], objectives: Sequence[tuple[str, str]],
                      budgets: Mapping[str, float] | None = None) -> list[tuple[int, float]]:
    """``(finished trials, hypervolume)`` after each finished trial, in trial-number order.

    One reference point for the whole curve (budgets, else from all feasible results), so
    the curve never decreases. Running trials are skipped.
    """
    directions = [d for _, d in objectives]
    done = sorted((r for r in rows if str(r.get("state")) not in ("RUNNING", "WAITING")),
                  key=lambda r: finite(r.get("number")) or 0.0)
    ref = objective_reference([p for _, p in feasible_points(done, objectives)], objectives, budgets or {})
    curve: list[tuple[int, float]] = []
    front: list[list[float]] = []
    hv = 0.0
    for n, row in enumerate(done, start=1):
        got = feasible_points([row], objectives)
        if got and ref is not None:
            cand = [*front, got[0][1]]
            keep = non_dominated(cand, directions)
            if len(cand) - 1 in keep:  # the new point is on the front: recompute
                front = [cand[i] for i in keep]
                hv = normalised_hypervolume(front, directions, ref)
        curve.append((n, hv))
    return curve
