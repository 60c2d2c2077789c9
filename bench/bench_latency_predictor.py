"""Latency predictor error on this machine: calibrate on <= 20 measured designs, check on held-out.

For each space: ``nasl.latency.calibrate`` with ``--designs`` calibration designs, the
kernels of ``--kernel-designs`` more, and ``--holdout`` held-out designs measured in the same
run; prints and writes (``--out``, JSON) share within ±10 %, Spearman, median abs % error, and
the machine noise (a reference design re-timed every 5 designs, CPU/wall ratios).

The headline is the wall clock (``--clock wall``, the default): what a search times with, and
the only clock whose predictor a search loads. ``--compare cpu`` repeats the same
calibration (same designs, same seed) with the timing thread's CPU clock and prints both,
so the CPU-clock figure is stated next to the wall-clock one, never instead of it.

    python bench/bench_latency_predictor.py --spaces mobilenet shufflenet --clock wall \\
        --compare cpu --runtime torch --out bench/results/latency_predictor_wall.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from nasl.latency.calibrate import calibrate
    from nasl.latency.measure import target_of_space
    from nasl.space import load_space

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spaces", nargs="+", default=["shufflenet", "mobilenet"])
    p.add_argument("--runtime", default="torch")
    p.add_argument("--clock", default="wall", choices=("cpu", "wall"),
                   help="the headline clock (default wall: what a search uses)")
    p.add_argument("--compare", default=None, choices=("cpu", "wall"),
                   help="also calibrate with this clock, for comparison")
    p.add_argument("--designs", type=int, default=20)
    p.add_argument("--kernel-designs", type=int, default=400)
    p.add_argument("--holdout", type=int, default=50)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    results: dict = {}
    clocks = [a.clock] + ([a.compare] if a.compare and a.compare != a.clock else [])
    for name in a.spaces:
        space = load_space(name)
        for clock in clocks:
            target = target_of_space(space, device="cpu", runtime=a.runtime, clock=clock)
            t0 = time.perf_counter()
            pred, details = calibrate(space, target, designs=a.designs,
                                      kernel_designs=a.kernel_designs, holdout=a.holdout,
                                      seed=a.seed, repeats=a.repeats,
                                      progress=lambda m: print(m, file=sys.stderr, flush=True))
            key = name if clock == a.clock else f"{name} ({clock} clock, comparison)"
            results[key] = {"target": pred.target, "a": pred.a, "b": pred.b, "error": pred.error,
                            "loo": details["loo"], "noise": pred.noise, "details": details,
                            "seconds": round(time.perf_counter() - t0, 1)}
            if a.out:  # the fitted predictor too, to study its errors without re-measuring
                pred.save(a.out.with_name(f"{a.out.stem}_{name}_{clock}_predictor.json"))
            e = pred.error
            print(f"{key} [{target.label()}]: within ±10 % {100 * e['within_10pct']:.0f} % of "
                  f"{e['n']}, Spearman {e['spearman']:.3f}, MdAPE {e['mdape_pct']:.1f} %, p95 "
                  f"{e['p95_abs_pct']:.1f} %; noise: reference CV {pred.noise['reference_cv_pct']} "
                  f"%, CPU/wall median {pred.noise['cpu_ratio_median']}; calibration "
                  f"{details['correction']}", flush=True)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
