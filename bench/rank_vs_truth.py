"""How well a run's numbers rank the designs' long-training truth (Kendall τ), offline.

In: a run folder (its ``trials.csv``) and the re-check JSONL of ``bench/recheck_claims.py``
(30-epoch accuracies per recipe, design ``number`` and seed). Out, per recipe: τ of the
search's accuracies, of MACs alone, and of an empirical-Bayes shrinkage of the search's
accuracies toward a least-squares trend on log MACs (prior variance = residual variance
minus the seed variance seen on repeated designs; leave-one-out trend) against the truth
(mean over its seeds), on the designs the re-check trained; where the run stored learning
curves, also a one-step extrapolation (the last epoch's gain added once). No training, no timing.

    python bench/rank_vs_truth.py runs/fm10k-split bench/results/recheck-fm10k-split-2026-12-07.jsonl
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

ASSUMED_SEED_STD = 0.006  # a 3-epoch proxy's seed std when the run repeated no design


def shrunk(acc: np.ndarray, macs: np.ndarray, seed_var: float, n: np.ndarray) -> np.ndarray:
    """Posterior means of the accuracies under a normal prior centred on a log-MACs trend."""
    x = np.column_stack([np.ones(len(acc)), np.log(macs)])
    trend = np.empty(len(acc))
    for i in range(len(acc)):
        keep = np.arange(len(acc)) != i
        trend[i] = x[i] @ np.linalg.lstsq(x[keep], acc[keep], rcond=None)[0]
    res = acc - x @ np.linalg.lstsq(x, acc, rcond=None)[0]
    prior = max(1e-8, float(np.var(res, ddof=2)) - float(np.mean(seed_var / n)))
    w = prior / (prior + seed_var / n)
    return w * acc + (1 - w) * trend


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("truth", type=Path)
    a = p.parse_args(argv)
    with open(a.run / "trials.csv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["state"] == "COMPLETE" and r["accuracy"]]
    truth: dict[tuple[str, int], list[float]] = {}
    for line in a.truth.read_text().splitlines():
        d = json.loads(line)
        truth.setdefault((d["recipe"], int(d["number"])), []).append(float(d["accuracy"]))
    acc = np.array([float(r["accuracy"]) for r in rows])
    macs = np.array([float(r["macs"]) for r in rows])
    n = np.array([max(1, int(r["n_seeds"] or 1)) for r in rows])
    reps = [np.var([float(v) for v in r["accuracy_seeds"].split(",")], ddof=1) for r in rows
            if r.get("accuracy_seeds") and r["accuracy_seeds"].count(",") >= 1]
    seed_var = float(np.mean(reps)) if reps else ASSUMED_SEED_STD ** 2
    est = {"search accuracy": acc, "MACs alone": macs,
           "shrunk toward a MACs trend": shrunk(acc, macs, seed_var, n)}
    curves = [[float(v) for v in (r.get("curve") or "").split(",") if v] for r in rows]
    if all(len(c) >= 2 for c in curves):  # a run that stored its learning curves
        gain = np.array([c[-1] - c[-2] for c in curves])
        est["search accuracy + last epoch's gain"] = acc + gain
    print(f"{a.run.name}: {len(rows)} designs; seed std {100 * math.sqrt(seed_var):.2f} points "
          + (f"({len(reps)} repeated designs)" if reps else "(assumed: no repeated design)"))
    numbers = [int(r["number"]) for r in rows]
    for recipe in sorted({k[0] for k in truth}):
        idx = [i for i, num in enumerate(numbers) if (recipe, num) in truth]
        t = [float(np.mean(truth[(recipe, numbers[i])])) for i in idx]
        taus = ", ".join(f"{name} {kendalltau(v[idx], t).statistic:.2f}" for name, v in est.items())
        print(f"  {recipe} truth ({len(idx)} designs): Kendall τ {taus}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
