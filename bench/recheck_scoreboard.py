"""Every re-checked run's answer against its long-training truth, in one table (issue 18).

In: pairs of a run's ``pareto.json`` (its answer: claims and recommendation per recipe) and
the re-check JSONL of ``bench/recheck_claims.py`` (30-epoch accuracies on the test split per
recipe, design and seed). By default every ``bench/results/recheck-*-pareto-*.json`` with the
JSONL of the same name (``-pareto`` and ``-contender`` removed). No run folder is needed: the
answer names each design by its trial number, which the JSONL uses too.

Out (Markdown, stdout; ``--out`` also writes the rows as JSON):

* per run and recipe: the claims made and how many hold under the recipe they name (a
  superiority claim holds when the truth's difference is > 0, a non-inferiority claim when it
  is > −δ), the undecided comparisons that the truth would have made true (missed) or false
  (rightly not claimed), and per trade-off the pick's gap to the truly best re-checked design
  with the noise of that gap;
* in all: claims made and held with a 95 % Clopper-Pearson interval of the hold rate, how
  many "most accurate" picks trailed the best beyond noise and how many "fastest within δ"
  picks are more than δ below it.

The truth's seed std is pooled per recipe over every design with ≥ 2 seeds in all the JSONLs
read (one data set, one loop, one epoch count). The truly best design is the maximum of k
noisy truths, so its lead over a tied pick is biased upward; a gap's noise is therefore
z·sd·√(1/n_pick + 1/n_best) with z Bonferroni-adjusted over the k − 1 designs that could
have been the best (two-sided 95 %; z = 2.8 for k = 10).

    python bench/recheck_scoreboard.py
    python bench/recheck_scoreboard.py --pair runs/x/pareto.json runs/x/recheck.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import beta, norm

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    """One run under one recipe: what its answer said and what the truth says of it."""

    run: str
    recipe: str
    claims: int = 0
    held: int = 0
    not_rechecked: int = 0
    missed: int = 0  # undecided comparisons the truth makes true
    rightly_undecided: int = 0  # undecided comparisons the truth makes false
    picks: list[dict[str, Any]] = field(default_factory=list)


def truths(lines: list[dict[str, Any]]) -> dict[str, dict[int, list[float]]]:
    """recipe → design → its accuracies over seeds (one per (design, seed): duplicated reused
    lines count once)."""
    out: dict[str, dict[int, dict[int, float]]] = {}
    for x in lines:
        out.setdefault(x["recipe"], {}).setdefault(int(x["number"]), {}).setdefault(
            int(x["seed"]), float(x["accuracy"]))
    return {r: {n: list(s.values()) for n, s in v.items()} for r, v in out.items()}


def pooled_sd(all_truths: list[dict[str, dict[int, list[float]]]]) -> dict[str, float]:
    """recipe → the truth's seed std pooled over designs with ≥ 2 seeds (nan without any)."""
    acc: dict[str, list[tuple[float, int]]] = {}
    for t in all_truths:
        for rec, by in t.items():
            acc.setdefault(rec, []).extend((float(np.var(v, ddof=1)), len(v) - 1)
                                           for v in by.values() if len(v) > 1)
    return {r: math.sqrt(sum(v * d for v, d in xs) / sum(d for _, d in xs)) if xs else math.nan
            for r, xs in acc.items()}


def holds(kind: str, diff: float, margin: float) -> bool:
    """Whether a claim is true given the truth's difference (design − other)."""
    return diff > 0 if kind == "superior" else diff > -margin


