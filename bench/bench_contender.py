"""Confirming the top of the front's contender first: what it changes, on synthetic runs with
known truth (nasl.decide.simulate, the real confirmation and claim code).

Each world is decided twice, by ``Plan(contender=False)`` (the order before) and
``Plan(contender=True)`` (the costliest design tied with the top of the front at the search's
fidelity confirmed right after it, nasl.decide.plan.contender): the same worlds (run i draws
its world from the generator seeded (seed, i)), so the differences are paired. Out, per
scenario, budget and size: any-false-claim rate, power, how often the "most accurate within
budget" pick is the truly best design and how often it is within δ of it, with binomial
standard errors and the paired difference of the best-pick rate (with its standard error).

    python bench/bench_contender.py --runs 400 --budgets 8 24 --out bench/results/contender.json
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _sim_args import cells, sim_parser  # noqa: E402

from nasl.decide import Plan  # noqa: E402
from nasl.decide.simulate import World, simulate  # noqa: E402


def paired(a: list[bool], b: list[bool]) -> tuple[float, float]:
    """Mean of b - a and its standard error (paired runs)."""
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = sim_parser(__doc__, ["20x10"], ["null", "superior", "noninferior"])
    p.add_argument("--tilt", type=float, default=None, help="fidelity tilt (default World's)")
    a = p.parse_args(argv)
    rows = []
    t0, c0 = time.perf_counter(), time.process_time()
    for size, nd, nb, scen in cells(a):
        w = World(designs=nd, baselines=nb, scenario=scen)
        if a.tilt is not None:
            w = replace(w, tilt=a.tilt)
        for budget in a.budgets:
            res = {}
            for flag in (False, True):
                plan = Plan(budget=budget, margin=a.margin / 100, contender=flag)
                res[flag] = simulate(w, plan, runs=a.runs, seed=0)
            row = {"size": size, "scenario": scen, "budget": budget, "runs": a.runs,
                   "tilt": w.tilt}
            for flag, outs in res.items():
                key = "contender" if flag else "before"
                n = len(outs)
                found = [o.found for o in outs if o.found is not None]
                row[key] = {
                    "any_false": float(np.mean([o.false_claims > 0 for o in outs])),
                    "power": float(np.mean(found)) if found else None,
                    "best_picked": float(np.mean([o.best_picked for o in outs])),
                    "within_margin": float(np.mean([o.within_margin for o in outs])),
                    "n": n}
            row["best_picked_diff"] = paired([o.best_picked for o in res[False]],
                                             [o.best_picked for o in res[True]])
            row["within_diff"] = paired([o.within_margin for o in res[False]],
                                        [o.within_margin for o in res[True]])
            if res[False][0].found is not None:
                row["power_diff"] = paired([bool(o.found) for o in res[False]],
                                           [bool(o.found) for o in res[True]])
            rows.append(row)
            b, c = row["before"], row["contender"]
            print(f"{size} {scen:11} budget {budget:3}: false {b['any_false']:.3f} → "
                  f"{c['any_false']:.3f}; power {b['power']} → {c['power']}; best picked "
                  f"{b['best_picked']:.3f} → {c['best_picked']:.3f} "
                  f"(diff {row['best_picked_diff'][0]:+.3f} ± {row['best_picked_diff'][1]:.3f}); "
                  f"within δ {b['within_margin']:.3f} → "
                  f"{c['within_margin']:.3f}", flush=True)
    wall = time.perf_counter() - t0
    print(f"{wall:.0f} s wall, CPU/wall {(time.process_time() - c0) / wall:.2f}")
    if a.out:
        a.out.write_text(json.dumps({"rows": rows, "seconds": round(wall, 1),
                                     "date": time.strftime("%Y-%m-%d %H:%M")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
