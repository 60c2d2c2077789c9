"""The "fastest within δ of the best" pick: shown within δ (now) against mean within δ (before),
on synthetic runs with known truth (nasl.decide.simulate, the real confirmation code).

Both rules read the same confirmation (the claims and the trainings spent do not depend on
the fast pick), so every difference is paired within a run. Out, per size, scenario, budget,
confirmation tilt and holdout: how often each rule's fast pick is truly within δ of the truly
best design, how often the ``accurate`` pick is (the ceiling of a rule that always falls back
to it), and the fast pick's MACs over the accurate pick's (what the rule saves), with
binomial / paired standard errors.

``--confirm-tilts``: the confirmation's own bias toward small designs against the truth
(accuracy fraction across the MACs range, World.confirm_tilt); 0.01 is about what the
Fashion-MNIST re-checks show between 9 and 30 epochs without augmentation (+0.5 points on
average between a 37 M MACs baseline and smaller designs), 0 what they show with it.

    python bench/bench_fast_pick.py --runs 400 --out bench/results/fast-pick-2026-12-08.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _sim_args import cells, sim_parser  # noqa: E402

from nasl.decide import Plan  # noqa: E402
from nasl.decide.simulate import World, simulate  # noqa: E402


def rate(xs: list[float]) -> tuple[float, float]:
    """Mean and its standard error."""
    a = np.asarray(xs, dtype=float)
    return float(a.mean()), float(a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = sim_parser(__doc__, ["20x10", "30x15", "10x5"], ["null", "noninferior"])
    p.add_argument("--confirm-tilts", type=float, nargs="+", default=[0.0, 0.01])
    p.add_argument("--images", type=int, nargs="+", default=[0, 1000],
                   help="holdout images scored one by one (0: seed noise only)")
    a = p.parse_args(argv)
    rows = []
    t0, c0 = time.perf_counter(), time.process_time()
    for size, nd, nb, scen in cells(a):
        for tilt in a.confirm_tilts:
            for images in a.images:
                w = World(designs=nd, baselines=nb, scenario=scen, confirm_tilt=tilt, images=images)
                for budget in a.budgets:
                    outs = simulate(w, Plan(budget=budget, margin=a.margin / 100), runs=a.runs, seed=0)
                    row = {"size": size, "scenario": scen, "confirm_tilt": tilt, "images": images,
                           "budget": budget, "runs": a.runs,
                           "shown_within": rate([o.fast_within for o in outs]),
                           "mean_within": rate([o.old_fast_within for o in outs]),
                           "accurate_within": rate([o.within_margin for o in outs]),
                           "within_diff": rate([o.fast_within - o.old_fast_within for o in outs]),
                           "shown_macs": rate([o.fast_macs for o in outs]),
                           "mean_macs": rate([o.old_fast_macs for o in outs]),
                           "shown_faster": rate([o.fast_macs < 1 for o in outs])}
                    rows.append(row)
                    print(f"{size} {scen:11} tilt {tilt:.3f} images {images:4} budget {budget:2}: "
                          f"within δ mean-rule {row['mean_within'][0]:.3f} → shown-rule "
                          f"{row['shown_within'][0]:.3f} (paired {row['within_diff'][0]:+.3f} ± "
                          f"{row['within_diff'][1]:.3f}; accurate pick {row['accurate_within'][0]:.3f}); "
                          f"MACs / accurate pick {row['mean_macs'][0]:.2f} → {row['shown_macs'][0]:.2f}; "
                          f"a faster design shown in {row['shown_faster'][0]:.3f}", flush=True)
    wall = time.perf_counter() - t0
    cpu = (time.process_time() - c0) / wall
    print(f"{wall:.0f} s wall, CPU/wall {cpu:.2f}")
    if a.out:
        a.out.write_text(json.dumps({"rows": rows, "seconds": round(wall, 1), "cpu_wall": round(cpu, 2),
                                     "margin": a.margin, "date": time.strftime("%Y-%m-%d %H:%M")},
                                    indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
