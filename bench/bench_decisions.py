"""How often are nasl's claims false, how often does it find a true improvement, and how often
is its recommendation the truly best design? Synthetic runs with known truth through the real
confirmation code (nasl.decide.simulate; issue 18).

Worlds: 10-30 designs, 5-15 baselines; the search sees each design with a fidelity bias that
reorders designs (random 1 point + a 2-point tilt towards small designs) and 1 point of seed
noise; the confirmation sees the truth with ``--seed-sd`` points of seed noise. Scenarios:
``null`` and ``ni_null`` (every claim that can be made is false), ``superior`` (one design
truly +2 points at no more MACs), ``noninferior`` (one design as accurate at half the MACs).

    python bench/bench_decisions.py --runs 400 --out bench/results/decisions-2026-12-06.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nasl.decide import Plan  # noqa: E402
from nasl.decide.simulate import World, simulate, summary  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=400)
    p.add_argument("--budgets", type=int, nargs="+", default=[12, 24, 48])
    p.add_argument("--sizes", nargs="+", default=["10x5", "20x10", "30x15"],
                   help="DESIGNSxBASELINES")
    p.add_argument("--seed-sd", type=float, default=0.8, help="confirmation seed std, points")
    p.add_argument("--margin", type=float, default=1.0, help="δ, points")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    rows = []
    t0 = time.perf_counter()
    for size, budget in itertools.product(a.sizes, a.budgets):
        nd, nb = (int(x) for x in size.split("x"))
        plan = Plan(budget=budget, seeds=2, max_designs=min(6, budget // 2), margin=a.margin / 100)
        row = {"designs": nd, "baselines": nb, "budget": budget}
        for sc in ("null", "ni_null", "superior", "noninferior"):
            w = World(designs=nd, baselines=nb, scenario=sc, seed_sd=a.seed_sd / 100)
            row[sc] = summary(simulate(w, plan, runs=a.runs, seed=hash((size, budget, sc)) % 2**31))
        rows.append(row)
        print(f"{nd} designs, {nb} baselines, budget {budget}: "
              f"null false {row['null']['any_false']:.3f} (old rule {row['null']['old_any_false']:.2f}), "
              f"ni_null {row['ni_null']['any_false']:.3f}, power +2 {row['superior']['power']:.2f} "
              f"(if confirmed {row['superior']['power_if_confirmed']:.2f}), power NI "
              f"{row['noninferior']['power']:.2f} (if confirmed "
              f"{row['noninferior']['power_if_confirmed']:.2f}), best picked "
              f"{row['null']['best_picked']:.2f} (old {row['null']['old_best_picked']:.2f}), "
              f"within δ {row['null']['within_margin']:.2f}", flush=True)
    print(f"{time.perf_counter() - t0:.0f} s")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"runs": a.runs, "seed_sd_points": a.seed_sd,
                                     "margin_points": a.margin, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
