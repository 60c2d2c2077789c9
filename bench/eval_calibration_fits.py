"""Ways to fit the memory-traffic calibration, compared offline on a stored run (no timing).

The default calibration ``a·sum + w·weights + x·activations + b`` (``Predictor.fit_traffic``)
is fitted to relative error (each design weighted by 1/measured², i.e. least squares on
``predicted/measured - 1``). This fits the same form with other losses: ordinary least
squares (big designs weigh most), 1/measured weights (half way), least squares in log
space, Huber and least absolute relative error (robust), and a per-kernel-kind scale
``Σ a_k·sum_k`` pulled towards the global ``a`` by a ridge chosen by leave-one-out
(``--per-kind``, slower). Negative traffic terms are dropped as ``fit_traffic`` does. Each
is fitted on the run's calibration designs and scored on its held-out ones, and fitted on
20 held-out designs and scored on the other 30 (200 random splits: mean, median, 10-90 %).

    python bench/eval_calibration_fits.py bench/results/latency_predictor_wall-2026-12-07e.json \\
        'bench/results/latency_predictor_wall-2026-12-07e_{space}_wall_predictor.json'
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable

import numpy as np

Loss = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _wls(x: np.ndarray, m: np.ndarray, weight: np.ndarray) -> np.ndarray:
    sw = np.sqrt(weight)
    return np.linalg.lstsq(x * sw[:, None], m * sw, rcond=None)[0]


def _rel(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    return _wls(x, m, 1 / m ** 2)


def _irls(x: np.ndarray, m: np.ndarray, weight: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    c = _rel(x, m)
    for _ in range(100):
        c = _wls(x, m, weight((x @ c - m) / m) / m ** 2)
    return c


def _huber(r: np.ndarray, k: float = 1.345) -> np.ndarray:
    u = np.abs(r) / (k * 1.4826 * np.median(np.abs(r - np.median(r))) + 1e-9)
    return np.where(u <= 1, 1.0, 1 / np.maximum(u, 1e-12))


def _log(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    c = _rel(x, m)
    for _ in range(30):  # Gauss-Newton on Σ log(p/m)²
        p = np.maximum(x @ c, 1e-6)
        c = c + np.linalg.lstsq(x / p[:, None], -np.log(p / m), rcond=None)[0]
    return c


LOSSES: dict[str, Loss] = {
    "relative (default)": _rel,
    "ordinary least squares": lambda x, m: _wls(x, m, np.ones_like(m)),
    "1/measured weights": lambda x, m: _wls(x, m, 1 / m),
    "log space": _log,
    "Huber on relative error": lambda x, m: _irls(x, m, _huber),
    "least absolute relative error": lambda x, m: _irls(x, m, lambda r: 1 / np.maximum(np.abs(r), 1e-4)),
}


def fit_predict(cols: np.ndarray, m: np.ndarray, fit: list[int], test: list[int], loss: Loss,
                scale_cols: int = 1, ridge: float | None = None) -> np.ndarray:
    """``cols``: per design [kernel sums (``scale_cols`` of them), weights, activations].
    Fit ``Σ a·sums + w·weights + x·activations + b`` with ``loss`` on ``fit``, dropping a
    negative traffic term; with ``ridge``, the per-column scales are pulled towards the
    global scale (fitted first on the summed kernels). Returns the predictions for ``test``."""
    terms = [scale_cols, scale_cols + 1]
    ones = np.ones((len(cols), 1))
    while True:
        x = np.hstack([cols[:, :scale_cols], cols[:, terms], ones])
        if ridge is None:
            c = loss(x[fit], m[fit])
        else:
            xs = np.column_stack([cols[:, :scale_cols].sum(1), cols[:, terms], ones[:, 0]])
            a = _rel(xs[fit], m[fit])[0]
            xf = x[fit] / m[fit, None]
            lam = np.sqrt(ridge * np.mean(np.sum(xf[:, :scale_cols] ** 2, 0)))
            prior = np.hstack([lam * np.eye(scale_cols), np.zeros((scale_cols, x.shape[1] - scale_cols))])
            c = np.linalg.lstsq(np.vstack([xf, prior]),
                                np.concatenate([np.ones(len(fit)), np.full(scale_cols, lam * a)]),
                                rcond=None)[0]
        neg = [t for t, v in zip(terms, c[scale_cols:-1], strict=True) if v < 0]
        if not neg:
            return x[test] @ c
        terms.remove(neg[0])


def _per_kind(cols: np.ndarray, m: np.ndarray, fit: list[int], test: list[int], k: int) -> np.ndarray:
    """Per-kind scales, the ridge chosen by leave-one-out on ``fit`` (most within ±10 %)."""
    best = None
    for lam in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0):
        p = np.array([fit_predict(cols, m, [j for j in fit if j != i], [i], _rel, k, lam)[0] for i in fit])
        rel = np.abs(p / m[fit] - 1)
        score = (float(np.mean(rel <= 0.1)), -float(np.median(rel)))
        if best is None or score > best[0]:
            best = (score, lam)
    assert best is not None
    return fit_predict(cols, m, fit, test, _rel, k, best[1])


def _report(name: str, per: np.ndarray, traffic: np.ndarray, m: np.ndarray, n_calib: int,
            per_kind: bool) -> None:
    """Print each method's held-out error and its swapped-split shares for one space."""
    from nasl.latency.predictor import error_stats

    summed = np.column_stack([per.sum(1), traffic])
    full = np.column_stack([per, traffic])
    cids, hids = list(range(n_calib)), list(range(n_calib, len(m)))
    rng = random.Random(0)
    splits = []
    for _ in range(200):
        ids = rng.sample(hids, 20)
        splits.append((ids, [i for i in hids if i not in ids]))
    methods: dict[str, Callable[[list[int], list[int]], np.ndarray]] = {
        how: (lambda fit, test, loss=loss: fit_predict(summed, m, fit, test, loss))
        for how, loss in LOSSES.items()}
    if per_kind:
        methods["per-kind scales, ridge by leave-one-out"] = (
            lambda fit, test: _per_kind(full, m, fit, test, per.shape[1]))
    for how, f in methods.items():
        e = error_stats(f(cids, hids), m[hids], how)
        shares = [error_stats(f(ids, rest), m[rest], how)["within_10pct"] for ids, rest in splits]
        q = statistics.quantiles(shares, n=10)
        print(f"{name} {how}: held-out {100 * e['within_10pct']:.0f} % within ±10 %, Spearman "
              f"{e['spearman']:.3f}, MdAPE {e['mdape_pct']:.1f} %; fitted on 20 held-out, scored "
              f"on 30 (200 splits): mean {100 * statistics.fmean(shares):.1f} %, median "
              f"{100 * statistics.median(shares):.0f} %, 10-90 % {100 * q[0]:.0f}-{100 * q[-1]:.0f} %",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    from stored_latency_run import load, parser

    from nasl.latency.predictor import traffic_of

    p = parser(__doc__)
    p.add_argument("--per-kind", action="store_true", help="also per-kind scales (slower)")
    a = p.parse_args(argv)
    for name in a.spaces:
        run = load(a, name)
        if run is None:
            continue
        pred, archs, measured = run.predictor, run.calib + run.held, run.measured
        kss = [pred.design_kernels(x) for x in archs]
        kinds = sorted({k.kind for ks in kss for k in ks})
        per = np.array([[sum(pred.kernel_ms(k) for k in ks if k.kind == kind) for kind in kinds]
                        for ks in kss])
        traffic = np.array([traffic_of(ks) for ks in kss])
        m = np.array([measured[x.id] for x in archs])
        _report(name, per, traffic, m, len(run.calib), a.per_kind)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
