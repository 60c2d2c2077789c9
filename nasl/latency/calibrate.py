"""Calibrating a latency predictor on a space: measure kernels and a few designs, fit, check.

In: a :class:`~nasl.space.SearchSpace`, a :class:`~nasl.latency.measure.LatencyTarget` and
how many designs to measure. Out: a fitted :class:`~nasl.latency.predictor.Predictor` whose
``error`` holds its measured error (on held-out designs when ``holdout > 0``, else
leave-one-out on the calibration designs) and ``noise`` the machine noise seen while
measuring (a reference design re-timed every few designs: its spread, and the CPU/wall
ratio of every design timing).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

from nasl.common.vocab import KERNEL_DESIGNS
from nasl.latency.kernels import Kernel
from nasl.latency.measure import LatencyTarget, measure_design, measure_kernels
from nasl.latency.predictor import (
    UNMEASURED,
    Predictor,
    combine_sweeps,
    error_stats,
    loo_error,
    loo_stages,
    loo_traffic,
    traffic_of,
)
from nasl.network.arch import ArchConfig

MAX_DESIGNS = 20
REFERENCE_EVERY = 5

Progress = Callable[[str], None]


def sample_designs(space: Any, n: int, seed: int) -> list[tuple[dict[str, Any], ArchConfig]]:
    """``n`` distinct buildable designs (params, target ArchConfig) sampled with ``seed``."""
    from nasl.space import sample_params

    out: list[tuple[dict[str, Any], ArchConfig]] = []
    seen: set[str] = set()
    batch = 0
    while len(out) < n and batch < 20:
        for params in sample_params(space, 2 * n, seed + 1000 * batch):
            try:
                arch = space.to_arch(params)
            except ValueError:
                continue
            if arch.id not in seen and len(out) < n:
                seen.add(arch.id)
                out.append((params, arch))
        batch += 1
    return out


def _better(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Error ``a`` clearly beats ``b``: more designs within ±10 %, or as many and a median
    error at least 10 % lower (the simpler global calibration wins ties)."""
    return a["within_10pct"] > b["within_10pct"] or (
        a["within_10pct"] == b["within_10pct"] and a["mdape_pct"] < 0.9 * b["mdape_pct"])


def retest(rounds_ms: list[list[float]]) -> dict[str, Any]:
    """How far one round's timing of a design lies from the median of that design's other
    rounds (designs timed in ≥ 2 rounds): the share within ±10 % (``retest_within_10pct``)
    and the median absolute % deviation. The machine's agreement with itself: a predictor
    judged against these timings cannot be shown to be better than this floor. Empty when
    no design has two rounds."""
    dev = [abs(x / statistics.median(v[:i] + v[i + 1:]) - 1.0)
           for v in rounds_ms if len(v) >= 2 for i, x in enumerate(v)]
    if not dev:
        return {}
    return {"retest_within_10pct": round(sum(d <= 0.10 for d in dev) / len(dev), 3),
            "retest_mdape_pct": round(100 * statistics.median(dev), 2)}


def interleaved(n_calib: int, n_held: int) -> list[int]:
    """The order whole designs are timed in each round: calibration designs ``0..n_calib-1``
    and held-out ``n_calib..`` interleaved evenly (a drift of the machine's speed then touches
    both sets alike). The reference design is re-timed before every ``REFERENCE_EVERY``-th."""
    return sorted(range(n_calib + n_held), key=lambda j: (j + 0.5) / n_calib if j < n_calib
                  else (j - n_calib + 0.5) / n_held)


def _noise(ref: list[float], ratios: list[float]) -> dict[str, Any]:
    cv = statistics.stdev(ref) / statistics.fmean(ref) if len(ref) > 1 else None
    return {"reference_ms": [round(r, 4) for r in ref],
            "reference_cv_pct": None if cv is None else round(100 * cv, 2),
            "reference_range_pct": round(100 * (max(ref) - min(ref)) / min(ref), 2) if ref else None,
            "cpu_ratio_median": round(statistics.median(ratios), 3) if ratios else None,
            "cpu_ratio_min": round(min(ratios), 3) if ratios else None}


