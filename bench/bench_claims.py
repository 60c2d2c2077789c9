"""Do nasl's beyond-noise claims hold on new seeds? (issue 11)

Usage (after a search and a fidelity check at the same epochs with fresh seeds):
    nasl search shufflenet --budget 40MFLOPs --trials 30 --seed 1 --name s30
    nasl fidelity runs/s30 --epochs 2 --seeds 2 --sample 2
    python bench/bench_claims.py runs/s30

For every pair of re-trained designs (a, b) it compares what the search said with what the
fresh seeds say: a *claim* "a is more accurate than b" is made by nasl only when the search's
means differ beyond noise (nasl.stats.confidence.tied is False); a *naive* claim is made whenever
a's search accuracy (the first seed, what a tool without noise would rank by) is higher. A
claim holds when the fresh-seed mean of a is higher than b's. Front-beats-baseline claims
(pareto.json) are counted separately. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from nasl.run.results import load_run
from nasl.stats import confidence


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    args = p.parse_args()
    rows, _ = load_run(args.run)
    fid = json.loads((args.run / "fidelity.json").read_text())
    fresh = {int(d["number"]): float(d["high_accuracy"]) for d in fid["designs"]}
    by = {int(r["number"]): r for r in rows if int(r["number"]) in fresh}
    names = sorted(by)
    nasl_made = nasl_held = naive_made = naive_held = 0
    for i in names:
        for j in names:
            if i == j:
                continue
            a, b = by[i], by[j]
            se_a = (a["accuracy_std"] or math.nan) / math.sqrt(a["n_seeds"] or 1)
            se_b = (b["accuracy_std"] or math.nan) / math.sqrt(b["n_seeds"] or 1)
            holds = fresh[i] > fresh[j]
            if a["accuracy"] > b["accuracy"] and not confidence.tied(
                    (a["accuracy"], se_a), (b["accuracy"], se_b)):
                nasl_made += 1
                nasl_held += holds
            first_a, first_b = a["accuracy_seeds"][0], b["accuracy_seeds"][0]
            if first_a > first_b:
                naive_made += 1
                naive_held += holds
    pareto = json.loads((args.run / "pareto.json").read_text())
    base_claims = [(n, b["name"]) for b in (pareto.get("confidence") or {}).get("baselines", [])
                   for n in b["beaten_by"]]
    bt = {r["baseline"]: int(r["number"]) for r in rows if r.get("baseline")}
    base_held = sum(1 for n, name in base_claims
                    if int(n) in fresh and bt.get(name) in fresh and fresh[int(n)] > fresh[bt[name]])
    share = lambda h, m: f"{h / m:.0%}" if m else "–"  # noqa: E731
    print(f"run {args.run.name}: {len(names)} designs re-trained with fresh seeds "
          f"({fid['settings'].get('seeds', '?')} each, {fid['settings'].get('epochs')} epochs)\n")
    print("| claims | made | held on fresh seeds | share |")
    print("|---|---:|---:|---:|")
    print(f"| nasl: a > b beyond noise (2 x combined SE) | {nasl_made} | {nasl_held} | "
          f"{share(nasl_held, nasl_made)} |")
    print(f"| naive: a > b on the first seed | {naive_made} | {naive_held} | "
          f"{share(naive_held, naive_made)} |")
    print(f"| front beats baseline beyond noise | {len(base_claims)} | {base_held} | "
          f"{share(base_held, len(base_claims))} |")


if __name__ == "__main__":
    main()
