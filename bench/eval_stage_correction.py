"""The latency predictor's calibrations (global, per-stage, memory traffic), offline.

No timing: it re-uses a stored calibration run (``bench_latency_predictor.py --out``): the
stored predictor's kernel times and every design's measured median. The designs are drawn
again with the run's seed (``sample_designs`` is deterministic) and matched by ``arch_id``;
every calibration is fitted on the run's calibration designs and scored on its held-out
ones (and by leave-one-out, the rule ``calibrate`` uses to choose); ``--swap`` also fits
on 20 of the held-out designs and scores the other 30 (200 random splits; the held-out
designs were timed in rounds, so this shows a calibration on steadier measurements;
printed: mean, median and 10th-90th percentile of the share within ±10 % over the splits).
``--sweeps`` combines the run's kernel times with other stored sweeps of the same kernels
(``combine_sweeps``: per-kernel median, each sweep rescaled by its median ratio) and refits
the per-kind kernel models on them: what ``--kernel-rounds`` would have given, offline.

    python bench/eval_stage_correction.py bench/results/latency_predictor_2026-12-06_k40.json \\
        bench/results/latency_predictor_2026-12-06_{space}_predictor.json
    python bench/eval_stage_correction.py bench/results/latency_predictor_wall-2026-12-07e.json \\
        'bench/results/latency_predictor_wall-2026-12-07e_{space}_wall_predictor.json' --swap \\
        --sweeps 'bench/results/latency_predictor_wall-2026-12-07e_{space}_cpu_predictor.json' \\
                 'bench/results/latency_predictor_wall-2026-12-07d_{space}_wall_predictor.json'
"""

from __future__ import annotations

import random
import statistics
from typing import Any

HOWS = ("global", "per-stage", "memory traffic")


def _line(e: dict[str, Any]) -> str:
    return (f"{100 * e['within_10pct']:.0f} % within ±10 %, Spearman {e['spearman']:.3f}, "
            f"MdAPE {e['mdape_pct']:.1f} %")


def _fitted(base: Any, ctx: tuple, how: str, ids: list[str]) -> Any:
    """A calibration ``how`` fitted on the designs ``ids`` (``ctx``: kernels, designs, ms)."""
    from nasl.latency.predictor import Predictor, traffic_of

    ks, designs, measured = ctx
    fit = Predictor(base.target, base.fingerprint, base.space, base.lookup, base.models)
    raw = [fit.raw_ms(ks[i]) for i in ids]
    fit.calibrate(raw, [measured[i] for i in ids])
    if how == "per-stage":
        fit.fit_stages([fit.stage_ms(ks[i], designs[i].input_size) for i in ids],
                       [measured[i] for i in ids])
    elif how == "memory traffic":
        fit.fit_traffic(raw, [traffic_of(ks[i]) for i in ids], [measured[i] for i in ids])
    return fit


def _combined(base: Any, swept: list, others: list[dict[str, float]]) -> Any:
    """``base`` with its kernel times combined with ``others`` (:func:`combine_sweeps`) and
    its per-kind models refitted on them (``swept``: the run's designs whose kernels
    were timed)."""
    from nasl.latency.predictor import Predictor, combine_sweeps

    lookup = combine_sweeps([base.lookup, *others])
    seen = {k.key: k for x in swept for k in base.design_kernels(x)}
    return Predictor.fit_kernels(base.target, base.fingerprint, base.space,
                                 [(k, lookup[key]) for key, k in seen.items() if key in lookup])


def _score(fit: Any, ctx: tuple, ids: list[str], how: str) -> dict[str, Any]:
    from nasl.latency.predictor import error_stats

    ks, designs, measured = ctx
    return error_stats([fit.predict_kernels(ks[i], designs[i].input_size) for i in ids],
                       [measured[i] for i in ids], how)


def main(argv: list[str] | None = None) -> int:
    from stored_latency_run import load, parser

    from nasl.latency.predictor import Predictor, loo_error, loo_stages, loo_traffic, traffic_of

    p = parser(__doc__)
    p.add_argument("--swap", action="store_true", help="also calibrate on held-out splits")
    p.add_argument("--sweeps", nargs="*", default=[],
                   help="other stored predictors ({space} replaced) whose kernel times are "
                        "combined with the run's (per-kernel median)")
    a = p.parse_args(argv)
    for name in a.spaces:
        run = load(a, name)
        if run is None:
            continue
        stored, r = run.predictor, run.result
        if abs(stored.a - r["a"]) > 1e-12:
            print(f"{name}: the stored predictor is not this run's (a differs); skipped")
            continue
        calib, held, measured = run.calib, run.held, run.measured
        base = Predictor(stored.target, stored.fingerprint, name, stored.lookup, stored.models)
        if a.sweeps:
            base = _combined(base, run.calib + run.extra,
                             [Predictor.load(s.format(space=name)).lookup for s in a.sweeps])
        ks = {x.id: base.design_kernels(x) for x in calib + held}
        designs = {x.id: x for x in calib + held}
        ctx = (ks, designs, measured)

        cids, hids = [x.id for x in calib], [x.id for x in held]
        raw = [base.raw_ms(ks[i]) for i in cids]
        cm = [measured[i] for i in cids]
        loos = {"global": loo_error(base, raw, cm),
                "per-stage": loo_stages(base, raw, [base.stage_ms(ks[i], designs[i].input_size)
                                                    for i in cids], cm),
                "memory traffic": loo_traffic(base, raw, [traffic_of(ks[i]) for i in cids], cm)}
        rng = random.Random(0)
        for how in HOWS:
            line = (f"{name} {how}: held-out {_line(_score(_fitted(base, ctx, how, cids), ctx, hids, how))}; "
                    f"leave-one-out {_line(loos[how])}")
            if a.swap:
                shares = []
                for _ in range(200):
                    ids = rng.sample(hids, 20)
                    rest = [i for i in hids if i not in ids]
                    shares.append(_score(_fitted(base, ctx, how, ids), ctx, rest, how)["within_10pct"])
                q = statistics.quantiles(shares, n=10)
                line += (f"; fitted on 20 held-out, scored on 30 (200 splits): mean "
                         f"{100 * statistics.fmean(shares):.1f} %, median "
                         f"{100 * statistics.median(shares):.0f} %, 10-90 % "
                         f"{100 * q[0]:.0f}-{100 * q[-1]:.0f} %")
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
