"""Does dividing out the machine's drift (the reference design's timings) steady the truth?

Offline, on a stored run of ``bench_latency_predictor.py`` (no timing). While the benchmark
times its calibration and held-out designs (interleaved, ``--rounds`` round-robin rounds),
it re-times one reference design before every ``REFERENCE_EVERY``-th design and once at the
end. On a shared machine those reference timings drift (run ``i``: 42 → 23 ms over ten
minutes), and every design timed in a slow stretch carries that drift into its "truth".
This divides each design timing by the mean of the two reference timings around it (as a
share of the reference's median over the run) and compares, raw vs corrected:

- the machine's own floor (one round within ±10 % of the design's other rounds): if the
  correction removes drift and not signal, this rises;
- the predictor's held-out error, with its memory-traffic calibration refitted on the same
  (raw or corrected) calibration designs — paired: same kernels, same predictor.

    python bench/eval_drift_correction.py bench/results/latency_predictor_wall-2026-12-07i.json \\
        'bench/results/latency_predictor_wall-2026-12-07i_{space}_wall_predictor.json'
"""

from __future__ import annotations

import math
import statistics

import numpy as np

HALVES = (0, 1, 2)  # local reference windows compared (see corrected_rounds)


def corrected_rounds(rounds_ms: list[list[float]], ref: list[float], order: list[int],
                     every: int, half: int = 0) -> list[list[float]]:
    """Each design's round timings divided by the local reference, as a share of the
    reference's median. The local reference: ``half`` = 0, the mean of the reference timings
    just before and after it in the run; else the median of the ``2·half + 2`` reference
    timings around it (a steadier reading of slower drift)."""
    per_round = math.ceil(len(order) / every)
    med = statistics.median(ref)
    out = [list(v) for v in rounds_ms]
    for pos, j in enumerate(order):
        for r in range(len(rounds_ms[j])):
            k = r * per_round + pos // every
            if half:
                local = statistics.median(ref[max(0, k - half):k + half + 2])
            else:
                local = (ref[k] + ref[min(k + 1, len(ref) - 1)]) / 2
            out[j][r] = rounds_ms[j][r] * med / local
    return out


def main(argv: list[str] | None = None) -> int:
    from stored_latency_run import load, parser

    from nasl.latency.calibrate import REFERENCE_EVERY, interleaved, retest
    from nasl.latency.predictor import Predictor, error_stats, traffic_of

    a = parser(__doc__).parse_args(argv)
    for name in a.spaces:
        run = load(a, name)
        if run is None:
            continue
        d = run.result["details"]
        ref = run.result["noise"]["reference_ms"]
        rows = d["rows"]
        nc, nh = len(run.calib), len(run.held)
        order = interleaved(nc, nh)
        expected = d["rounds"] * math.ceil((nc + nh) / REFERENCE_EVERY) + 1
        if len(ref) != expected:
            print(f"{name}: {len(ref)} reference timings, expected {expected}: skipped")
            continue
        raw_rounds = [r["rounds_ms"] for r in rows]
        variants = {"raw": raw_rounds}
        for half in HALVES:
            label = ("drift-corrected (the two references around it)" if not half else
                     f"drift-corrected (median of the {2 * half + 2} references around it)")
            variants[label] = corrected_rounds(raw_rounds, ref, order, REFERENCE_EVERY, half)
        pred = run.predictor
        kss = [pred.design_kernels(x) for x in run.calib + run.held]
        raw = [pred.raw_ms(ks) for ks in kss]
        traffic = [traffic_of(ks) for ks in kss]
        print(f"{name}: reference CV {run.result['noise']['reference_cv_pct']} %, "
              f"{d['rounds']} rounds, {nc} calibration + {nh} held-out designs")
        for label, rr in variants.items():
            truth = [float(np.median(v)) for v in rr]
            probe = Predictor(pred.target, pred.fingerprint, pred.space)
            probe.fit_traffic(raw[:nc], traffic[:nc], truth[:nc])
            hp = [probe.a * r + probe.b + probe.traffic_term(*t)
                  for r, t in zip(raw[nc:], traffic[nc:], strict=True)]
            e = error_stats(hp, truth[nc:], label)
            fl = retest(rr[nc:])
            print(f"  {label}: held-out {100 * e['within_10pct']:.0f} % within ±10 %, Spearman "
                  f"{e['spearman']:.3f}, MdAPE {e['mdape_pct']:.1f} %, p95 {e['p95_abs_pct']:.1f} %; "
                  f"the machine's floor {100 * fl['retest_within_10pct']:.0f} % (one round vs the "
                  f"others, median dev {fl['retest_mdape_pct']} %)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
