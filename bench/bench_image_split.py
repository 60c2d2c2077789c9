"""Does splitting the holdout images remove the design × image selection bias of the claims, and
what does it cost? Synthetic runs with known truth through the real confirmation code
(nasl.decide.simulate with per-image results; issue 18).

Each confirmation seed is scored image by image (``World.images``; the probit model of
nasl.decide.simulate): an image difficulty shared by all designs, a design × image
interaction fixed at every seed (``--interaction`` probit units; the luck a design carries
from its selection seed to its tested seeds when both read the same images), per-image seed
noise (``--image-noise``) and a whole-model seed shift. Two rules on the same worlds:
``shared`` (the selection seed and the tested seeds read every holdout image: the rule before)
and ``split`` (the selection reads half A of the images, the tests half B: the default).
Scenarios: ``eq_null`` (every searched design exactly as accurate as the baseline it could
beat: every superiority claim false), ``ni_null`` (every claim false), ``superior`` (+2
points at no more MACs: power), ``noninferior`` (as accurate at half the MACs: power).

    nice python bench/bench_image_split.py --runs 200 --budgets 24 48 \
        --out bench/results/image-split-2026-12-07.json
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

SCEN = ("eq_null", "ni_null", "superior", "noninferior")
RULES = {"shared": False, "split": True}


def cell(s: dict) -> str:
    """``false % / power %`` of one summary (power only where a truth is planted)."""
    rate = s["power"] if s["power"] == s["power"] else s["any_false"]
    se = s["power_se"] if s["power"] == s["power"] else s["any_false_se"]
    return f"{100 * rate:.1f} ± {100 * se:.1f}"


def table(res: dict) -> str:
    """Markdown: per world and budget, each scenario's rate ``shared → split`` (false-claim runs
    for the nulls, power for the planted truths; % ± one binomial se)."""
    head = "| images | interaction | image noise | budget | " + " | ".join(SCEN) + " |"
    out = [head, "|" + "---|" * (4 + len(SCEN))]
    for r in res["rows"]:
        cells = [f"{cell(r['shared'][sc])} → {cell(r['split'][sc])}" for sc in SCEN]
        out.append(f"| {r['images']} | {r['interaction']} | {r['image_noise']} | {r['budget']} | "
                   + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--budgets", type=int, nargs="+", default=[24, 48])
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--interaction", type=float, nargs="+", default=[0.5, 1.0])
    p.add_argument("--image-noise", type=float, nargs="+", default=[0.5, 0.1])
    p.add_argument("--share", type=float, default=0.5, help="share of the images the selection reads")
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    rows = []
    t0, c0 = time.perf_counter(), time.process_time()
    for isd, ins, budget in itertools.product(a.interaction, a.image_noise, a.budgets):
        row: dict = {"images": a.images, "interaction": isd, "image_noise": ins, "budget": budget}
        for rule, split in RULES.items():
            row[rule] = {}
            for i, sc in enumerate(SCEN):
                w = World(scenario=sc, images=a.images, interaction_sd=isd, image_noise_sd=ins)
                row[rule][sc] = summary(simulate(w, Plan(budget=budget, split_images=split,
                                                                  select_images=a.share),
                                                 runs=a.runs, seed=1800 + i))
        rows.append(row)
        print(table({"rows": [row]}).splitlines()[-1], flush=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    res = {"runs": a.runs, "share": a.share, "rows": rows, "wall_s": wall, "cpu_s": cpu}
    print(table(res))
    print(f"{wall:.0f} s wall, CPU/wall {cpu / wall:.2f}")
    if a.out:
        a.out.write_text(json.dumps(res, indent=1, default=lambda x: None))


if __name__ == "__main__":
    main()