def calibrate(space: Any, target: LatencyTarget, *, designs: int = MAX_DESIGNS,
              kernel_designs: int = KERNEL_DESIGNS, holdout: int = 0, seed: int = 0, repeats: int = 20,
              rounds: int = 1, kernel_rounds: int = 1,
              progress: Progress | None = None) -> tuple[Predictor, dict[str, Any]]:
    """Measure and fit → (predictor, details).

    ``designs`` (≤ 20) whole designs are measured and fix the calibration ``a·sum + b``;
    the kernels of those and of ``kernel_designs`` more sampled designs are measured at
    their exact shapes (the space's blocks; no whole-design timing); ``holdout`` further
    designs are measured only to report the error. Every whole design is timed in ``rounds``
    round-robin rounds of ``repeats`` runs (its median over rounds); with ``kernel_rounds``
    > 1 the whole kernel sweep is repeated that many times and each kernel keeps the median
    (:func:`~nasl.latency.predictor.combine_sweeps`: one timing of a kernel is one burst of
    repeats, and a slow moment there errs every design containing it). ``details`` has
    per-design rows (``set``, ``arch_id``, ``macs``, ``measured_ms``, ``rounds_ms``,
    ``predicted_ms``, ``cpu_ratio``), timings and counts. ``ValueError`` for bad counts.
    """
    if not 2 <= designs <= MAX_DESIGNS or kernel_designs < 0 or holdout < 0 or repeats < 1 \
            or rounds < 1 or kernel_rounds < 1:
        raise ValueError(f"need 2 <= designs <= {MAX_DESIGNS}, kernel_designs >= 0, holdout >= 0, "
                         f"repeats >= 1, rounds >= 1, kernel_rounds >= 1; got {designs}, "
                         f"{kernel_designs}, {holdout}, {repeats}, {rounds}, {kernel_rounds}")
    say = progress or (lambda _msg: None)
    target = target.resolved()
    t0 = time.perf_counter()
    sampled = sample_designs(space, designs + kernel_designs + holdout, seed)
    calib = sampled[:designs]
    extra = sampled[designs:designs + kernel_designs]
    held = sampled[designs + kernel_designs:]
    sweeps: list[dict[str, float]] = []
    seen: dict[str, Kernel] = {}
    for r in range(kernel_rounds):
        sweeps.append({})
        for i, (_, arch) in enumerate(calib + extra):
            for k in measure_kernels(arch, target, sweeps[-1]):
                seen.setdefault(k.key, k)
            say(f"kernels of design {i + 1}/{len(calib) + len(extra)}"
                + (f" (sweep {r + 1}/{kernel_rounds})" if kernel_rounds > 1 else "")
                + f": {len(sweeps[-1])} distinct measured")
    known = combine_sweeps(sweeps)
    t_kernels = time.perf_counter() - t0
    pred = Predictor.fit_kernels(target.facts(), target.fingerprint(), space.name,
                                 [(k, known[key]) for key, k in seen.items()])
    ref_arch = calib[0][1]
    ref: list[float] = []
    ratios: list[float] = []
    rows: list[dict[str, Any]] = []

    def time_designs(archs: list[tuple[ArchConfig, str]]) -> list[float]:
        """Each (design, set)'s median latency; with ``rounds`` > 1 every design is timed
        once per round (round-robin over all of them) and the median over rounds is kept, so
        a slow minute of a shared machine touches one round of several designs instead of
        all of one design's timing; calibration and held-out designs are interleaved, so a
        drift of the machine's speed cannot pass for a prediction error. The reference design
        is re-timed before every ``REFERENCE_EVERY``-th timing."""
        per: list[list[float]] = [[] for _ in archs]
        cpu: list[list[float]] = [[] for _ in archs]
        for r in range(rounds):
            for i, (arch, which) in enumerate(archs):
                if i % REFERENCE_EVERY == 0:
                    ref.append(measure_design(ref_arch, target, repeats=repeats).median_ms)
                lat = measure_design(arch, target, repeats=repeats)
                if lat.cpu_ratio is not None:
                    ratios.append(lat.cpu_ratio)
                    cpu[i].append(lat.cpu_ratio)
                per[i].append(lat.median_ms)
                say(f"{which} design {i + 1}/{len(archs)}"
                    + (f" (round {r + 1}/{rounds})" if rounds > 1 else "") + f": {lat.median_ms:.3f} ms")
        out = [statistics.median(v) for v in per]
        for (arch, which), ms, v, c in zip(archs, out, per, cpu, strict=True):
            rows.append({"set": which, "arch_id": arch.id, "macs": arch.macs(), "measured_ms": ms,
                         "rounds_ms": [round(x, 4) for x in v],
                         "cpu_ratio": statistics.median(c) if c else None})
        return out

    both = [(a, "calibration") for _, a in calib] + [(a, "held-out") for _, a in held]
    spread = interleaved(len(calib), len(held))
    timed = dict(zip(spread, time_designs([both[j] for j in spread]), strict=True))
    rows.sort(key=lambda row: row["set"] != "calibration")  # calibration rows first, in order
    measured, hm = [timed[j] for j in range(len(calib))], [timed[j] for j in range(len(calib), len(both))]
    cks = [pred.design_kernels(a) for _, a in calib]
    raw = [pred.raw_ms(ks) for ks in cks]
    pred.calibrate(raw, measured)
    loo = loo_global = loo_error(pred, raw, measured)
    sums = [pred.stage_ms(ks, a.input_size) for ks, (_, a) in zip(cks, calib, strict=True)]
    traffic = [traffic_of(ks) for ks in cks]
    loo_staged = loo_stages(pred, raw, sums, measured) if len(calib) >= 5 else None
    loo_mem = loo_traffic(pred, raw, traffic, measured) if len(calib) >= 6 else None
    # The memory-traffic term is the default (better or equal on held-out designs in 7 of 8
    # runs × spaces × clocks measured, docs/benchmarks.md 2026-12-07); per-stage replaces it
    # only when clearly better in leave-one-out.
    correction = "global"
    if loo_mem is not None:
        correction, loo = "memory traffic", loo_mem
    if loo_staged is not None and _better(loo_staged, loo):
        correction, loo = "per-stage", loo_staged
    if correction == "per-stage":
        pred.fit_stages(sums, measured)
    elif correction == "memory traffic":
        pred.fit_traffic(raw, traffic, measured)
        correction = "memory traffic" if pred.traffic else "global"  # both terms dropped
    for row, ks, (_, a) in zip(rows[:len(calib)], cks, calib, strict=True):
        row["predicted_ms"] = pred.predict_kernels(ks, a.input_size)
    pred.error = loo
    held_error = held_power_law = None
    if held:
        hp = [pred.predict(a) for _, a in held]
        for row, p in zip(rows[len(calib):], hp, strict=True):
            row["predicted_ms"] = p
        held_error = error_stats(hp, hm, f"{len(held)} held-out measured designs")
        held_error.update(retest([r["rounds_ms"] for r in rows[len(calib):]]))
        pred.error = held_error
        if pred.forests():  # the same designs and timings with the power law alone (paired)
            plain = dataclasses.replace(pred, unmeasured=UNMEASURED[0])
            held_power_law = error_stats([plain.predict(a) for _, a in held], hm,
                                         f"{len(held)} held-out designs, unmeasured kernels by "
                                         "the power law alone")
    ref.append(measure_design(ref_arch, target, repeats=repeats).median_ms)
    pred.noise = _noise(ref, ratios)
    details = {"rows": rows, "loo": loo, "held_out": held_error, "kernels": len(known),
               "unmeasured": pred.unmeasured, "held_out_power_law": held_power_law,
               "correction": correction,
               "loo_global": loo_global, "loo_per_stage": loo_staged, "loo_traffic": loo_mem,
               "designs": len(calib), "kernel_designs": len(extra), "holdout": len(held),
               "rounds": rounds, "kernel_rounds": kernel_rounds, "repeats": repeats,
               "seconds": {"kernels": round(t_kernels, 1),
                           "total": round(time.perf_counter() - t0, 1)}}
    return pred, details
