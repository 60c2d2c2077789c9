"""How well a run's numbers rank the designs' long-training truth (Kendall τ), offline.

In: a run folder (its ``trials.csv``) and the re-check JSONL of ``bench/recheck_claims.py``
(30-epoch accuracies per recipe, design ``number`` and seed). Out, per recipe: τ of the
search's accuracies, of MACs alone, and of an empirical-Bayes shrinkage of the search's
accuracies toward a least-squares trend on log MACs (prior variance = residual variance
minus the seed variance seen on repeated designs; leave-one-out trend) against the truth
(mean over its seeds), on the designs the re-check trained; where the run stored learning
curves, also a one-step extrapolation (the last epoch's gain added once); with ``--fidelity
LABEL=PATH`` (repeatable), the accuracies of a ``nasl fidelity`` check of the same run (another
fidelity or recipe) as one more ranking. τ on the designs every ranking has, with a 95 %
bootstrap interval over designs, and each ranking's paired difference from the search's.
No training, no timing.

    python bench/rank_vs_truth.py runs/fm10k-split bench/results/recheck-fm10k-split-2026-12-07.jsonl
    python bench/rank_vs_truth.py runs/fm10k-m2 bench/results/recheck-fm10k-m2-2026-12-07.jsonl \
        --fidelity "augmented 9 ep=bench/results/fidelity-fm10k-m2-aug9-2026-12-07.json"
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nasl.stats import shrink  # noqa: E402

ASSUMED_SEED_STD = 0.006  # a 3-epoch proxy's seed std when the run repeated no design
N_BOOT = 2000


def boot_tau(est: dict[str, np.ndarray], truth: np.ndarray, base: str, seed: int = 0
             ) -> dict[str, tuple[float, float, float, float, float]]:
    """Per ranking: (τ, its 95 % bootstrap interval, and the interval of its paired difference
    from ``base``'s τ), designs resampled with replacement."""
    rng = np.random.default_rng(seed)
    n = len(truth)
    draws: dict[str, list[float]] = {k: [] for k in est}
    for _ in range(N_BOOT):
        i = rng.integers(0, n, n)
        if len(set(truth[i])) < 3:
            continue
        for k, v in est.items():
            draws[k].append(float(kendalltau(v[i], truth[i]).statistic))
    out = {}
    for k, v in est.items():
        d = np.array(draws[k])
        diff = d - np.array(draws[base])
        ok = np.isfinite(d) & np.isfinite(diff)
        lo, hi = np.percentile(d[ok], [2.5, 97.5])
        dlo, dhi = np.percentile(diff[ok], [2.5, 97.5])
        out[k] = (float(kendalltau(v, truth).statistic), float(lo), float(hi), float(dlo), float(dhi))
    return out


def shrunk(acc: np.ndarray, macs: np.ndarray, seed_var: float, n: np.ndarray) -> np.ndarray:
    """Posterior means of the accuracies under a normal prior centred on a log-MACs trend
    (nasl.stats.shrink, what a run's ``accuracy_expected`` column holds)."""
    est = shrink.expected(acc, macs, n, math.sqrt(seed_var))
    return np.full(len(acc), math.nan) if est is None else np.array(est.values)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("truth", type=Path)
    p.add_argument("--fidelity", action="append", default=[], metavar="LABEL=PATH",
                   help="a fidelity.json of the same run (nasl fidelity), ranked as LABEL")
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
    for spec in a.fidelity:
        label, _, path = spec.partition("=")
        high = {int(d["number"]): float(d["high_accuracy"])
                for d in json.loads(Path(path).read_text())["designs"]}
        est[label] = np.array([high.get(int(r["number"]), math.nan) for r in rows])
    print(f"{a.run.name}: {len(rows)} designs; seed std {100 * math.sqrt(seed_var):.2f} points "
          + (f"({len(reps)} repeated designs)" if reps else "(assumed: no repeated design)"))
    numbers = [int(r["number"]) for r in rows]
    for recipe in sorted({k[0] for k in truth}):
        idx = [i for i, num in enumerate(numbers) if (recipe, num) in truth
               and all(math.isfinite(v[i]) for v in est.values())]
        t = np.array([float(np.mean(truth[(recipe, numbers[i])])) for i in idx])
        res = boot_tau({k: v[idx] for k, v in est.items()}, t, "search accuracy")
        print(f"  {recipe} truth ({len(idx)} designs): Kendall τ [95 % bootstrap] (minus the "
              "search's τ [95 %])")
        for name, (tau, lo, hi, dlo, dhi) in res.items():
            print(f"    {name}: {tau:+.2f} [{lo:+.2f}, {hi:+.2f}]"
                  + ("" if name == "search accuracy" else f" ({tau - res['search accuracy'][0]:+.2f} "
                     f"[{dlo:+.2f}, {dhi:+.2f}])"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
