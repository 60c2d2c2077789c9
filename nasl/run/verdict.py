"""A run's rows with their noise: seed statistics per trial and the front's confidence.

In: trial rows (as in ``trials.csv``) whose ``accuracy_seeds`` hold every seed's accuracy
and, for re-timed designs, ``latency_rounds_ms``; the run's objectives. Out: the same rows
with ``accuracy`` (the mean over seeds), ``accuracy_std``, ``accuracy_low``/``accuracy_high``
(95 % interval), ``n_seeds``, ``latency_low_ms``/``latency_high_ms``, ``confident`` and
``tied_with`` filled in, and the front's confidence (:class:`nasl.stats.confidence.FrontConfidence`
as a dict keyed by trial numbers) for pareto.json, the report and W&B. No torch, no Optuna.

The rules are :mod:`nasl.stats.confidence`'s: two accuracies are tied when they differ by no more
than twice their combined standard error; one-seed trials borrow the run's pooled seed std.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from nasl.common.record import TrialRecord
from nasl.stats import confidence as cf
from nasl.stats.pareto import finite as _finite

#: Objectives the confidence analysis covers (others: the front is reported without it).
COVERED = ("accuracy", "macs", "latency_ms")


def seed_values(row: dict[str, Any]) -> list[float]:
    """Every seed accuracy of a row (``accuracy_seeds``, else its single ``accuracy``)."""
    seeds = row.get("accuracy_seeds")
    if isinstance(seeds, str):
        seeds = [s for s in seeds.split(",") if s.strip()]
    vals = [v for v in (_finite(s) for s in (seeds or [])) if v is not None]
    if not vals and row.get("state") == "COMPLETE" and _finite(row.get("accuracy")) is not None:
        vals = [float(row["accuracy"])]
    return vals


def add_seed_stats(rows: Sequence[dict[str, Any]]) -> tuple[float, int]:
    """Fill the accuracy statistics of every COMPLETE row → (pooled seed std, its dof)."""
    done = {i: seed_values(r) for i, r in enumerate(rows) if r.get("state") == "COMPLETE"}
    done = {i: v for i, v in done.items() if v}
    groups = list(done.values())
    sd, df = cf.pooled_std(groups), cf.pooled_df(groups)
    for i, vals in done.items():
        s = cf.seed_summary(vals, pooled_sd=sd, pooled_dof=df)
        rows[i].update(TrialRecord.columns(
            accuracy=s.mean, accuracy_seeds=vals, n_seeds=s.n,
            accuracy_std=s.sd_used if math.isfinite(s.sd_used) else None,
            accuracy_low=s.low if math.isfinite(s.low) else None,
            accuracy_high=s.high if math.isfinite(s.high) else None))
    return sd, df


def latency_stats(row: dict[str, Any]) -> cf.LatencyStats | None:
    """The row's latency rounds (final re-timing) as LatencyStats, else its one measurement.

    One measurement (a median over its timed repeats) gets the interval its repeats support,
    not zero width: its 10th..90th percentiles, which hold the order-statistic 95 % interval
    of a median of 20 or more repeats (ranks 6..15 of 20)."""
    rounds = row.get("latency_rounds_ms")
    if isinstance(rounds, str):
        rounds = [float(x) for x in rounds.split(",") if x.strip()]
    if rounds:
        return cf.latency_summary(rounds)
    med = _finite(row.get("latency_ms"))
    if med is None:
        return None
    lo, hi = _finite(row.get("latency_p10_ms")), _finite(row.get("latency_p90_ms"))
    if lo is None or hi is None or not lo <= med <= hi:
        return cf.latency_summary([med])
    return cf.LatencyStats((med,), med, lo, hi, 0.95, 0.95)


def low_fidelity_knee(rows: Sequence[dict[str, Any]],
                      objectives: Sequence[tuple[str, str]]) -> str | None:
    """Trial number (as a string) of the knee of the marked front on the search's means."""
    from nasl.stats.pareto import knee

    front = [r for r in rows if r.get("pareto")]
    if not front:
        return None
    names = [m for m, _ in objectives]
    pts = [[float(_finite(r.get(m)) or 0.0) for m in names] for r in front]
    return str(front[knee(pts, [d for _, d in objectives])]["number"])


def _se(row: dict[str, Any]) -> float:
    std, n = _finite(row.get("accuracy_std")), int(row.get("n_seeds") or 1)
    return std / math.sqrt(n) if std is not None else float("nan")


def candidates(rows: Sequence[dict[str, Any]], objectives: Sequence[str]) -> list[cf.Candidate]:
    """Feasible COMPLETE rows with every objective, as confidence candidates named by number."""
    out = []
    for r in rows:
        if r.get("state") != "COMPLETE" or not r.get("feasible"):
            continue
        if any(_finite(r.get(m)) is None for m in objectives):
            continue
        lat = latency_stats(r) if "latency_ms" in objectives else None
        out.append(cf.Candidate(str(r["number"]), float(r["accuracy"]), _se(r), float(r["macs"]),
                                lat, bool(r.get("baseline"))))
    return out


def front_verdict(rows: Sequence[dict[str, Any]],
                  objectives: Sequence[tuple[str, str]]) -> dict[str, Any] | None:
    """Mark ``confident``/``tied_with`` on the front rows → the front's confidence as a dict.

    None when the objectives are not accuracy + MACs (+ latency), or when no design was
    trained with two seeds (the noise is unknown): the front is then reported without a
    confidence analysis. Trial numbers are strings in the dict.
    """
    names = [m for m, _ in objectives]
    if set(names) - set(COVERED) or "accuracy" not in names or "macs" not in names:
        return None
    cands = candidates(rows, names)
    if not any(math.isfinite(c.accuracy_se) for c in cands):
        return None  # no design has two seeds: the noise is unknown, nothing can be told apart
    fc = cf.front_confidence(cands, names)
    by_number = {str(r["number"]): r for r in rows}
    for m in fc.members:
        row = by_number[m.name]
        row["confident"] = m.confident
        row["tied_with"] = int(m.tied_to) if m.tied_to is not None else None
    out = fc.to_dict()
    for b in out["baselines"]:  # type: ignore[union-attr]
        b["trial"] = int(b["name"])
        b["name"] = by_number[b["name"]].get("baseline")
    return out


def near_front(rows: Sequence[dict[str, Any]], objectives: Sequence[tuple[str, str]],
               k: float = cf.TIE_FACTOR) -> list[dict[str, Any]]:
    """COMPLETE feasible rows off the front that no front member beats beyond noise: for
    every front member at no higher cost, the accuracy gap is within ``k`` combined standard
    errors. Closest first (smallest gap in standard errors)."""
    costs = [m for m, d in objectives if m != "accuracy"]
    front = [r for r in rows if r.get("pareto")]
    out = []
    for r in rows:
        if r.get("pareto") or r.get("state") != "COMPLETE" or not r.get("feasible") \
                or _finite(r.get("accuracy")) is None:
            continue
        gaps = []
        for f in front:
            if all((_finite(f.get(c)) or 0.0) <= (_finite(r.get(c)) or 0.0) for c in costs):
                se = math.hypot(_se(f), _se(r))
                gap = float(f["accuracy"]) - float(r["accuracy"])
                gaps.append(gap / se if se > 0 and math.isfinite(se) else (0.0 if gap <= 0
                                                                           else math.inf))
        worst = max(gaps, default=0.0)
        if worst <= k:
            out.append((worst, r))
    return [r for _, r in sorted(out, key=lambda x: x[0])]


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (kept here so callers need no statistics import)."""
    return statistics.fmean(values)
