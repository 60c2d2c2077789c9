"""The "fastest within δ" pick of stored runs under both rules, against the long-training truth.

In: pairs of a run folder (its study holds the confirmation's samples) and its re-check JSONL
(``bench/recheck_claims.py``: 30-epoch accuracies per recipe, design and seed). For each recipe
of the run, the fast pick is decided again from the stored confirmation — by the rule before
(``mean``: the cheapest design whose mean is within δ of the most accurate) and the current one
(``shown``: non-inferiority within δ shown, Holm over the cheaper designs, else the most
accurate design) — with the run's margin and α (split over its recipes, as the run did). Out
(Markdown, stdout): per run, recipe and rule the pick, its confirmation seeds, its truth, the
truly best re-checked design's truth and whether the pick is within δ of it. No training.

    python bench/fast_pick_on_runs.py --pair runs/fm10k-m2s3 bench/results/recheck-fm10k-m2s3-2026-12-07.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recheck_scoreboard import truths  # noqa: E402

from nasl.common import record  # noqa: E402
from nasl.decide.recommend import FAST_RULES, recommend  # noqa: E402
from nasl.run import results  # noqa: E402
from nasl.run.results import RunDir, open_run_study  # noqa: E402
from nasl.search.confirm import arms_of, samples_of  # noqa: E402

OBJECTIVES = [("accuracy", "maximize"), ("macs", "minimize"), ("latency_ms", "minimize")]


def rows_of(run: Path, jsonl: Path) -> list[str]:
    """Markdown rows for one run."""
    study, _ = open_run_study(RunDir(run))
    rows = results.load_rows(study)
    ans = study.user_attrs.get(record.ANSWER, {})
    store = study.user_attrs.get(record.DECIDE, {})
    margin, alpha = float(ans.get("margin", 0.01)), float(ans.get("alpha", 0.05)) / max(1, len(store))
    names = {str(r["number"]): (r.get("baseline") or f"#{r['number']}") for r in rows}
    truth = truths([json.loads(s) for s in jsonl.read_text().splitlines() if s.strip()])
    arms = arms_of(rows, OBJECTIVES)
    out = []
    for label, st in store.items():
        t = {str(n): float(np.mean(v)) for n, v in truth.get(label.split("+")[0], {}).items()}
        s = samples_of(st)
        confirmed = [a for a in arms if a.name in s]
        best = max(t, key=lambda n: t[n]) if t else None
        for rule in FAST_RULES:
            f = next(p for p in recommend(confirmed, s, margin, alpha, fast=rule) if p.tradeoff == "fast")
            if f.design in t and best is not None:
                gap = t[best] - t[f.design]
                verdict = (f"{100 * t[f.design]:.1f} | {100 * t[best]:.1f} ({names[best]}) | "
                           f"{100 * gap:.1f} | {'yes' if gap <= margin else '**no**'}")
            else:
                verdict = "– | – | – | not re-checked"
            out.append(f"| {run.name} | {label} | {rule} | {names[f.design]} | {f.n} | {verdict} |")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pair", nargs=2, action="append", type=Path, required=True, metavar=("RUN", "JSONL"))
    a = p.parse_args(argv)
    print("| run | recipe | rule | fast pick | confirmation seeds | truth | truly best re-checked | gap | "
          "within δ |\n|---|---|---|---|---|---|---|---|---|")
    for run, jsonl in a.pair:
        print("\n".join(rows_of(run, jsonl)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
