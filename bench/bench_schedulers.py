"""Multi-fidelity schedulers (issue 12): hypervolume against trained epochs, per seed.

Runs real searches through the CLI (``nasl search``), one per scheduler and seed, with
objectives accuracy (max) and MACs (min) only (both deterministic for a seed; measured
latency would move a front by its noise alone), the space's baselines not enqueued, and a
MACs budget. From each run's trials.csv it computes:

- ``epochs``: the sum of the ``epochs`` column (every trained trial: complete, stopped, failed);
- ``HV``: hypervolume of the complete, feasible trials over (accuracy, MACs) with the fixed
  reference point (accuracy 0, MACs = budget), divided by the budget (so 0..1, in accuracy);
- ``HV@cut``: the same over the complete trials that finished before the run had trained
  ``--epoch-cut`` epochs in all (trials in number order; default: half the mean epochs of the
  ``none`` runs), i.e. the front that half the epochs of full training bought.

Usage (the lead's full benchmark; minutes per run on 2 cores):

    python bench/bench_schedulers.py --data fashion-mnist:/usr/share/datasets/fashion-mnist \\
        --subset 10000 --epochs 9 --trials 20 --trials-for asha=40 --seeds 0 1 2 \\
        --schedulers none front asha asha-strict

A scheduler entry is ``NAME`` (passed as ``--scheduler NAME``) or ``LABEL=NAME ARGS...``
(extra ``nasl search`` arguments for that variant, e.g. ``"front5=front --early-stop-margin
0.05"``; asha's ``eta`` and ``r_min`` have no CLI flags yet). While ``nasl search`` has no
``--scheduler`` flag, ``none`` falls back to ``--no-early-stop``, ``front`` to the default
early stop, and the others are skipped with a note. Prints markdown tables to paste into
docs/benchmarks.md and writes every run's numbers to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from nasl.common.units import parse_budget
from nasl.space import load_space
from nasl.stats.pareto import hypervolume

NASL = [sys.executable, "-c", "import sys; from nasl.cli import main; sys.exit(main(sys.argv[1:]))"]


def machine() -> str:
    """One line: CPU, cores, Python, date, load."""
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}, "
            f"load {os.getloadavg()[0]:.1f}")


def space_yaml(space: str, dataset: str, subset: int | None) -> str:
    """``space`` as YAML with objectives accuracy and MACs, proxy ``dataset`` and ``subset``."""
    d = load_space(space).to_dict()
    d["objectives"] = [{"accuracy": "max"}, {"macs": "min"}]
    d["proxy"]["dataset"] = dataset
    if subset:
        d["proxy"]["subset"] = subset
    return yaml.safe_dump(d, sort_keys=False)


def has_scheduler_flag(nasl: list[str]) -> bool:
    """Whether ``nasl search`` accepts ``--scheduler``."""
    out = subprocess.run([*nasl, "search", "--help"], capture_output=True, text=True)
    return "--scheduler" in out.stdout


def scheduler_args(entry: str, native: bool) -> tuple[str, list[str] | None]:
    """``NAME`` or ``LABEL=NAME ARGS`` → (label, nasl search arguments; None: not runnable)."""
    label, _, rest = entry.partition("=")
    words = shlex.split(rest) if rest else [label]
    name, extra = words[0], words[1:]
    if native:
        return label, ["--scheduler", name, *extra]
    fallback = {"none": ["--no-early-stop"], "front": []}
    return label, None if name not in fallback else [*fallback[name], *extra]


def read_trials(path: Path) -> list[dict[str, Any]]:
    """trials.csv → rows with number, state, epochs, accuracy, macs, feasible, baseline."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))

    def num(v: str) -> float | None:
        return float(v) if v not in ("", None) else None

    out = [{"number": int(r["number"]), "state": r["state"], "epochs": num(r.get("epochs", "")),
            "accuracy": num(r.get("accuracy", "")), "macs": num(r.get("macs", "")),
            "feasible": r.get("feasible", "").lower() == "true",
            "baseline": r.get("baseline", "")} for r in rows]
    return sorted(out, key=lambda r: r["number"])


def front_hv(rows: list[dict[str, Any]], budget: float, cut: float | None = None) -> float:
    """Normalised hypervolume of the complete feasible trials (those finished within ``cut``
    trained epochs, counted in trial-number order, when ``cut`` is given)."""
    pts, spent = [], 0.0
    for r in rows:
        spent += r["epochs"] or 0.0
        if cut is not None and spent > cut + 1e-9:
            break
        if (r["state"] == "COMPLETE" and r["feasible"] and not r["baseline"]
                and r["accuracy"] is not None and r["macs"] is not None):
            pts.append([r["accuracy"], r["macs"]])
    if not pts:
        return 0.0
    return hypervolume(pts, ["maximize", "minimize"], [0.0, budget]) / budget


def run_one(nasl: list[str], space_file: Path, runs: Path, label: str, seed: int,
            args: argparse.Namespace, sched: list[str], trials: int) -> dict[str, Any]:
    """One ``nasl search`` → its numbers (epochs, HV, counts, wall and CPU seconds)."""
    name = f"{label}-s{seed}"
    cmd = [*nasl, "search", str(space_file), "--data", args.data, "--trials", str(trials),
           "--epochs", str(args.epochs), "--seed", str(seed), "--budget", args.budget,
           "--no-baselines", "--name", name, "--runs-dir", str(runs), "--quiet",
           *(["--sampler", args.sampler] if args.sampler else []), *sched,
           *shlex.split(args.search_args)]
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise SystemExit(f"{shlex.join(cmd)} failed ({proc.returncode}): {' | '.join(tail)}")
    rows = read_trials(runs / name / "trials.csv")
    cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
    trained = [r for r in rows if (r["epochs"] or 0) > 0]
    return {"label": label, "seed": seed, "trials": trials, "rows": rows,
            "trained": len(trained), "complete": sum(r["state"] == "COMPLETE" for r in trained),
            "stopped": sum(r["state"] == "PRUNED" for r in trained),
            "epochs": sum(r["epochs"] or 0 for r in rows), "wall_s": wall, "cpu_s": cpu}


