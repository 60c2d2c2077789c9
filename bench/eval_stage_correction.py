"""The per-stage correction of the latency predictor against the global one, offline.

No timing: it re-uses a stored calibration run (``bench_latency_predictor.py --out``): the
stored predictor's kernel times and every design's measured median. The designs are drawn
again with the run's seed (``sample_designs`` is deterministic) and matched by ``arch_id``;
both calibrations are fitted on the run's calibration designs and scored on its held-out
ones (and by leave-one-out, the rule ``calibrate`` uses to choose).

    python bench/eval_stage_correction.py bench/results/latency_predictor_2026-12-06_k40.json \\
        bench/results/latency_predictor_2026-12-06_{space}_predictor.json
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def _line(e: dict[str, Any]) -> str:
    return (f"{100 * e['within_10pct']:.0f} % within ±10 %, Spearman {e['spearman']:.3f}, "
            f"MdAPE {e['mdape_pct']:.1f} %")


def main(argv: list[str] | None = None) -> int:
    from nasl.latency.calibrate import sample_designs
    from nasl.latency.predictor import Predictor, error_stats, loo_error, loo_stages
    from nasl.space import load_space

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", help="the JSON written by bench_latency_predictor.py --out")
    p.add_argument("predictor", help="its stored predictor ({space} is replaced by the space)")
    p.add_argument("--spaces", nargs="+", default=["shufflenet", "mobilenet"])
    p.add_argument("--seed", type=int, default=0, help="the run's --seed")
    a = p.parse_args(argv)
    with open(a.results, encoding="utf-8") as f:
        res = json.load(f)
    for name in a.spaces:
        stored = Predictor.load(a.predictor.format(space=name))
        r = res[name]
        if abs(stored.a - r["a"]) > 1e-12:
            print(f"{name}: the stored predictor is not this run's (a differs); skipped")
            continue
        d = r["details"]
        sampled = sample_designs(load_space(name), d["designs"] + d["kernel_designs"] + d["holdout"],
                                 a.seed)
        calib, held = sampled[:d["designs"]], sampled[d["designs"] + d["kernel_designs"]:]
        measured = {row["arch_id"]: row["measured_ms"] for row in d["rows"]}
        cm, hm = [measured[x.id] for _, x in calib], [measured[x.id] for _, x in held]
        cs = [stored.stage_ms(stored.design_kernels(x), x.input_size) for _, x in calib]
        hs = [stored.stage_ms(stored.design_kernels(x), x.input_size) for _, x in held]
        raw = [sum(s.values()) for s in cs]
        fits = {}
        for how in ("global", "per-stage"):
            fit = Predictor(stored.target, stored.fingerprint, name, stored.lookup, stored.models)
            fit.calibrate(raw, cm)
            if how == "per-stage":
                fit.fit_stages(cs, cm)
            fits[how] = fit
        for how, fit in fits.items():
            held_err = error_stats([fit.corrected_ms(s) for s in hs], hm, how)
            loo = loo_error(fit, raw, cm) if how == "global" else loo_stages(fit, raw, cs, cm)
            print(f"{name} {how}: held-out {_line(held_err)}; leave-one-out {_line(loo)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
