"""Latency predictor error on this machine: calibrate on <= 20 measured designs, check on held-out.

For each space: ``nasl.latency.calibrate`` with ``--designs`` calibration designs, the
kernels of ``--kernel-designs`` more, and ``--holdout`` held-out designs measured in the same
run; prints and writes (``--out``, JSON) share within ±10 %, Spearman, median abs % error, and
the machine noise (a reference design re-timed every 5 designs, CPU/wall ratios).

The headline is the wall clock (``--clock wall``, the default): what a search times with, and
the only clock whose predictor a search loads. ``--compare cpu`` repeats the same
calibration (same designs, same seed) with the timing thread's CPU clock and prints both,
so the CPU-clock figure is stated next to the wall-clock one, never instead of it.
Whole designs are timed in ``--rounds`` round-robin rounds (median over rounds), so a slow
minute of a shared machine does not decide a design's latency; the kernel sweep is repeated
``--kernel-rounds`` times (default 3) and each kernel keeps its median, so a kernel timed in
a slow moment does not err every design containing it.

``--ablate-formats`` also fits, in the same run and against the same measured designs, the
predictor without the memory-format tracking of :mod:`nasl.latency.kernels` (every kernel
input timed in the target's format, as before 2026-12-07; only the kernels whose key then
differs are timed again), and reports both under the global and the memory-traffic
calibration: a paired comparison (spaces without a format change skip it).

    python bench/bench_latency_predictor.py --spaces mobilenet shufflenet --clock wall \\
        --compare cpu --runtime torch --out bench/results/latency_predictor_wall.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def _formats_off(on: bool) -> Iterator[None]:
    """While ``on``: every tensor is taken to be in the target's format (no ``+nchw`` kinds)."""
    from nasl.latency import kernels as km

    real = km.tensor_formats
    if on:
        km.tensor_formats = lambda gm, cl: {  # type: ignore[assignment]
            n: "cl" if cl else "nchw" for n in gm.graph.nodes
            if len(getattr(n.meta.get("tensor_meta"), "shape", ())) == 4}
    try:
        yield
    finally:
        km.tensor_formats = real


def _has_format_change(space: object) -> bool:
    """Whether any of the space's baselines has a kernel fed the other memory format."""
    from nasl.latency.predictor import Predictor
    pred = Predictor({"batch_size": 1, "channels_last": True, "runtime": "torch"}, "", "")
    archs = [space.to_arch(p) for p in space.baselines.values()]  # type: ignore[attr-defined]
    return any("+" in k.kind for arch in archs for k in pred.design_kernels(arch))


def _ablation(space: object, target: object, pred: object, details: dict, a: argparse.Namespace
              ) -> dict[str, dict]:
    """Held-out error with the global calibration, formats tracked vs not, on the same
    measured designs (the untracked kernels' differing keys are timed now)."""
    import dataclasses

    from nasl.latency.calibrate import sample_designs
    from nasl.latency.measure import measure_kernels
    from nasl.latency.predictor import Predictor, error_stats, traffic_of

    sampled = [x for _, x in sample_designs(space, a.designs + a.kernel_designs + a.holdout, a.seed)]
    calib, held = sampled[:a.designs], sampled[a.designs + a.kernel_designs:]
    by_set = {s: [r["measured_ms"] for r in details["rows"] if r["set"] == s]
              for s in ("calibration", "held-out")}
    out = {}
    for tracked, blind in (("formats tracked", False), ("formats not tracked", True)):
        with _formats_off(blind):
            if blind:
                known = dict(pred.lookup)  # type: ignore[attr-defined]
                seen = {}
                for arch in sampled[:a.designs + a.kernel_designs]:
                    for k in measure_kernels(arch, target, known):  # type: ignore[arg-type]
                        seen.setdefault(k.key, k)
                p = Predictor.fit_kernels(pred.target, pred.fingerprint, pred.space,  # type: ignore[attr-defined]
                                          [(k, known[key]) for key, k in seen.items()])
            else:
                p = dataclasses.replace(pred, stage_a={}, stage_b=0.0, traffic={})  # type: ignore[type-var]
            cks = [p.design_kernels(x) for x in calib]
            raw = [p.raw_ms(ks) for ks in cks]
            for how in ("global", "memory traffic"):
                if how == "global":
                    p.calibrate(raw, by_set["calibration"])
                else:
                    p.fit_traffic(raw, [traffic_of(ks) for ks in cks], by_set["calibration"])
                label = f"{tracked} ({how} calibration)"
                out[label] = error_stats([p.predict(x) for x in held], by_set["held-out"], label)
    return out


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
    p.add_argument("--rounds", type=int, default=3,
                   help="round-robin timings of every whole design (median over rounds)")
    p.add_argument("--kernel-rounds", type=int, default=3,
                   help="kernel sweeps (each kernel keeps its median over them; default 3)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--ablate-formats", action="store_true",
                   help="also calibrate without memory-format tracking, for comparison")
    a = p.parse_args(argv)
    results: dict = {}
    clocks = [a.clock] + ([a.compare] if a.compare and a.compare != a.clock else [])
    for name in a.spaces:
        space = load_space(name)
        ablate = a.ablate_formats and _has_format_change(space)
        for clock in clocks:
            target = target_of_space(space, device="cpu", runtime=a.runtime, clock=clock)
            t0 = time.perf_counter()
            pred, details = calibrate(space, target, designs=a.designs,
                                      kernel_designs=a.kernel_designs, holdout=a.holdout,
                                      seed=a.seed, repeats=a.repeats, rounds=a.rounds,
                                      kernel_rounds=a.kernel_rounds,
                                      progress=lambda m: print(m, file=sys.stderr, flush=True))
            key = name if clock == a.clock else f"{name} ({clock} clock, comparison)"
            if ablate:
                details["formats_ablation"] = _ablation(space, target, pred, details, a)
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
                  f"{details['correction']}; one round vs the median of {a.rounds}: within ±10 % "
                  f"{e.get('retest_within_10pct')}, MdAPE {e.get('retest_mdape_pct')} %", flush=True)
            e0 = details.get("held_out_power_law")
            if e0:
                print(f"  unmeasured kernels by the power law alone: within ±10 % "
                      f"{100 * e0['within_10pct']:.0f} %, Spearman {e0['spearman']:.3f}, MdAPE "
                      f"{e0['mdape_pct']:.1f} % (paired: same designs and timings)", flush=True)
            for label, err in details.get("formats_ablation", {}).items():
                print(f"  {label}: within ±10 % {100 * err['within_10pct']:.0f} %, Spearman "
                      f"{err['spearman']:.3f}, MdAPE {err['mdape_pct']:.1f} %, mean "
                      f"{err['mean_pct']:+.1f} %", flush=True)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
