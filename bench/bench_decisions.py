"""How often are nasl's claims false, how often does it find a true improvement, and how often
is its recommendation the truly best design? Synthetic runs with known truth through the real
confirmation code (nasl.decide.simulate; issue 18).

Worlds: 10-30 designs, 5-15 baselines; the search sees each design with a fidelity bias that
reorders designs (random 1 point + a 2-point tilt towards small designs) and 1 point of seed
noise; the confirmation sees the truth with ``--seed-sd`` points of seed noise. Scenarios:
``null`` and ``ni_null`` (every claim that can be made is false), ``superior`` (one design
truly +2 points at no more MACs), ``noninferior`` (one design as accurate at half the MACs).
Two rules on the same worlds (run i of a size and scenario draws the same world at every
budget and under both rules): ``earlier`` (the family fixed from the search's numbers, 2
seeds each for at most 6 designs) and ``split`` (sample splitting, nasl.decide.split: the
first high-fidelity seed chooses the family, the later seeds test it; the default).

    python bench/bench_decisions.py --runs 200 --budgets 8 12 24 48 64 96 \
        --out bench/results/decisions-split-2026-12-07.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nasl.decide import Plan  # noqa: E402
from nasl.decide.simulate import World, simulate, summary  # noqa: E402


def table(res: dict) -> str:
    """The Markdown table of a results JSON (rates in %, ± one binomial standard error);
    each cell ``earlier → split`` when the JSON has both rules."""
    if "rules" not in res:  # a JSON of one rule (before sample splitting)
        res = {"rules": ["earlier"], "rows": [{**r, "earlier": {k: r[k] for k in SCEN}} for r in res["rows"]]}
    rules = res["rules"]

    def cell(r: dict, sc: str, key: str, se: bool = False, digits: int = 0) -> str:
        out = []
        for rule in rules:
            x = r[rule][sc]
            v = "–" if x[key] is None or x[key] != x[key] else f"{100 * x[key]:.{digits}f}"
            if se and x[key] == x[key]:
                v += f" ± {100 * x[key + '_se']:.{digits}f}"
            out.append(v)
        return " → ".join(out)

    lines = [f"| designs × baselines | budget | runs with any false claim, null ({' → '.join(rules)}) | "
             "δ-null | power +2 points | power non-inferior at ½ MACs | most accurate pick truly best |",
             "|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['designs']} × {r['baselines']} | {r['budget']} | "
                     f"{cell(r, 'null', 'any_false', True, 1)} | "
                     f"{cell(r, 'ni_null', 'any_false', False, 1)} | "
                     f"{cell(r, 'superior', 'power', True)} | {cell(r, 'noninferior', 'power', True)} | "
                     f"{cell(r, 'null', 'best_picked')} |")
    return "\n".join(lines)


SCEN = ("null", "ni_null", "superior", "noninferior")


def plan_of(rule: str, budget: int, margin: float) -> Plan:
    """The plan of a rule at a budget (``earlier``: the family from the search's numbers)."""
    if rule == "earlier":
        return Plan(budget=budget, seeds=2, max_designs=min(6, budget // 2), margin=margin, select_seeds=0)
    return Plan(budget=budget, seeds=2, margin=margin)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=400)
    p.add_argument("--budgets", type=int, nargs="+", default=[8, 12, 24, 48])
    p.add_argument("--rules", nargs="+", default=["earlier", "split"], choices=["earlier", "split"])
    p.add_argument("--sizes", nargs="+", default=["10x5", "20x10", "30x15"],
                   help="DESIGNSxBASELINES")
    p.add_argument("--seed-sd", type=float, default=0.8, help="confirmation seed std, points")
    p.add_argument("--margin", type=float, default=1.0, help="δ, points")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--table", type=Path, default=None, help="print the Markdown table of a JSON")
    a = p.parse_args()
    if a.table:
        print(table(json.loads(a.table.read_text())))
        return
    rows = []
    t0 = time.perf_counter()
    for size, budget in itertools.product(a.sizes, a.budgets):
        nd, nb = (int(x) for x in size.split("x"))
        row: dict = {"designs": nd, "baselines": nb, "budget": budget}
        for rule in a.rules:
            plan = plan_of(rule, budget, a.margin / 100)
            row[rule] = {}
            for sc in SCEN:
                w = World(designs=nd, baselines=nb, scenario=sc, seed_sd=a.seed_sd / 100)
                seed = zlib.crc32(f"{size}-{sc}".encode())  # the same worlds at every budget and rule
                row[rule][sc] = summary(simulate(w, plan, runs=a.runs, seed=seed))
            x = row[rule]
            print(f"{nd}x{nb} budget {budget} {rule}: null false {x['null']['any_false']:.3f}, ni_null "
                  f"{x['ni_null']['any_false']:.3f}, power +2 {x['superior']['power']:.2f}, power NI "
                  f"{x['noninferior']['power']:.2f}, best picked {x['null']['best_picked']:.2f}, "
                  f"spent {x['superior']['spent']:.1f}", flush=True)
        rows.append(row)
    print(f"{time.perf_counter() - t0:.0f} s")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"runs": a.runs, "seed_sd_points": a.seed_sd, "rules": a.rules,
                                     "margin_points": a.margin, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
