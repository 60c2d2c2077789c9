"""Zero-cost proxies vs params and MACs against trained accuracy, per search space.

Samples N random designs of each space (seeded), trains each at the proxy size (proxy
resolution x rho) on a Fashion-MNIST subset for a few epochs, scores each untrained network
with the zero-cost proxies (batch 64, same init seed), and prints the Spearman/Kendall
correlation of every proxy and of params/MACs with the trained accuracy (95 % bootstrap
intervals), the pre-screen decision the default rule would take, the paired-bootstrap width
of the proxy-minus-cost gap, and the CPU time of the proxies (1 thread) and of training.

    python bench/bench_proxies.py --data fashion-mnist:/usr/share/datasets/fashion-mnist \
        --spaces shufflenet mobilenet -n 16 --epochs 2 --subset 4000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nasl.data import load_dataset  # noqa: E402
from nasl.network.builder import build_model  # noqa: E402
from nasl.space import load_space  # noqa: E402
from nasl.training.train import TrainConfig, train_model  # noqa: E402
from nasl.zerocost import PROXIES, correlate, decide, sample_feasible, score_design  # noqa: E402


def bench_space(name: str, args: argparse.Namespace) -> dict[str, Any]:
    space = load_space(name)
    cache: dict[int, Any] = {}

    def data_for(res: int) -> Any:
        if res not in cache:
            cache[res] = load_dataset(args.data, resolution=res, seed=0, subset=args.subset,
                                      val_subset=args.val_subset)
        return cache[res]

    designs = sample_feasible(space, args.n, seed=args.seed, fits=lambda p: True)
    cfg = TrainConfig(**{**space.proxy.train_kwargs(), "epochs": args.epochs})
    rows = []
    for i, params in enumerate(designs):
        target = space.to_arch(params)
        torch.set_num_threads(1)
        c0, t0 = time.process_time(), time.perf_counter()
        scores = score_design(space, params, data_for, PROXIES, seed=args.seed)
        z_cpu, z_wall = time.process_time() - c0, time.perf_counter() - t0
        torch.set_num_threads(args.threads)
        data = data_for(space.proxy_arch(params, 1, 3).input_size)
        arch = space.proxy_arch(params, data.num_classes, data.in_channels)
        c0, t0 = time.process_time(), time.perf_counter()
        res = train_model(build_model(arch, seed=args.seed), data, cfg, seed=args.seed,
                          threads=args.threads)
        t_cpu, t_wall = time.process_time() - c0, time.perf_counter() - t0
        rows.append({"params_dict": params, "accuracy": res.final_accuracy,
                     "params": target.params(), "macs": target.macs(), **scores,
                     "proxy_cpu": z_cpu, "proxy_wall": z_wall, "train_cpu": t_cpu,
                     "train_wall": t_wall, "res": arch.input_size})
        print(f"  {name} {i + 1}/{len(designs)} res {arch.input_size} acc "
              f"{res.final_accuracy:.3f} proxies {z_cpu:.2f}s CPU ({z_wall:.2f}s wall) train "
              f"{t_wall:.1f}s wall", flush=True)
    acc = [r["accuracy"] for r in rows]
    scores = {m: [r[m] for r in rows] for m in (*PROXIES, "params", "macs")}
    corr = correlate(scores, acc, seed=args.seed)
    decisions = {p: decide(scores, acc, p, seed=args.seed).to_dict() for p in PROXIES}
    return {"space": name, "n": len(rows), "correlations": [c.to_dict() for c in corr.values()],
            "decisions": decisions,
            "proxy_cpu_s": [float(np.median([r["proxy_cpu"] for r in rows])),
                            float(max(r["proxy_cpu"] for r in rows))],
            "proxy_wall_s": float(np.median([r["proxy_wall"] for r in rows])),
            "train_wall_s": float(np.median([r["train_wall"] for r in rows])),
            "cpu_wall_ratio_proxies": sum(r["proxy_cpu"] for r in rows) /
            sum(r["proxy_wall"] for r in rows),
            "cpu_wall_ratio_train": sum(r["train_cpu"] for r in rows) /
            sum(r["train_wall"] for r in rows),
            "designs": [{k: v for k, v in r.items()} for r in rows]}


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| space | metric | Spearman ρ [95% CI] | Kendall τ [95% CI] | pre-screen |",
             "|---|---|---|---|---|"]
    for r in results:
        for c in r["correlations"]:
            d = r["decisions"].get(c["metric"])
            lo, hi = c["spearman_ci"]
            klo, khi = c["kendall_ci"]
            verdict = (f"{'on' if d['on'] else 'off'} (gap {d['delta']:+.2f}, "
                       f"95% CI [{d['delta_ci'][0]:+.2f}, {d['delta_ci'][1]:+.2f}], "
                       f"P {d['p_better']:.2f})") if d else "(cost)"
            lines.append(f"| {r['space']} (n={r['n']}) | {c['metric']} | {c['spearman']:+.2f} "
                         f"[{lo:+.2f}, {hi:+.2f}] | {c['kendall']:+.2f} [{klo:+.2f}, {khi:+.2f}] "
                         f"| {verdict} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="fashion-mnist:/usr/share/datasets/fashion-mnist")
    ap.add_argument("--spaces", nargs="+", default=["shufflenet", "mobilenet"])
    ap.add_argument("-n", type=int, default=16, help="designs per space")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--subset", type=int, default=4000)
    ap.add_argument("--val-subset", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2, help="training threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write all numbers here")
    args = ap.parse_args()
    t0 = time.perf_counter()
    results = [bench_space(s, args) for s in args.spaces]
    print(table(results))
    for r in results:
        print(f"{r['space']}: proxies median {r['proxy_cpu_s'][0]:.2f} s CPU (max "
              f"{r['proxy_cpu_s'][1]:.2f}) on 1 thread, {r['proxy_wall_s']:.2f} s wall, CPU/wall "
              f"{r['cpu_wall_ratio_proxies']:.2f}; training median {r['train_wall_s']:.1f} s wall "
              f"on {args.threads} threads, CPU/wall {r['cpu_wall_ratio_train']:.2f}")
    meta = {"command": " ".join(sys.argv), "torch": torch.__version__,
            "python": platform.python_version(), "machine": platform.platform(),
            "wall_s": time.perf_counter() - t0, "args": vars(args)}
    print(json.dumps(meta))
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, default=str))


if __name__ == "__main__":
    main()
