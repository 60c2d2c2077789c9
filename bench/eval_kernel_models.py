"""Models for the kernels a sweep did not time, compared offline on a stored run (no timing).

A held-out design's kernel is looked up when its exact key was timed in the sweep, else
predicted by its kind's power law in MACs, input, output and parameter counts
(``Predictor.fit_kernels``). This refits that model and alternatives on the run's measured
kernels (the predictor's lookup; the kernels re-derived by tracing the run's sweep designs
on the meta device) and scores them twice:

1. kernel level: 5-fold cross-validation over the measured keys (median and p90 absolute
   error of one kernel's time, the log error's SD);
2. design level: every design's kernel sum with the unmeasured kernels predicted by each
   model, the default memory-traffic calibration fitted on the run's 20 calibration designs,
   the share of its held-out designs within ±10 % (and Spearman) — paired: same designs,
   same timings, only the model of the unmeasured kernels differs.

Models: ``power law`` (the default until 2026-12-07), ``forest`` (scikit-learn random forest on the logs of
the counts plus the kernel's structure: input channels and side, kernel size, stride,
groups, depthwise, memory-format change, number of inputs; one per kind with enough
samples, else per family, as nn-Meter's per-kernel random forests), and ``power law + forest
residual`` (the forest fitted to what the power law leaves; the predictor's default since
2026-12-07: ``Predictor.kernel_times``, :mod:`nasl.latency.residual`, run through here).

    python bench/eval_kernel_models.py bench/results/latency_predictor_wall-2026-12-07e.json \\
        'bench/results/latency_predictor_wall-2026-12-07e_{space}_wall_predictor.json'
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from nasl.latency.predictor import UNMEASURED
from nasl.latency.residual import family, structure

MIN_FOREST = 40  # samples for a kind's own forest (else its family's)
Model = Callable[[Sequence[object]], list[float]]  # kernels → their predicted ms


def _structure(k: object) -> list[float]:
    return structure(k.kind, k.features, k.inputs)  # type: ignore[attr-defined]


class Forest:
    """Random forests of log ms replacing the power law: one per kind with ≥ ``MIN_FOREST``
    samples, one per family, one for everything."""

    def __init__(self, kernels: Sequence[object], ms: Sequence[float], seed: int = 0) -> None:
        from sklearn.ensemble import RandomForestRegressor

        y = np.log(np.maximum(np.asarray(ms, float), 1e-6))
        x = np.array([_structure(k) for k in kernels])
        groups: dict[str, list[int]] = {}
        for i, k in enumerate(kernels):
            for name in (k.kind, "*" + family(k.kind), "*"):  # type: ignore[attr-defined]
                groups.setdefault(name, []).append(i)
        self.forests = {}
        for name, idx in groups.items():
            if len(idx) >= MIN_FOREST or name == "*":
                f = RandomForestRegressor(n_estimators=100, min_samples_leaf=2, max_features=0.6,
                                          random_state=seed, n_jobs=1)
                self.forests[name] = f.fit(x[idx], y[idx])

    def __call__(self, ks: Sequence[object]) -> list[float]:
        by: dict[str, list[int]] = {}
        for i, k in enumerate(ks):
            name = next(n for n in (k.kind, "*" + family(k.kind), "*")  # type: ignore[attr-defined]
                        if n in self.forests)
            by.setdefault(name, []).append(i)
        out = [0.0] * len(ks)
        for name, idx in by.items():
            for i, v in zip(idx, self.forests[name].predict(np.array([_structure(ks[i]) for i in idx])),
                            strict=True):
                out[i] = math.exp(float(v))
        return out


def predictor_model(unmeasured: str) -> Callable[[Sequence[object], Sequence[float]], Model]:
    """The predictor's own model of unmeasured kernels (``Predictor.kernel_times``), fitted
    by ``Predictor.fit_kernels`` on the given kernels, with ``unmeasured`` as its choice."""
    from nasl.latency.predictor import Predictor

    def make(kernels: Sequence[object], ms: Sequence[float]) -> Model:
        p = Predictor.fit_kernels({}, "", "", list(zip(kernels, ms, strict=True)))
        p.unmeasured = unmeasured
        return p.kernel_times  # type: ignore[return-value]

    return make


MODELS: dict[str, Callable[[Sequence[object], Sequence[float]], Model]] = {
    "power law": predictor_model(UNMEASURED[0]),
    "forest": lambda ks, ms: Forest(ks, ms),
    "power law + forest residual (default)": predictor_model(UNMEASURED[1]),
}


def kernel_cv(kernels: Sequence[object], ms: np.ndarray, folds: int = 5) -> dict[str, str]:
    """Each model's error on keys it was not fitted on (``folds``-fold, shuffled)."""
    rng = np.random.default_rng(0)
    fold = rng.permutation(len(kernels)) % folds
    out = {}
    for name, make in MODELS.items():
        err = np.empty(len(kernels))
        for f in range(folds):
            tr, te = np.where(fold != f)[0], np.where(fold == f)[0]
            model = make([kernels[i] for i in tr], ms[tr])
            err[te] = np.log(np.array(model([kernels[i] for i in te])) / ms[te])
        a = np.abs(np.expm1(err))
        out[name] = (f"median |err| {100 * np.median(a):.1f} %, p90 {100 * np.percentile(a, 90):.0f} %, "
                     f"log SD {np.std(err):.2f}")
    return out


