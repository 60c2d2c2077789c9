"""A calibrated latency model per target: kernel lookup + per-kind regression + calibration.

In: measured kernels (kind, exact key, features, ms) and a few measured designs. Out: a
:class:`Predictor` that predicts a design's latency without running it:

1. the design is cut into fusion-aware kernels (:mod:`nasl.latency.kernels`) on the meta
   device (no weights, milliseconds);
2. each kernel's time is its measured median when its exact key was measured, else a
   per-kind power law ``log ms = c0 + c1·log MACs + c2·log in + c3·log out + c4·log
   params`` (least squares in log space on that kind's measured kernels; kinds with few
   samples fall back to all convolutions / all other kernels), multiplied by a random
   forest's correction of the power law's residuals (:mod:`nasl.latency.residual`; the
   measured kernels' structure rows are stored, the forests refitted on first use);
3. the sum goes through a calibration fitted on the measured designs: by default (6 or
   more designs) ``a·sum + w·weights + x·activations + b`` (millions of weights and of
   output activations of the design's kernels; framework overhead, and the memory traffic
   that kernels timed alone, over and over from a warm cache, do not pay while the whole
   network streams every layer's weights and activations once per inference); a term whose
   coefficient comes out negative is dropped (down to ``a·sum + b``). When leave-one-out
   on the calibration designs says it is clearly better, a per-stage correction
   ``Σ a_s·sum_s + b`` instead (the kernels summed per downsampling level, each scale
   pulled towards ``a``: kernels of one resolution share their cache and overhead
   behaviour).

Its error is measured on held-out designs (or leave-one-out on the calibration designs)
and gives :attr:`Predictor.margin`, which :func:`screen` uses.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nasl.latency.kernels import Kernel
from nasl.latency.residual import ResidualForests, family, kind_of, structure
from nasl.network.arch import ArchConfig

MIN_SAMPLES = 8
DEFAULT_MARGIN = 0.25  # used when a predictor has no measured error
MIN_MARGIN = 0.05
FORMAT = 1
TRAFFIC = ("ms_per_m_weights", "ms_per_m_activations")
#: Models of a kernel whose exact key was not measured (the second: the default since 2026-12-07)
UNMEASURED = ("power law", "power law + forest residual")


def _logs(f: Sequence[float]) -> list[float]:
    return [1.0, *(math.log1p(v) for v in f)]


def _fit_loglog(rows: Sequence[tuple[Sequence[float], float]], ridge: float = 1e-3) -> list[float]:
    """``[c0, c1..c4]`` of ``log ms = c0 + Σ ci·log(1 + fi)`` (least squares in log space,
    i.e. relative error, with a small ridge so that constant features stay harmless)."""
    x = np.array([_logs(f) for f, _ in rows], dtype=float)
    y = np.log(np.maximum(np.array([ms for _, ms in rows], dtype=float), 1e-6))
    reg = ridge * len(rows) * np.eye(x.shape[1])
    reg[0, 0] = 0.0
    coef = np.linalg.solve(x.T @ x + reg, x.T @ y)
    return [float(c) for c in coef]


@dataclass
class Predictor:
    """A fitted latency model for one target (see the module docstring).

    ``target``: the facts of :meth:`LatencyTarget.facts`; ``fingerprint``: its hash;
    ``lookup``: kernel key → measured ms; ``models``: kind (or ``*conv``/``*misc``/``*``) →
    coefficients; ``a``, ``b``: calibration; ``error``: measured error statistics (share
    within ±10 %, Spearman, median abs % error, p95 abs % error, n, how measured).
    """

    target: dict[str, Any]
    fingerprint: str
    space: str
    lookup: dict[str, float] = field(default_factory=dict)
    models: dict[str, list[float]] = field(default_factory=dict)
    a: float = 1.0
    b: float = 0.0
    error: dict[str, Any] = field(default_factory=dict)
    noise: dict[str, Any] = field(default_factory=dict)
    # per-stage correction (empty: none): downsampling level → scale, and its intercept
    stage_a: dict[str, float] = field(default_factory=dict)
    stage_b: float = 0.0
    # memory-traffic correction (empty: none): ms per million weights / activations
    traffic: dict[str, float] = field(default_factory=dict)
    # measured key → its structure row (:func:`nasl.latency.residual.structure`): what the
    # residual forests of unmeasured kernels are fitted on (empty: power law alone)
    rows: dict[str, list[float]] = field(default_factory=dict)
    unmeasured: str = UNMEASURED[0]  # the model of unmeasured kernels (:data:`UNMEASURED`)

    # -- fitting -----------------------------------------------------------------------
    @classmethod
    def fit_kernels(cls, target: dict[str, Any], fingerprint: str, space: str,
                    samples: Iterable[tuple[Kernel, float]]) -> Predictor:
        """Lookup table and per-kind models from measured (kernel, ms) pairs (a=1, b=0)."""
        by_key: dict[str, tuple[Kernel, float]] = {k.key: (k, ms) for k, ms in samples}
        groups: dict[str, list[tuple[Sequence[float], float]]] = {"*": []}
        for k, ms in by_key.values():
            for name in (k.kind, "*" + family(k.kind), "*"):
                groups.setdefault(name, []).append((k.features, ms))
        models = {name: _fit_loglog(rows) for name, rows in groups.items()
                  if len(rows) >= MIN_SAMPLES or name == "*" and rows}
        kernel_rows = {key: [round(v, 5) for v in structure(k.kind, k.features, k.inputs)]
                       for key, (k, _) in by_key.items()}
        return cls(target, fingerprint, space, {k: ms for k, (_, ms) in by_key.items()}, models,
                   rows=kernel_rows, unmeasured=UNMEASURED[1])

    def power_law_ms(self, kind: str, features: Sequence[float]) -> float:
        """The power law's ms for a kernel of ``kind`` with ``features`` (:data:`FEATURES`)."""
        for name in (kind, "*" + family(kind), "*"):
            if name in self.models:
                c = self.models[name]
                return math.exp(sum(ci * li for ci, li in zip(c, _logs(features), strict=True)))
        raise ValueError("the predictor has no kernel model; calibrate it first")

    def kernel_ms(self, k: Kernel) -> float:
        """Measured ms of ``k`` if its exact key was measured, else its model's."""
        return self.kernel_times([k])[0]

    def kernel_times(self, ks: Sequence[Kernel]) -> list[float]:
        """Each kernel's ms: measured when its exact key was, else the power law times the
        residual forests' factor (one batched forest prediction per group)."""
        out = [self.lookup.get(k.key) for k in ks]
        todo = [i for i, v in enumerate(out) if v is None]
        for i in todo:
            out[i] = self.power_law_ms(ks[i].kind, ks[i].features)
        forests = self.forests() if todo else None
        if forests:
            f = forests.factors([ks[i].kind for i in todo],
                                [structure(ks[i].kind, ks[i].features, ks[i].inputs) for i in todo])
            for i, x in zip(todo, f, strict=True):
                out[i] = float(out[i]) * x  # type: ignore[arg-type]
        return [float(v) for v in out]  # type: ignore[arg-type]

    def forests(self) -> ResidualForests | None:
        """The residual forests of unmeasured kernels (built once; None: power law alone)."""
        if self.unmeasured != UNMEASURED[1] or not self.rows:
            return None
        cached = self.__dict__.get("_forests")
        if cached is None:
            res = {key: math.log(max(self.lookup[key], 1e-6)
                                 / self.power_law_ms(kind_of(key), [math.expm1(v) for v in row[:4]]))
                   for key, row in self.rows.items() if key in self.lookup}
            cached = self.__dict__["_forests"] = ResidualForests(
                {k: self.rows[k] for k in res}, res)
        return cached

    def raw_ms(self, ks: Sequence[Kernel]) -> float:
        """Sum of the kernels' times (before calibration)."""
        return sum(self.kernel_times(ks))

    def calibrate(self, raw: Sequence[float], measured: Sequence[float]) -> None:
        """Fit ``a·raw + b`` to relative error on measured designs (a > 0; b = 0 if < 3)."""
        r, m = np.asarray(raw, float), np.asarray(measured, float)
        w = 1.0 / m
        if len(r) >= 3:
            (a, b), *_ = np.linalg.lstsq(np.stack([r * w, w], 1), np.ones_like(m), rcond=None)
        else:
            a, b = float(np.sum(r * w) / np.sum((r * w) ** 2)) if len(r) else 1.0, 0.0
        if a <= 0:  # degenerate: keep a pure scale
            a, b = float(np.sum(r * w) / np.sum((r * w) ** 2)), 0.0
        self.a, self.b = float(a), float(b)

    # -- predicting --------------------------------------------------------------------
    def design_kernels(self, arch: ArchConfig) -> list[Kernel]:
        """The kernels of ``arch`` at the target's batch, traced on the meta device."""
        import torch

        from nasl.latency.kernels import channels_last_run, kernels
        from nasl.network.builder import build_model

        with torch.device("meta"):
            model = build_model(arch, seed=None)
        shape = (int(self.target.get("batch_size", 1)), arch.in_channels, arch.input_size,
                 arch.input_size)
        return kernels(model, shape, channels_last=channels_last_run(self.target))[1]

    def stage_ms(self, ks: Sequence[Kernel], input_size: int) -> dict[str, float]:
        """The kernels' times summed per stage (:func:`stage_of`), before calibration."""
        out: dict[str, float] = {}
        for k, ms in zip(ks, self.kernel_times(ks), strict=True):
            st = str(stage_of(k, input_size))
            out[st] = out.get(st, 0.0) + ms
        return out

    def fit_stages(self, sums: Sequence[Mapping[str, float]], measured: Sequence[float], *,
                   ridge: float = 0.3) -> None:
        """Per-stage correction ``Σ a_s·sum_s + b`` fitted to relative error on measured
        designs, each ``a_s`` pulled towards the global ``a`` (the pull weighs ``ridge`` ×
        the mean information of a stage's column; call :meth:`calibrate` first). Stages
        never seen here keep ``a`` when predicting."""
        stages = sorted({st for d in sums for st in d}, key=int)
        m = np.asarray(measured, float)
        x = np.array([[d.get(st, 0.0) for st in stages] + [1.0] for d in sums], float) / m[:, None]
        y = np.ones(len(m))
        lam = math.sqrt(ridge * float(np.mean(np.sum(x[:, :-1] ** 2, axis=0))))
        prior = np.hstack([lam * np.eye(len(stages)), np.zeros((len(stages), 1))])
        coef, *_ = np.linalg.lstsq(np.vstack([x, prior]),
                                   np.concatenate([y, np.full(len(stages), lam * self.a)]), rcond=None)
        self.stage_a = {st: float(c) for st, c in zip(stages, coef[:-1], strict=True)}
        self.stage_b = float(coef[-1])

    def fit_traffic(self, raw: Sequence[float], traffic: Sequence[tuple[float, float]],
                    measured: Sequence[float]) -> None:
        """``a·raw + w·weights + x·activations + b`` fitted to relative error on measured
        designs (``traffic``: :func:`traffic_of` per design). A term whose coefficient comes
        out negative (no physical meaning) is dropped and the rest refitted; with none left,
        or a scale ``a`` ≤ 0, it is the global :meth:`calibrate`."""
        r, m = np.asarray(raw, float), np.asarray(measured, float)
        t = np.asarray(traffic, float).reshape(len(m), 2)
        terms = [0, 1]
        while terms:
            x = np.column_stack([r, *(t[:, j] for j in terms), np.ones_like(m)]) / m[:, None]
            coef, *_ = np.linalg.lstsq(x, np.ones_like(m), rcond=None)
            neg = [j for j, c in zip(terms, coef[1:-1], strict=True) if c < 0]
            if not neg and coef[0] > 0:
                self.a, self.b = float(coef[0]), float(coef[-1])
                self.traffic = {TRAFFIC[j]: float(c) for j, c in zip(terms, coef[1:-1], strict=True)}
                return
            terms.remove(neg[0] if neg else terms[-1])
        self.calibrate(raw, measured)
        self.traffic = {}

    def traffic_ms(self, ks: Sequence[Kernel]) -> float:
        """The memory-traffic term of a design's kernels (0 without that correction)."""
        return self.traffic_term(*traffic_of(ks)) if self.traffic else 0.0

    def traffic_term(self, weights_m: float, activations_m: float) -> float:
        """ms of the memory-traffic term for millions of weights and of activations."""
        return (self.traffic.get(TRAFFIC[0], 0.0) * weights_m
                + self.traffic.get(TRAFFIC[1], 0.0) * activations_m)

    def predict_kernels(self, ks: Sequence[Kernel], input_size: int) -> float:
        """Predicted ms of a design from its kernels (:meth:`design_kernels`)."""
        if self.stage_a:
            return self.corrected_ms(self.stage_ms(ks, input_size))
        return self.a * self.raw_ms(ks) + self.b + self.traffic_ms(ks)

    def corrected_ms(self, sums: Mapping[str, float]) -> float:
        """The per-stage corrected prediction from per-stage sums (global ``a``, ``b`` when
        there is no correction)."""
        if not self.stage_a:
            return self.a * sum(sums.values()) + self.b
        return sum(self.stage_a.get(st, self.a) * v for st, v in sums.items()) + self.stage_b

    def predict(self, arch: ArchConfig) -> float:
        """Predicted median latency of ``arch`` in ms on this predictor's target."""
        return self.predict_kernels(self.design_kernels(arch), arch.input_size)

    @property
    def margin(self) -> float:
        """Relative margin for screening: the 95th percentile of the measured absolute
        relative error (at least 5 %), or 25 % when the error was never measured."""
        p95 = self.error.get("p95_abs_pct")
        return DEFAULT_MARGIN if p95 is None else max(MIN_MARGIN, float(p95) / 100)

    # -- storing -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Predictor:
        if d.get("format") != FORMAT:
            raise ValueError(f"latency predictor format {d.get('format')!r}, expected {FORMAT}")
        keys = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in keys})

    def save(self, path: Path | str) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        tmp.replace(p)
        return p

    @classmethod
    def load(cls, path: Path | str) -> Predictor:
        return cls.from_dict(json.loads(Path(path).read_text()))


