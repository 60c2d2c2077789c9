"""Latency predictor: kernel decomposition, fitting, calibration, screening, storage, CLI."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest
import torch

from nasl.common.errors import NaslError
from nasl.families import preset
from nasl.latency import cli as lcli
from nasl.latency.calibrate import retest
from nasl.latency.kernels import Kernel, kernel_module, kernels
from nasl.latency.measure import LatencyTarget
from nasl.latency.predictor import (
    Predictor,
    cache_dir,
    combine_sweeps,
    default_path,
    error_stats,
    loo_error,
    screen,
)
from nasl.network.builder import build_model


@pytest.fixture(autouse=True)
def _dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASL_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("NASL_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", ["shufflenet_v1", "mobilenet_v1", "squeezenet1_1", "xception"])
def test_kernels_cover_the_network_and_fuse_conv_bn_relu(name: str) -> None:
    arch = preset(name, input_size=96) if name != "xception" else preset(name, input_size=99)
    with torch.device("meta"):
        model = build_model(arch, seed=None)
    _, ks = kernels(model, (1, 3, arch.input_size, arch.input_size))
    assert sum(k.features[0] for k in ks) == arch.macs()  # every conv/linear in exactly one kernel
    convs = [k for k in ks if k.kind.startswith(("conv", "dwconv"))]
    assert convs and all(len(k.nodes) <= 3 for k in convs)
    if name == "mobilenet_v1":  # conv + BN + ReLU each: 3 nodes
        assert all(len(k.nodes) == 3 for k in convs)
    if name == "shufflenet_v1":
        assert {"shuffle", "add", "concat"} <= {k.kind for k in ks}


def test_kernel_module_reproduces_the_slice() -> None:
    arch = preset("shufflenet_v1", input_size=64)
    model = build_model(arch, seed=0).eval()
    gm, ks = kernels(model, (1, 3, 64, 64))
    concat = next(k for k in ks if k.kind == "concat")
    xs = [torch.randn(s) for s in concat.inputs]
    out = kernel_module(gm, concat)(*xs)
    assert torch.equal(out, torch.relu(torch.cat(xs, 1)))


def _k(kind: str, macs: float, key: str | None = None) -> Kernel:
    return Kernel(kind, key or f"{kind}|{macs}", ("n",), ((1,),), (macs, macs / 10, macs / 10, 0.0))


def test_fit_recovers_a_power_law_and_lookup_wins() -> None:
    law = [(_k("conv1x1_g1", m), 1e-4 * m ** 0.8) for m in (1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 1e7, 3e7)]
    pred = Predictor.fit_kernels({}, "f", "s", law)
    unseen = _k("conv1x1_g1", 2e6)
    assert pred.kernel_ms(unseen) == pytest.approx(1e-4 * 2e6 ** 0.8, rel=0.02)
    assert pred.kernel_ms(law[0][0]) == law[0][1]  # measured key: the measurement itself
    assert pred.kernel_ms(_k("dwconv3x3_s1", 2e6)) == pytest.approx(pred.kernel_ms(unseen), rel=0.05)


def test_calibration_and_leave_one_out() -> None:
    pred = Predictor({}, "f", "s")
    raw = [1.0, 2.0, 3.0, 5.0, 8.0]
    pred.calibrate(raw, [2 * r + 0.5 for r in raw])
    assert (pred.a, pred.b) == (pytest.approx(2.0), pytest.approx(0.5))
    e = loo_error(pred, raw, [2 * r + 0.5 for r in raw])
    assert e["within_10pct"] == 1.0 and e["mdape_pct"] < 1e-6 and e["spearman"] == pytest.approx(1)
    e = error_stats([1.0, 2.0, 3.3], [1.0, 2.3, 3.0], "x")
    assert e["within_10pct"] == pytest.approx(2 / 3) and e["n"] == 3


def test_screen_uses_the_measured_margin() -> None:
    arch = preset("shufflenet_v1", input_size=64)
    law = [(_k("*", 1.0, key=str(i)), 1.0) for i in range(8)]
    pred = Predictor.fit_kernels({"batch_size": 1}, "f", "s", law)
    ms = pred.predict(arch)
    assert pred.margin == 0.25  # never measured: conservative default
    pred.error = {"p95_abs_pct": 8.0}
    assert pred.margin == pytest.approx(0.08)
    assert screen(pred, arch, ms / 1.07) == (pytest.approx(ms), False)  # inside the margin
    assert screen(pred, arch, ms / 1.2) == (pytest.approx(ms), True)
    pred.error = {"p95_abs_pct": 1.0}
    assert pred.margin == 0.05


def test_save_load_and_fingerprint(tmp_path: Path) -> None:
    assert cache_dir() == tmp_path / "cache" / "latency"
    t = LatencyTarget("cpu").resolved()
    assert t.fingerprint() != LatencyTarget("cpu", runtime="onnxruntime").resolved().fingerprint()
    assert t.fingerprint() != LatencyTarget("cpu", clock="cpu").resolved().fingerprint()
    pred = Predictor.fit_kernels(t.facts(), t.fingerprint(), "s", [(_k("x", 1e5 * i), i) for i in
                                                                  range(1, 10)])
    path = pred.save(default_path("s", t.fingerprint()))
    back = Predictor.load(path)
    assert back == pred and path.parent == tmp_path / "cache" / "latency"
    with pytest.raises(ValueError, match="clock"):
        LatencyTarget("cpu", threads=2, clock="cpu").resolved()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    lcli.add_parser(p.add_subparsers(dest="command"))
    return p


def test_cli_parser_and_predict_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["latency", "predict", "shufflenet", "--device", "cpu",
                                 "--set", "groups=3"])
    with pytest.raises(NaslError, match="no latency predictor .* run `nasl latency calibrate"):
        args.func(args)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    args = _parser().parse_args(["latency", "predict", "shufflenet", "--device", "cpu",
                                 "--predictor", str(bad)])
    with pytest.raises(NaslError, match="not a nasl latency predictor"):
        args.func(args)
    args = _parser().parse_args(["latency", "calibrate", "shufflenet", "--device", "cpu",
                                 "--designs", "30"])
    with pytest.raises(NaslError, match="--designs 30"):
        args.func(args)


def test_retest_compares_each_round_with_the_others() -> None:
    # 10 vs median(10, 12) = 11: 9.1 %; 10 again: 9.1 %; 12 vs 10: 20 %
    out = retest([[10.0, 10.0, 12.0], [5.0]])
    assert out["retest_within_10pct"] == pytest.approx(2 / 3, abs=1e-3)
    assert out["retest_mdape_pct"] == pytest.approx(9.09, abs=0.01)
    assert retest([[3.0], []]) == {}


@pytest.mark.parametrize("flag", ["--rounds", "--kernel-rounds"])
def test_rounds_must_be_positive(tiny_space: Path, flag: str) -> None:
    args = _parser().parse_args(["latency", "calibrate", str(tiny_space), flag, "0"])
    with pytest.raises(NaslError, match=f"{flag} 0"):
        args.func(args)


@pytest.mark.slow
def test_calibrate_and_predict_end_to_end(tiny_space: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _parser()
    saved = tiny_space.parent / "pred.json"
    args = p.parse_args(["latency", "calibrate", str(tiny_space), "--designs", "4",
                         "--kernel-designs", "1", "--holdout", "2", "--repeats", "3", "--quiet",
                         "--clock", "cpu", "--rounds", "2", "--out", str(saved)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "within ±10 %" in out and "saved:" in out and "the machine against itself" in out
    assert "kernels never measured: power law + forest residual (the power law alone" in out
    assert Predictor.load(saved).unmeasured == "power law + forest residual"
    err = Predictor.load(saved).error
    assert err["n"] == 2 and 0.0 <= err["retest_within_10pct"] <= 1.0 and err["retest_mdape_pct"] >= 0
    assert Predictor.load(saved).target["kernel_rules"] == 2
    args = p.parse_args(["latency", "predict", str(tiny_space), "--clock", "cpu", "--set",
                         "groups=3", "--budget", "1us", "--json", "--predictor", str(saved)])
    assert args.func(args) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["predicted_ms"] > 0 and res["clearly_over"] is True and math.isfinite(res["margin"])


def test_combine_sweeps_drops_a_slow_timing_and_rescales_a_faster_sweep() -> None:
    true = {f"k{i}": 0.05 + 0.01 * i for i in range(30)}
    # sweep 2 ran on a machine 10 % faster throughout; each sweep has its own slow moments
    # (a kernel timed 1.5-2x too slow): one bad sweep of three must not move the median
    s1 = {k: v * (1.8 if i % 10 == 0 else 1.0) for i, (k, v) in enumerate(true.items())}
    s2 = {k: 0.9 * v * (1.5 if i % 10 == 3 else 1.0) for i, (k, v) in enumerate(true.items())}
    s3 = {k: v * (2.0 if i % 10 == 7 else 1.0) for i, (k, v) in enumerate(true.items())}
    s3["only_here"] = 0.4
    out = combine_sweeps([s1, s2, s3])
    assert set(out) == set(true) | {"only_here"}
    assert all(out[k] == pytest.approx(v, rel=1e-9) for k, v in true.items())
    assert out["only_here"] == pytest.approx(0.4)  # first and third sweep agree on the scale
    single = max(abs(s1[k] / v - 1) for k, v in true.items())
    assert single > 0.5  # what one sweep alone would have kept
    assert combine_sweeps([s1]) == s1 and combine_sweeps([]) == {}


@pytest.mark.slow
def test_calibrate_repeats_the_kernel_sweep_and_keeps_the_median(tiny_space: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from nasl.latency import calibrate as cal
    from nasl.latency.measure import target_of_space
    from nasl.space import load_space

    sweeps: list[dict[str, float]] = []
    real = cal.measure_kernels

    def recording(arch, target, known, **kw):  # the real measurement; remembers each sweep
        if not any(known is s for s in sweeps):
            sweeps.append(known)
        return real(arch, target, known, **kw)

    monkeypatch.setattr(cal, "measure_kernels", recording)
    space = load_space(str(tiny_space))
    target = target_of_space(space, device="cpu", runtime="torch", clock="cpu")
    pred, details = cal.calibrate(space, target, designs=3, kernel_designs=0, repeats=2, rounds=1,
                                  kernel_rounds=3)
    assert details["kernel_rounds"] == 3 and len(sweeps) == 3
    assert set(sweeps[0]) == set(sweeps[1]) == set(sweeps[2]) == set(pred.lookup)
    assert pred.lookup == pytest.approx(cal.combine_sweeps(sweeps))
    with pytest.raises(ValueError, match="kernel_rounds >= 1"):
        cal.calibrate(space, target, designs=3, kernel_rounds=0)


def test_design_timings_interleave_calibration_and_held_out_evenly() -> None:
    from nasl.latency.calibrate import interleaved

    order = interleaved(4, 8)
    assert sorted(order) == list(range(12))
    held_seen = [sum(j >= 4 for j in order[:i]) for i in range(1, 13)]
    calib_seen = [i - h for i, h in zip(range(1, 13), held_seen, strict=True)]
    # after any prefix both sets are timed in proportion (never more than one design apart)
    assert all(abs(h - 2 * c) <= 2 for h, c in zip(held_seen, calib_seen, strict=True))