def main(argv: list[str] | None = None) -> int:
    from stored_latency_run import load, parser

    from nasl.latency.predictor import Predictor, error_stats, traffic_of

    p = parser(__doc__)
    p.add_argument("--skip-cv", action="store_true", help="design level only")
    a = p.parse_args(argv)
    for name in a.spaces:
        t0 = time.perf_counter()
        run = load(a, name)
        if run is None:
            continue
        pred = run.predictor
        seen = {}
        for arch in run.calib + run.extra:
            for k in pred.design_kernels(arch):
                if k.key in pred.lookup:
                    seen.setdefault(k.key, k)
        kernels = list(seen.values())
        ms = np.array([pred.lookup[k.key] for k in kernels])
        designs = run.calib + run.held
        m = np.array([run.measured[x.id] for x in designs])
        kss = [pred.design_kernels(x) for x in designs]
        nc = len(run.calib)
        held_ks = [k for ks in kss[nc:] for k in ks]
        unmeasured = [k for k in held_ks if k.key not in pred.lookup]
        print(f"{name}: {len(kernels)} measured kernels (of {len(pred.lookup)} in the lookup); "
              f"held-out designs' kernels unmeasured {len(unmeasured)}/{len(held_ks)}", flush=True)
        if not a.skip_cv:
            for model, line in kernel_cv(kernels, ms).items():
                print(f"  kernel CV {model}: {line}", flush=True)
        for model, make in MODELS.items():
            f = make(kernels, ms)
            share = []
            raw = []
            for ks in kss:
                known = sum(pred.lookup[k.key] for k in ks if k.key in pred.lookup)
                guess = sum(f([k for k in ks if k.key not in pred.lookup]))
                raw.append(known + guess)
                share.append(guess / (known + guess))
            probe = Predictor(pred.target, pred.fingerprint, pred.space)
            probe.fit_traffic(raw[:nc], [traffic_of(ks) for ks in kss[:nc]], list(m[:nc]))
            hp = [probe.a * r + probe.b + probe.traffic_ms(ks)
                  for r, ks in zip(raw[nc:], kss[nc:], strict=True)]
            e = error_stats(hp, list(m[nc:]), model)
            print(f"  designs {model}: held-out {100 * e['within_10pct']:.0f} % within ±10 %, Spearman "
                  f"{e['spearman']:.3f}, MdAPE {e['mdape_pct']:.1f} %, mean {e['mean_pct']:+.1f} %; "
                  f"time from unmeasured kernels {100 * np.median(share[nc:]):.0f} % (median)", flush=True)
        print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