def summarise(results: list[dict[str, Any]], budget: float, cut: float | None) -> str:
    """Markdown: one row per run, then mean and spread per scheduler."""
    if cut is None:
        full = [r["epochs"] for r in results if r["label"] == "none"]
        cut = statistics.mean(full) / 2 if full else None
    for r in results:
        r["hv"] = front_hv(r["rows"], budget)
        r["hv_cut"] = front_hv(r["rows"], budget, cut) if cut else None
    lines = [f"Epoch cut for HV@cut: {cut if cut is None else round(cut, 1)}\n",
             "| scheduler | seed | trials | complete | stopped | epochs | HV | HV@cut | wall s | CPU/wall |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        hc = "" if r["hv_cut"] is None else f"{r['hv_cut']:.4f}"
        lines.append(f"| {r['label']} | {r['seed']} | {r['trained']} | {r['complete']} | "
                     f"{r['stopped']} | {r['epochs']:.0f} | {r['hv']:.4f} | {hc} | "
                     f"{r['wall_s']:.0f} | {r['cpu_s'] / max(r['wall_s'], 1e-9):.2f} |")
    lines += ["", "| scheduler | runs | mean epochs | epochs vs none | HV mean ± sd | HV@cut mean ± sd |",
              "|---|---:|---:|---:|---:|---:|"]
    labels = list(dict.fromkeys(r["label"] for r in results))
    none_ep = [r["epochs"] for r in results if r["label"] == "none"]

    def ms(xs: list[float]) -> str:
        return f"{statistics.mean(xs):.4f} ± {statistics.stdev(xs) if len(xs) > 1 else 0:.4f}"

    for lab in labels:
        rs = [r for r in results if r["label"] == lab]
        ep = statistics.mean(r["epochs"] for r in rs)
        ratio = f"{ep / statistics.mean(none_ep):.2f}" if none_ep else ""
        cuts = [r["hv_cut"] for r in rs if r["hv_cut"] is not None]
        lines.append(f"| {lab} | {len(rs)} | {ep:.0f} | {ratio} | {ms([r['hv'] for r in rs])} | "
                     f"{ms(cuts) if cuts else ''} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="shufflenet")
    p.add_argument("--data", default="fashion-mnist:/usr/share/datasets/fashion-mnist")
    p.add_argument("--subset", type=int, default=10000, help="training images (0: all)")
    p.add_argument("--budget", default="40MFLOPs", help="MACs budget, also the HV reference")
    p.add_argument("--epochs", type=int, default=9)
    p.add_argument("--trials", type=int, default=20, help="trained trials per run")
    p.add_argument("--trials-for", action="append", default=[], metavar="LABEL=N",
                   help="trained trials for one scheduler (e.g. asha=40)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--schedulers", nargs="+", default=["none", "front", "asha", "asha-strict"],
                   help="NAME or 'LABEL=NAME EXTRA-ARGS'")
    p.add_argument("--sampler", default=None, help="nasl search --sampler (default: the space's)")
    p.add_argument("--epoch-cut", type=float, default=None,
                   help="epochs for HV@cut (default: half the mean epochs of the none runs)")
    p.add_argument("--search-args", default="", help="more nasl search arguments, e.g. '--threads 2'")
    p.add_argument("--nasl", default=None, help="command that runs nasl (default: this Python)")
    p.add_argument("--runs-dir", default=None, help="keep the runs here (default: a temporary folder)")
    p.add_argument("--out", default=None, help="write every run's numbers here (JSON)")
    args = p.parse_args(argv)
    nasl = shlex.split(args.nasl) if args.nasl else NASL
    metric, macs = parse_budget(args.budget)
    if metric != "macs":
        p.error(f"--budget {args.budget}: expected a MACs budget such as 40MFLOPs")
    trials_for = {k: int(v) for k, _, v in (t.partition("=") for t in args.trials_for)}
    native = has_scheduler_flag(nasl)
    print(f"Machine: {machine()}\n")
    print(f"{args.space} space, objectives accuracy and MACs, budget {args.budget} (HV reference "
          f"accuracy 0, MACs {macs:.3g}, HV divided by it), data {args.data} (subset "
          f"{args.subset or 'all'}), {args.epochs} epochs, sampler {args.sampler or 'default'}, "
          f"no baselines; --scheduler {'available' if native else 'missing: fallback flags'}.\n")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(args.runs_dir or tmp)
        runs.mkdir(parents=True, exist_ok=True)
        space_file = runs / "bench_space.yaml"
        space_file.write_text(space_yaml(args.space, args.data, args.subset))
        for seed in args.seeds:  # seeds outside: a contention burst hits every scheduler alike
            for entry in args.schedulers:
                label, sched = scheduler_args(entry, native)
                if sched is None:
                    print(f"skipped {label}: this nasl has no --scheduler flag", flush=True)
                    continue
                res = run_one(nasl, space_file, runs, label, seed, args, sched,
                              trials_for.get(label, args.trials))
                print(f"done {label} seed {seed}: {res['epochs']:.0f} epochs, "
                      f"{res['wall_s']:.0f} s", file=sys.stderr, flush=True)
                results.append(res)
    if not results:
        print("nothing ran")
        return 1
    print(summarise(results, macs, args.epoch_cut))
    if args.out:
        Path(args.out).write_text(json.dumps(
            [{k: v for k, v in r.items() if k != "rows"} for r in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
