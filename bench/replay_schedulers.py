"""Replay schedulers on recorded learning curves: which rule keeps the front for fewer epochs.

In: run folders of searches that trained every candidate to the end (``--scheduler none``),
e.g. those ``bench/bench_schedulers.py --schedulers none --runs-dir DIR`` keeps. Each
trial's full validation-accuracy curve and its MACs are in the run's study.

Out: for every scheduler variant and run, the epochs the variant would have trained and the
hypervolume of the trials it would have completed, replaying the trials one at a time in
number order (each trial's epochs fed to ``check`` as the search does; a stopped trial is
recorded with its partial curve, a completed one with its full curve).

What a replay cannot tell: in a real search the sampler sees different completed trials and
proposes different designs after the first stop, so a replay ranks rules on the same
designs; it does not replace the real benchmark (``bench_schedulers.py``), it chooses which
variants are worth running there (the idea of Syne Tune's blackbox-repository simulations).

Usage:

    python bench/replay_schedulers.py RUN_DIR [RUN_DIR ...] --budget 40MFLOPs
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nasl.common.units import parse_budget
from nasl.run.results import RunDir, open_run_study
from nasl.search.schedulers import (
    Scheduler,
    StrictSuccessiveHalving,
    SuccessiveHalving,
    make_scheduler,
)
from nasl.stats.pareto import hypervolume


def _asha(strict: bool = False, **kw: Any) -> Callable[[int], Scheduler]:
    cls = StrictSuccessiveHalving if strict else SuccessiveHalving
    return lambda epochs: cls(("macs",), epochs, **kw)


#: label -> scheduler for trials of ``epochs`` epochs
VARIANTS: dict[str, Callable[[int], Scheduler]] = {
    "none": lambda epochs: make_scheduler("none", ("macs",), epochs),
    "front": lambda epochs: make_scheduler("front", ("macs",), epochs),
    "asha (eta 3, r 1)": _asha(eta=3, r_min=1),
    "asha (eta 3, r 1, warmup 1)": _asha(eta=3, r_min=1, warmup=1),
    "asha (eta 2, r 1)": _asha(eta=2, r_min=1),
    "asha (eta 4, r 1)": _asha(eta=4, r_min=1),
    "asha (eta 4, r 1, warmup 1)": _asha(eta=4, r_min=1, warmup=1),
    "asha (eta 3, r 2)": _asha(eta=3, r_min=2),
    "asha (eta 3, r 2, warmup 1)": _asha(eta=3, r_min=2, warmup=1),
    "asha (eta 2, r 2)": _asha(eta=2, r_min=2),
    "asha-strict (eta 3, r 1)": _asha(True, eta=3, r_min=1),
    "asha-strict (eta 2, r 1)": _asha(True, eta=2, r_min=1),
}


def curves(run: Path) -> tuple[list[tuple[int, float, list[float]]], int]:
    """A run's completed, feasible, trained trials as (number, MACs, curve), and its epochs."""
    study, env = open_run_study(RunDir(run))
    out = []
    for t in study.get_trials(deepcopy=False):
        ua = t.user_attrs
        if t.state.name == "COMPLETE" and ua.get("feasible") and ua.get("curve") \
                and not ua.get("baseline"):
            out.append((t.number, float(ua["macs"]), [float(a) for a in ua["curve"]]))
    return sorted(out), int(env.get("epochs") or max(len(c) for _, _, c in out))


def replay(trials: list[tuple[int, float, list[float]]],
           sched: Scheduler) -> tuple[int, list[list[float]]]:
    """Epochs trained and the (accuracy, MACs) points completed under one scheduler."""
    spent, done = 0, []
    for number, macs, curve in trials:
        for e, acc in enumerate(curve, start=1):
            if sched.check([macs], e, acc, number) is not None:
                sched.add_partial(number, [macs], curve[:e])
                spent += e
                break
        else:
            sched.add(number, [macs], curve)
            spent += len(curve)
            done.append([curve[-1], macs])
    return spent, done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders (trained with --scheduler none)")
    p.add_argument("--budget", default="40MFLOPs", help="MACs budget: the HV reference")
    a = p.parse_args(argv)
    budget = parse_budget(a.budget)[1]
    table: dict[str, list[tuple[int, float, int]]] = {}
    for run in a.runs:
        trials, epochs = curves(run)
        for label, make in VARIANTS.items():
            spent, pts = replay(trials, make(epochs))
            hv = hypervolume(pts, ["maximize", "minimize"], [0.0, budget]) / budget if pts else 0.0
            table.setdefault(label, []).append((spent, hv, len(pts)))
    full = statistics.mean(s for s, _, _ in table["none"])
    print(f"Replayed on {len(a.runs)} runs: {', '.join(r.name for r in a.runs)}\n")
    print("| variant | epochs per run | vs none | complete | HV per run | HV mean | HV vs none |")
    print("|---|---|---:|---:|---|---:|---:|")
    base = statistics.mean(h for _, h, _ in table["none"])
    for label, rows in table.items():
        ep = statistics.mean(s for s, _, _ in rows)
        hv = statistics.mean(h for _, h, _ in rows)
        print(f"| {label} | {' / '.join(str(s) for s, _, _ in rows)} | {ep / full:.2f} | "
              f"{statistics.mean(c for _, _, c in rows):.1f} | "
              f"{' / '.join(f'{h:.4f}' for _, h, _ in rows)} | {hv:.4f} | {hv - base:+.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
