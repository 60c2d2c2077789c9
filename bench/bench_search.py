"""Search benchmarks (issue 4): framework overhead, sampler quality, early-stopping savings.

Usage:
    python bench/bench_search.py overhead [--trials 20]
    python bench/bench_search.py samplers [--trials 12 --seeds 0 1 2 --epochs 6]
    python bench/bench_search.py early-stop [--trials 16 --epochs 9]

Each prints a markdown table (and the machine) to paste into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from nasl.hardware.devices import cpu_name
from nasl.run import results
from nasl.run.results import load_run
from nasl.search import SearchOptions, run_search
from nasl.space import load_space
from nasl.stats.pareto import hypervolume, non_dominated


def machine() -> str:
    v = results.versions()
    return (f"{cpu_name()}, {os.cpu_count()} cores, torch {v['torch']}, optuna {v['optuna']}, "
            f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}, load "
            f"{os.getloadavg()[0]:.1f}")


def two_objective_yaml(space) -> str:
    """The space as YAML with objectives accuracy and MACs only (both deterministic for a
    seed, so runs are comparable; measured latency moves a front by its noise alone)."""
    import yaml

    d = space.to_dict()
    d["objectives"] = [{"accuracy": "max"}, {"macs": "min"}]
    return yaml.safe_dump(d, sort_keys=False)


def search(space: str, runs: Path, name: str, **kw) -> tuple:
    opts = SearchOptions(name=name, runs_dir=runs, show_progress=False, **kw)
    out = run_search(load_space(space), opts)
    rows, env = load_run(out.run)
    return out, rows, env


def overhead(args: argparse.Namespace) -> None:
    """The main job's wall time split into training (search + confirmation), latency timing
    and everything else (nasl + Optuna + outputs), with the process CPU/wall ratio."""
    cpu0 = time.process_time()
    with tempfile.TemporaryDirectory() as d:
        out, rows, _ = search("shufflenet", Path(d), "overhead", budgets={"macs": 40e6},
                              trials=args.trials, epochs=args.epochs)
    cpu = time.process_time() - cpu0
    t = out.timings
    confirm = t.get("confirm", 0.0)
    other = t["total"] - t["train"] - t["latency"] - confirm
    print(f"Machine: {machine()}\n")
    print("| trained trials | rejected | total s | training s | confirmation s | latency s | "
          "other s | overhead | CPU/wall |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {out.trained} | {out.rejected} | {t['total']:.1f} | {t['train']:.1f} | "
          f"{confirm:.1f} | {t['latency']:.1f} | {other:.1f} | {other / t['total']:.1%} | "
          f"{cpu / t['total']:.2f} |")


def _front_hv(rows, objectives, budgets):
    pts = [[r[m] for m, _ in objectives] for r in rows
           if r["state"] == "COMPLETE" and r["feasible"] and r["baseline"] == ""]
    dirs = [d for _, d in objectives]
    ref = [0.0 if d == "maximize" else budgets.get(m, max(p[i] for p in pts) * 1.1)
           for i, (m, d) in enumerate(objectives)]
    return pts, hypervolume(pts, dirs, ref) if pts else 0.0


def samplers(args: argparse.Namespace) -> None:
    budgets = {"macs": 40e6}
    base_space = load_space("shufflenet")
    print(f"Machine: {machine()}\n")
    print(f"Objectives accuracy (max) and MACs (min) on {args.data} (subset {args.subset}) "
          "under 40 MFLOPs; baselines not "
          f"enqueued; {args.trials} trained trials of {args.epochs} epochs each.\n")
    with tempfile.TemporaryDirectory() as d:
        space_file = Path(d) / "s.yaml"
        text = two_objective_yaml(base_space).replace("dataset: digits", f"dataset: {args.data}")
        if args.subset:
            text = text.replace("subset: null", f"subset: {args.subset}", 1)
        space_file.write_text(text)
        # the baselines under the same recipe: the fitting ones are enqueued first
        n_fit = sum(1 for p in base_space.baselines.values()
                    if base_space.to_arch(p).macs() <= budgets["macs"])
        _, rows, _ = search(str(space_file), Path(d), "baselines", budgets=budgets,
                            trials=n_fit, epochs=args.epochs, early_stop=False)
        half = {r["baseline"]: (r["accuracy"], r["macs"]) for r in rows
                if "0.5x" in (r["baseline"] or "") and r["state"] == "COMPLETE"}
        print("0.5x baselines (accuracy, MACs): "
              + ", ".join(f"{k} {a:.1%} {m / 1e6:.1f}M" for k, (a, m) in half.items()) + "\n")
        print("| sampler | seed | hypervolume | front size | 0.5x baselines dominated | s |")
        print("|---|---:|---:|---:|---:|---:|")
        for sampler in args.samplers:
            for seed in args.seeds:
                t0 = time.perf_counter()
                out, rows, env = search(str(space_file), Path(d), f"{sampler}-{seed}",
                                        budgets=budgets, trials=args.trials, epochs=args.epochs,
                                        sampler=sampler, seed=seed, baselines=False)
                objectives = [tuple(o) for o in env["objectives"]]
                pts, hv = _front_hv(rows, objectives, budgets)
                front = [pts[i] for i in non_dominated(pts, [dd for _, dd in objectives])]
                dom = sum(1 for a, m in half.values()
                          if any(p[0] >= a and p[1] <= m for p in front))
                print(f"| {sampler} | {seed} | {hv / budgets['macs']:.3f} | {len(front)} | "
                      f"{dom} of {len(half)} | {time.perf_counter() - t0:.0f} |", flush=True)


def early_stop(args: argparse.Namespace) -> None:
    print(f"Machine: {machine()}\n")
    print(f"shufflenet space, objectives accuracy and MACs, 40 MFLOPs, data {args.data} "
          f"(subset {args.subset}), margin {args.margin}, "
          f"{args.trials} trained trials of {args.epochs} epochs, seed {args.seed}; random "
          "sampler and no baselines, so both runs propose the same designs in the same order.\n")
    print("| early stop | trained | pruned | training s | total s | front (trial numbers) |")
    print("|---|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as d:
        space = load_space("shufflenet")
        text = two_objective_yaml(space).replace("dataset: digits", f"dataset: {args.data}")
        if args.subset:
            text = text.replace("subset: null", f"subset: {args.subset}", 1)
        space_file = Path(d) / "es.yaml"
        space_file.write_text(text)
        fronts = {}
        for on in (False, True):
            out, rows, env = search(str(space_file), Path(d), f"es-{on}", budgets={"macs": 40e6},
                                    trials=args.trials, epochs=args.epochs, early_stop=on,
                                    early_stop_margin=args.margin, seed=args.seed,
                                    sampler="random", baselines=False)
            front = sorted(r["number"] for r in rows if r["pareto"])
            fronts[on] = front
            print(f"| {'on' if on else 'off'} | {out.trained} | {out.pruned} | "
                  f"{out.timings['train']:.1f} | {out.timings['total']:.1f} | {front} |",
                  flush=True)
        lost = [n for n in fronts[False] if n not in fronts[True]]
        print(f"\nfront members without early stopping that are missing with it: {lost}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("overhead")
    a.add_argument("--trials", type=int, default=20)
    a.add_argument("--epochs", type=int, default=None)
    a.set_defaults(func=overhead)
    a = sub.add_parser("samplers")
    a.add_argument("--trials", type=int, default=12)
    a.add_argument("--epochs", type=int, default=6)
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a.add_argument("--samplers", nargs="+", default=["tpe", "random"])
    a.add_argument("--data", default="digits")
    a.add_argument("--subset", type=int, default=None)
    a.set_defaults(func=samplers)
    a = sub.add_parser("early-stop")
    a.add_argument("--trials", type=int, default=16)
    a.add_argument("--epochs", type=int, default=9)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--data", default="digits")
    a.add_argument("--subset", type=int, default=None)
    a.add_argument("--margin", type=float, default=0.05)
    a.set_defaults(func=early_stop)
    args = p.parse_args()
    torch.set_num_threads(2)
    args.func(args)


if __name__ == "__main__":
    main()
