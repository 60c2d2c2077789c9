"""Residual forests for kernels a sweep never timed (nasl.latency.residual, Predictor)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from nasl.families import preset
from nasl.latency.kernels import Kernel
from nasl.latency.predictor import UNMEASURED, Predictor
from nasl.latency.residual import ResidualForests, structure


def _conv(c: int, side: int) -> Kernel:
    """A 3x3 convolution, ``c`` channels in and out, on a ``side`` x ``side`` map."""
    macs, act, params = 9 * c * c * side * side, c * side * side, 9 * c * c
    return Kernel("conv3x3_g1_s1", f"conv3x3_g1_s1|{c}|{side}", ("n",), ((1, c, side, side),),
                  (float(macs), float(act), float(act), float(params)))


def _ms(k: Kernel) -> float:
    """Time proportional to MACs, three times slower on maps of side 4 or less (a step the
    power law in the counts cannot express: small maps use the vector units badly)."""
    side = k.inputs[0][-1]
    return 1e-6 * k.features[0] * (3.0 if side <= 4 else 1.0)


def _split() -> tuple[list[Kernel], list[Kernel]]:
    rng = np.random.default_rng(0)
    ks = [_conv(int(c), s) for c in range(8, 257, 6) for s in (2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16)]
    order = rng.permutation(len(ks))
    cut = int(0.8 * len(ks))
    return [ks[i] for i in order[:cut]], [ks[i] for i in order[cut:]]


def _median_error(pred: Predictor, ks: list[Kernel]) -> float:
    got = np.array(pred.kernel_times(ks))
    true = np.array([_ms(k) for k in ks])
    return float(np.median(np.abs(got / true - 1)))


def test_the_forest_learns_what_the_power_law_misses_on_unmeasured_kernels() -> None:
    train, test = _split()
    pred = Predictor.fit_kernels({}, "f", "s", [(k, _ms(k)) for k in train])
    assert pred.unmeasured == UNMEASURED[1] and set(pred.rows) == {k.key for k in train}
    plain = dataclasses.replace(pred, unmeasured=UNMEASURED[0])
    assert plain.forests() is None
    with_forest, alone = _median_error(pred, test), _median_error(plain, test)
    assert alone > 0.15  # the power law alone is far off for one side of the step
    assert with_forest < 0.10 and with_forest < alone / 3
    # measured keys are still their measurement, whatever the model of the others
    assert pred.kernel_ms(train[0]) == _ms(train[0])


def test_batched_times_equal_one_by_one_and_survive_save_and_load(tmp_path: Path) -> None:
    train, test = _split()
    pred = Predictor.fit_kernels({"batch_size": 1}, "f", "s", [(k, _ms(k)) for k in train])
    batch = pred.kernel_times(test[:10] + train[:3])
    assert batch == [pred.kernel_ms(k) for k in test[:10] + train[:3]]
    back = Predictor.load(pred.save(tmp_path / "p.json"))
    assert back == pred  # rows and the model choice are stored; the forests are refitted
    assert back.kernel_times(test[:10]) == batch[:10]  # deterministic refit
    # a predictor stored before the forests (no rows, no choice) predicts with the power law
    old = json.loads((tmp_path / "p.json").read_text())
    del old["rows"], old["unmeasured"]
    legacy = Predictor.from_dict(old)
    assert legacy.forests() is None
    assert legacy.kernel_times(test[:5]) == dataclasses.replace(
        pred, unmeasured=UNMEASURED[0]).kernel_times(test[:5])


def test_a_real_design_is_predicted_with_batched_forest_factors() -> None:
    arch = preset("shufflenet_v1", input_size=64)
    probe = Predictor({"batch_size": 1}, "f", "s")
    ks = probe.design_kernels(arch)
    rng = np.random.default_rng(1)
    measured = [(k, 1e-7 * (k.features[0] + k.features[1]) * float(rng.uniform(0.8, 1.25)) + 1e-3)
                for k in ks[::2]]  # half the kernels timed
    pred = Predictor.fit_kernels({"batch_size": 1}, "f", "s", measured)
    forests = pred.forests()
    assert isinstance(forests, ResidualForests) and forests
    times = pred.kernel_times(ks)
    assert all(t > 0 and np.isfinite(t) for t in times)
    assert pred.raw_ms(ks) == sum(times)
    row = structure(ks[1].kind, ks[1].features, ks[1].inputs)
    assert len(row) == 12 and row[0] == np.log1p(ks[1].features[0])