def score(run: str, answer: dict[str, Any], truth: dict[str, dict[int, list[float]]],
          sd: dict[str, float]) -> list[Row]:
    """One Row per recipe of the answer."""
    rows = []
    for r in answer.get("recipes", []):
        rec = r["recipe"].split("+")[0]
        t = {n: float(np.mean(v)) for n, v in truth.get(rec, {}).items()}
        row = Row(run, rec)
        for c in r["claims"]:
            a, b = int(c["design"]), int(c["other"])
            made = c.get("status") == "holds"
            row.claims += made
            if a not in t or b not in t:
                row.not_rechecked += made
                continue
            true = holds(c["kind"], t[a] - t[b], c["margin"])
            if made:
                row.held += true
            elif c.get("status") == "undecided":
                row.missed += true
                row.rightly_undecided += not true
        if t:
            best = max(t, key=lambda n: t[n])
            z = float(norm.ppf(1 - 0.025 / max(1, len(t) - 1)))
            for p in r["recommendation"]:
                n = int(p["design"])
                if n not in t:
                    continue
                gap = t[best] - t[n]
                k_pick, k_best = len(truth[rec][n]), len(truth[rec][best])
                noise = z * sd.get(rec, math.nan) * math.sqrt(1 / k_pick + (1 / k_best if best != n else 0))
                row.picks.append({"tradeoff": p["tradeoff"], "design": n, "name": p["name"],
                                  "truth": t[n], "best": best, "best_truth": t[best], "gap": gap,
                                  "noise": noise, "beyond": bool(gap > noise),
                                  "beyond_margin": bool(gap > answer.get("margin", math.inf))})
        rows.append(row)
    return rows


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of k successes in n (nan, nan for n = 0)."""
    if n == 0:
        return math.nan, math.nan
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def default_pairs() -> list[tuple[str, Path, Path]]:
    """(label, pareto.json, JSONL) for every stored pareto copy with its re-check JSONL."""
    out = []
    for p in sorted(RESULTS.glob("recheck-*-pareto-*.json")):
        j = RESULTS / re.sub(r"-(contender-)?pareto", "", p.name).replace(".json", ".jsonl")
        if j.exists():
            label = p.name.removeprefix("recheck-").split("-pareto")[0]
            out.append((label, p, j))
    return out


def markdown(rows: list[Row]) -> str:
    """The table and the totals."""
    out = ["| run | recipe | claims made | hold | undecided: true (missed) / false | "
           "picks: gap to the truly best re-checked (noise), points |", "|---|---|---|---|---|---|"]
    for r in rows:
        picks = "; ".join(f"{p['tradeoff']} {p['name']} {100 * p['gap']:.1f} ({100 * p['noise']:.1f})"
                          + (" **beyond noise**" if p["beyond"] and p["tradeoff"] == "accurate" else "")
                          + (" **beyond δ**" if p["beyond_margin"] and p["tradeoff"] == "fast" else "")
                          for p in r.picks) or "–"
        hold = f"{r.held}" + (f" (+{r.not_rechecked} not re-checked)" if r.not_rechecked else "")
        out.append(f"| {r.run} | {r.recipe} | {r.claims} | {hold} | {r.missed} / "
                   f"{r.rightly_undecided} | {picks} |")
    made = sum(r.claims - r.not_rechecked for r in rows)
    held = sum(r.held for r in rows)
    lo, hi = clopper_pearson(held, made)
    acc = [p for r in rows for p in r.picks if p["tradeoff"] == "accurate"]
    fast = [p for r in rows for p in r.picks if p["tradeoff"] == "fast"]
    out.append(f"\nclaims re-checked: {made}, hold: {held}"
               + (f" ({held / made:.0%}, 95 % interval {lo:.0%}-{hi:.0%})" if made else "")
               + f"; undecided that were true: {sum(r.missed for r in rows)}, false: "
               f"{sum(r.rightly_undecided for r in rows)}; \"most accurate\" picks beyond noise "
               f"below the best: {sum(p['beyond'] for p in acc)} of {len(acc)}; \"fastest within δ\" "
               f"picks more than δ below it: {sum(p['beyond_margin'] for p in fast)} of {len(fast)}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pair", nargs=2, action="append", type=Path, metavar=("PARETO", "JSONL"),
                   help="a run's pareto.json and its re-check JSONL (default: bench/results)")
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    pairs = ([(pj.parent.name, pj, jl) for pj, jl in a.pair] if a.pair else default_pairs())
    if not pairs:
        print("no pareto.json / re-check JSONL pairs found", file=sys.stderr)
        return 2
    loaded = [(label, json.loads(pj.read_text())["answer"],
               truths([json.loads(s) for s in jl.read_text().splitlines() if s.strip()]))
              for label, pj, jl in pairs]
    sd = pooled_sd([t for _, _, t in loaded])
    rows = [row for label, ans, t in loaded for row in score(label, ans, t, sd)]
    print(markdown(rows))
    print("\ntruth seed std pooled per recipe (points): "
          + ", ".join(f"{r} {100 * s:.2f}" for r, s in sorted(sd.items())))
    if a.out:
        a.out.write_text(json.dumps({"sd": sd, "rows": [asdict(r) for r in rows]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