def traffic_of(ks: Sequence[Kernel]) -> tuple[float, float]:
    """(millions of weights, millions of output activations) of a design's kernels."""
    return (sum(k.features[3] for k in ks) / 1e6, sum(k.features[2] for k in ks) / 1e6)


def loo_traffic(pred: Predictor, raw: Sequence[float], traffic: Sequence[tuple[float, float]],
                measured: Sequence[float]) -> dict[str, Any]:
    """Leave-one-out error of the memory-traffic correction on the calibration designs."""
    def fit(probe: Predictor, keep: list[int], i: int) -> float:
        probe.fit_traffic([raw[j] for j in keep], [traffic[j] for j in keep],
                          [measured[j] for j in keep])
        return probe.a * raw[i] + probe.b + probe.traffic_term(*traffic[i])

    return _leave_one_out(pred, measured, fit, " (memory traffic)")


def combine_sweeps(sweeps: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """One kernel lookup (key → ms) from several sweeps of the same kernels: each sweep after
    the first is rescaled to the first by the median ratio over their shared keys (a sweep
    run while the whole machine was a few per cent faster or slower), then every key keeps
    the median of its timings (a key timed in one sweep only keeps that timing).

    A kernel timed once is one burst of repeats, so a slow moment of a shared machine makes
    it an outlier that every design containing it inherits; sweeps taken minutes apart and
    their median drop such outliers (docs/benchmarks.md, "Kernel-sweep noise"). With two
    sweeps the median is their mean; use three or more."""
    if not sweeps:
        return {}
    first = sweeps[0]
    scaled: list[Mapping[str, float]] = [first]
    for sweep in sweeps[1:]:
        ratios = [first[k] / v for k, v in sweep.items() if k in first and v > 0]
        f = float(np.median(ratios)) if ratios else 1.0
        scaled.append({k: v * f for k, v in sweep.items()})
    keys = dict.fromkeys(k for s in scaled for k in s)
    return {k: float(np.median([s[k] for s in scaled if k in s])) for k in keys}


def stage_of(k: Kernel, input_size: int) -> int:
    """A kernel's stage: its downsampling level ``round(log2(input side / its input's
    side))`` (0: at the input's resolution), or -1 for a kernel without a spatial input."""
    shape = k.inputs[0] if k.inputs else ()
    if len(shape) != 4 or shape[-1] < 1:
        return -1
    return max(0, round(math.log2(input_size / shape[-1])))


def loo_stages(pred: Predictor, raw: Sequence[float], sums: Sequence[Mapping[str, float]],
               measured: Sequence[float], ridge: float = 0.3) -> dict[str, Any]:
    """Leave-one-out error of the per-stage correction on the calibration designs."""
    def fit(probe: Predictor, keep: list[int], i: int) -> float:
        probe.calibrate([raw[j] for j in keep], [measured[j] for j in keep])
        probe.fit_stages([sums[j] for j in keep], [measured[j] for j in keep], ridge=ridge)
        return probe.corrected_ms(sums[i])

    return _leave_one_out(pred, measured, fit, " (per-stage)")


def _leave_one_out(pred: Predictor, measured: Sequence[float],
                   fit: Callable[[Predictor, list[int], int], float], label: str) -> dict[str, Any]:
    """Error statistics of ``fit(fresh predictor, the other designs, i)`` → the prediction
    for design ``i``, over every calibration design left out in turn."""
    out = []
    for i in range(len(measured)):
        probe = Predictor(pred.target, pred.fingerprint, pred.space)
        out.append(fit(probe, [j for j in range(len(measured)) if j != i], i))
    return error_stats(out, measured, "leave-one-out on the calibration designs" + label)


def cache_dir() -> Path:
    """``$NASL_CACHE_DIR/latency`` or ``~/.cache/nasl/latency``."""
    root = os.environ.get("NASL_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "nasl") / "latency"


def default_path(space: str, fingerprint: str) -> Path:
    """Where the predictor of ``space`` on the target ``fingerprint`` is stored."""
    return cache_dir() / f"{space}-{fingerprint}.json"


def error_stats(predicted: Sequence[float], measured: Sequence[float], how: str) -> dict[str, Any]:
    """Share within ±10 %, Spearman, median and p95 absolute % error, mean signed % error."""
    from scipy.stats import spearmanr

    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    rel = (p - m) / m
    rho = float(spearmanr(p, m).statistic) if len(p) > 2 else math.nan
    return {"n": len(p), "how": how, "within_10pct": float(np.mean(np.abs(rel) <= 0.10)),
            "spearman": rho, "mdape_pct": float(100 * np.median(np.abs(rel))),
            "p95_abs_pct": float(100 * np.percentile(np.abs(rel), 95)),
            "mean_pct": float(100 * np.mean(rel))}


def loo_error(pred: Predictor, raw: Sequence[float], measured: Sequence[float]) -> dict[str, Any]:
    """Leave-one-out error of the calibration on the calibration designs (a, b refitted)."""
    def fit(probe: Predictor, keep: list[int], i: int) -> float:
        probe.calibrate([raw[j] for j in keep], [measured[j] for j in keep])
        return probe.a * raw[i] + probe.b

    return _leave_one_out(pred, measured, fit, "")


def screen(predictor: Predictor, arch: ArchConfig, budget_ms: float) -> tuple[float, bool]:
    """(predicted ms, clearly over budget) for a latency budget.

    Clearly over: the prediction exceeds ``budget_ms × (1 + margin)``, where the margin is
    the predictor's measured 95th-percentile error (:attr:`Predictor.margin`). Such a
    design need not be measured or trained; anything else must still be measured.
    """
    ms = predictor.predict(arch)
    return ms, ms > budget_ms * (1.0 + predictor.margin)
