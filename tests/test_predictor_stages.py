"""The per-stage correction of the latency predictor (kernels summed per downsampling level,
each scale fitted towards the global one): correctness only, no timing."""

from __future__ import annotations

import random

import pytest

from nasl.families import preset
from nasl.latency.kernels import Kernel
from nasl.latency.predictor import (
    Predictor,
    error_stats,
    loo_error,
    loo_stages,
    loo_traffic,
    stage_of,
    traffic_of,
)


def _designs(n: int, seed: int = 0) -> list[dict[str, float]]:
    rng = random.Random(seed)
    return [{"0": rng.uniform(0.5, 3), "1": rng.uniform(0.5, 3), "2": rng.uniform(0.1, 1)}
            for _ in range(n)]


def test_stage_scales_are_recovered_where_one_scale_misses():
    sums = _designs(20)
    measured = [2.0 * d["0"] + 0.5 * d["1"] + 1.0 * d["2"] + 0.1 for d in sums]
    raw = [sum(d.values()) for d in sums]
    pred = Predictor({}, "f", "s")
    pred.calibrate(raw, measured)
    global_err = error_stats([pred.a * r + pred.b for r in raw], measured, "global")
    pred.fit_stages(sums, measured, ridge=1e-6)
    assert pred.stage_a == {"0": pytest.approx(2.0, rel=1e-3), "1": pytest.approx(0.5, rel=1e-3),
                            "2": pytest.approx(1.0, rel=1e-2)}
    staged = error_stats([pred.corrected_ms(d) for d in sums], measured, "per-stage")
    assert staged["mdape_pct"] < 0.1 < global_err["mdape_pct"]
    assert loo_stages(pred, raw, sums, measured, ridge=1e-6)["within_10pct"] == 1.0
    staged, plain = loo_stages(pred, raw, sums, measured), loo_error(pred, raw, measured)
    assert staged["mdape_pct"] < plain["mdape_pct"] and plain["within_10pct"] < 1.0


def test_one_true_scale_gives_the_global_fit_and_unseen_stages_keep_it():
    sums = _designs(12, seed=1)
    measured = [1.5 * sum(d.values()) + 0.2 for d in sums]
    pred = Predictor({}, "f", "s")
    pred.calibrate([sum(d.values()) for d in sums], measured)
    pred.fit_stages(sums, measured)  # the default ridge
    assert all(a == pytest.approx(1.5, rel=1e-3) for a in pred.stage_a.values())
    assert pred.stage_b == pytest.approx(0.2, rel=1e-2)
    assert pred.corrected_ms({"7": 2.0}) == pytest.approx(pred.a * 2.0 + pred.stage_b)


def test_stages_of_a_real_network_and_the_corrected_prediction(tmp_path):
    arch = preset("shufflenet_v1", input_size=64)
    law = [(Kernel("*", str(i), (), ((1, 1, 1, 1),), (1.0, 1.0, 1.0, 1.0)), 0.01) for i in range(8)]
    pred = Predictor.fit_kernels({"batch_size": 1}, "f", "s", law)
    ks = pred.design_kernels(arch)
    stages = {stage_of(k, arch.input_size) for k in ks}
    assert {0, 1, 2, 3, 4, 5} >= stages - {-1} and -1 in stages and len(stages) >= 5
    sums = pred.stage_ms(ks, arch.input_size)
    assert sum(sums.values()) == pytest.approx(pred.raw_ms(ks))
    plain = pred.predict(arch)
    pred.stage_a, pred.stage_b = {k: 2.0 for k in sums}, 0.0
    assert pred.predict(arch) == pytest.approx(2 * plain)  # a = 1, b = 0: twice the sum
    back = Predictor.load(pred.save(tmp_path / "p.json"))
    assert back.stage_a == pred.stage_a and back.predict(arch) == pytest.approx(2 * plain)
    old = {k: v for k, v in pred.to_dict().items() if k not in ("stage_a", "stage_b")}
    assert Predictor.from_dict(old).stage_a == {}  # files written before still load


def _k(macs: float, weights: float, acts: float) -> Kernel:
    return Kernel("conv1x1_g1", f"k{macs}|{weights}|{acts}", ("n",), ((1, 8, 4, 4),),
                  (macs, acts, acts, weights))


def test_memory_traffic_is_recovered_where_the_kernel_sum_misses():
    """Designs whose time has a part proportional to the weights and activations they stream
    (which warm kernel timings do not contain): the traffic correction recovers it."""
    rng = random.Random(3)
    designs = [[_k(rng.uniform(1e5, 1e6), rng.uniform(1e4, 5e5), rng.uniform(1e4, 2e5))
                for _ in range(rng.randint(3, 8))] for _ in range(20)]
    law = [(k, 1e-6 * k.features[0]) for ks in designs for k in ks]
    pred = Predictor.fit_kernels({}, "f", "s", law)
    raw = [pred.raw_ms(ks) for ks in designs]
    traffic = [traffic_of(ks) for ks in designs]
    measured = [1.2 * r + 0.8 * w + 0.3 * x + 0.05 for r, (w, x) in zip(raw, traffic, strict=True)]
    pred.calibrate(raw, measured)
    plain = error_stats([pred.a * r + pred.b for r in raw], measured, "global")
    pred.fit_traffic(raw, traffic, measured)
    assert pred.a == pytest.approx(1.2, rel=1e-3) and pred.b == pytest.approx(0.05, abs=1e-3)
    assert pred.traffic == {"ms_per_m_weights": pytest.approx(0.8, rel=1e-3),
                            "ms_per_m_activations": pytest.approx(0.3, rel=1e-2)}
    fitted = error_stats([pred.predict_kernels(ks, 4) for ks in designs], measured, "traffic")
    assert fitted["mdape_pct"] < 0.1 < plain["mdape_pct"]
    assert loo_traffic(pred, raw, traffic, measured)["within_10pct"] == 1.0
    # a negative term has no physical meaning: it is dropped, the rest refitted
    neg = [1.2 * r - 0.5 * w + 0.05 for r, (w, _) in zip(raw, traffic, strict=True)]
    pred.fit_traffic(raw, traffic, neg)
    assert all(c >= 0 for c in pred.traffic.values()) and "ms_per_m_weights" not in pred.traffic
    back = Predictor.from_dict(pred.to_dict())
    assert back.traffic == pred.traffic and back.predict_kernels(designs[0], 4) == \
        pytest.approx(pred.predict_kernels(designs[0], 4))
