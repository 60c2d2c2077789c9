"""Tests for nasl.network.cost counts: analytic == thop == FlopCounterMode, and the papers' figures."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from nasl.families import FAMILIES, PRESETS, preset
from nasl.network import arch, cost
from nasl.network.arch import (
    DWS,
    ArchConfig,
    ConvBN,
    Fire,
    Head,
    Pool,
    ShuffleUnit,
    Stage,
    XceptionModule,
)
from nasl.network.builder import build_model

M = 1e6


def _meta(cfg: ArchConfig) -> nn.Module:
    with torch.device("meta"):
        return build_model(cfg, seed=None)


def _net(family: str, blocks: tuple[arch.BlockSpec, ...], stem: int = 16,
         head: Head | None = None, size: int = 32) -> ArchConfig:
    return ArchConfig(family, (ConvBN(stem, 3, 2),), (Stage("s", blocks),), head or Head(),
                      size, 10)


# One small network per block type and variant; every registered type must appear.
BLOCK_CASES: dict[str, ArchConfig] = {
    "conv": _net("conv", (ConvBN(32, 3, 1, groups=4, bn=False, relu=False, bias=True),
                          ConvBN(24, 5, 2, padding=0))),
    "pool": _net("pool", (Pool(3, 2, ceil_mode=True), Pool(3, 2, 1, mode="avg"))),
    "fire": _net("fire", (Fire(4, 8, 8), Fire(4, 8, 8, bypass=True)),
                 head=Head("conv", dropout=0.5)),
    "dws": _net("dws", (DWS(24, 2), DWS(24, dw_act=False, relu=False, pre_relu=True),
                        DWS(32, kernel=5))),
    "shuffle": _net("shuffle", (ShuffleUnit(48, 2, 3, first_group=False),
                                ShuffleUnit(48, 1, 3), ShuffleUnit(48, 1, 3, shuffle=False),
                                ShuffleUnit(96, 2, 3, bottleneck=12)), stem=24,
                    head=Head("linear", bias=False)),
    "xception": _net("xception", (XceptionModule((16, 16), 2, start_relu=False),
                                  XceptionModule((16,) * 3), XceptionModule((16, 24)),
                                  DWS(32, dw_act=False))),
}
PRESET_CASES = {name: preset(name, input_size=64) for name in PRESETS}
PRESET_CASES["hybrid"] = FAMILIES["hybrid"].generate({}, input_size=64)
CASES = {**{f"block-{k}": v for k, v in BLOCK_CASES.items()}, **PRESET_CASES}


def test_every_block_type_has_a_case() -> None:
    assert set(arch.SPECS) <= set(BLOCK_CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_three_counters_agree_exactly(name: str) -> None:
    cfg = CASES[name]
    model = _meta(cfg)
    analytic = cost.count_macs(cfg)
    assert analytic == cfg.macs() > 0
    assert cost.count_macs(model) == analytic  # thop, BN/ReLU/pool mapped to zero
    assert cost.count_macs_flop_counter(model) == analytic
    assert cost.count_params(cfg) == cost.count_params(model) == cfg.params()


def test_counters_on_real_tensors_and_batches() -> None:
    cfg = preset("shufflenet_v1", width_mult=0.5, input_size=64)
    model = build_model(cfg)
    assert cost.count_macs(model) == cost.count_macs_flop_counter(model) == cfg.macs()
    assert cost.count_macs(model, (2, 3, 64, 64)) == 2 * cfg.macs()
    assert cost.count_macs(cfg, (2, 3, 96, 96)) == 2 * cfg.with_io(input_size=96).macs()
    assert cost.count_macs_flop_counter(cfg, (3, 96, 96)) == cfg.with_io(input_size=96).macs()


def test_flop_counter_sees_only_conv_and_matmul() -> None:
    ops = cost.flop_counter_ops(_meta(PRESET_CASES["shufflenet_v1"]))
    assert "aten.convolution" in ops
    assert set(ops) <= {"aten.convolution", "aten.addmm", "aten.mm"}  # no BN, pool, shuffle


def test_thop_defaults_overcount_which_is_why_we_configure_it() -> None:
    thop = pytest.importorskip("thop")
    cfg = PRESET_CASES["mobilenet_v1"]
    ops, _ = thop.profile(_meta(cfg), inputs=(torch.zeros(1, 3, 64, 64, device="meta"),),
                          verbose=False)
    assert ops > 1.02 * cfg.macs()


def test_count_macs_leaves_the_module_untouched() -> None:
    model = build_model(preset("mobilenet_v1", width_mult=0.25, input_size=64))
    model.train()
    model.stages["stage2"].eval()  # a mixed mode must survive too
    modes = [m.training for m in model.modules()]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hooks = [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()]
    cost.count_macs(model)
    cost.count_macs_flop_counter(model)
    after = model.state_dict()
    assert list(after) == list(before)  # thop's total_ops/total_params buffers are gone
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN stats untouched
    assert [m.training for m in model.modules()] == modes
    assert [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()] == hooks
    assert not any(hasattr(m, "total_ops") for m in model.modules())


def test_count_macs_keeps_a_callers_own_total_ops_buffer() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU())
    model.register_buffer("total_ops", torch.tensor([7.0]))
    assert cost.count_macs(model, (3, 5, 5)) == 3 * 4 * 25
    assert list(model.state_dict()) == ["total_ops", "0.weight", "0.bias"]
    assert model.get_buffer("total_ops").item() == 7.0


def test_module_without_arch_needs_input_shape() -> None:
    with pytest.raises(ValueError, match="input_shape is required"):
        cost.count_macs(nn.Conv2d(3, 4, 1))
    with pytest.raises(ValueError, match="input_shape must be"):
        cost.count_macs(nn.Conv2d(3, 4, 1), (3, 5))


def test_count_params_ignores_frozen_parameters() -> None:
    frozen = nn.BatchNorm2d(4).requires_grad_(False)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), frozen)
    assert cost.count_params(model) == 3 * 4 + 4


def test_size_mb() -> None:
    assert cost.size_mb(2**20) == 4.0
    assert cost.size_mb(2**20, "int8") == 1.0
    with pytest.raises(ValueError, match="dtype must be one of"):
        cost.size_mb(10, "fp64")


def test_costs_is_analytic_and_fast() -> None:
    cfg = preset("shufflenet_v1", width_mult=0.5)
    c = cost.costs(cfg)
    assert c == {"macs": cfg.macs(), "params": cfg.params(), "size_mb": cost.size_mb(c["params"]),
                 "size_int8_mb": cost.size_mb(c["params"], "int8")}
    n = 200
    t = time.perf_counter()
    for _ in range(n):
        cost.costs(cfg)
    assert (time.perf_counter() - t) / n < 2e-3  # ~100 µs here; a thop count is ~50 ms


# -- the papers' figures (reference/papers.md), analytic counts at full size ----------------
@pytest.mark.parametrize(("name", "params", "mmacs"), [
    ("squeezenet1_0", 1_248_424, 819), ("squeezenet1_1", 1_235_496, 349)])
def test_squeezenet_torchvision_figures(name: str, params: int, mmacs: float) -> None:
    cfg = preset(name)
    assert cfg.params() == params
    assert cfg.macs() / M == pytest.approx(mmacs, rel=0.01)


@pytest.mark.parametrize(("squeeze_ratio", "mb"), [(0.125, 4.8), (0.5, 13), (1.0, 24)])
def test_squeezenet_model_size_mb(squeeze_ratio: float, mb: float) -> None:
    size = cost.size_mb(preset("squeezenet1_0", squeeze_ratio=squeeze_ratio).params())
    assert round(size, 1 if mb < 10 else 0) == mb


@pytest.mark.xfail(strict=True, reason="papers.md: SR 0.75 -> 19 MB; we get 18.47 MiB "
                   "(19.37 decimal MB), while 4.8 MB at SR 0.125 is MiB (4.76; 4.99 decimal)")
def test_squeezenet_sr075_is_19_mb() -> None:
    assert round(cost.size_mb(preset("squeezenet1_0", squeeze_ratio=0.75).params())) == 19


@pytest.mark.parametrize(("alpha", "size", "mmacs", "mparams"), [
    (1.0, 224, 569, 4.2), (0.75, 224, 325, 2.6), (0.5, 224, 149, 1.3), (0.25, 224, 41, 0.5),
    (1.0, 192, 418, 4.2), (1.0, 160, 290, 4.2), (1.0, 128, 186, 4.2)])
def test_mobilenet_tables_6_7(alpha: float, size: int, mmacs: int, mparams: float) -> None:
    cfg = preset("mobilenet_v1", width_mult=alpha, input_size=size)
    assert cfg.macs() / M == pytest.approx(mmacs, abs=1.0)  # the paper rounds to 1 M
    assert round(cfg.params() / M, 1) == mparams


def test_mobilenet_table_2_shares() -> None:
    cfg = preset("mobilenet_v1")
    spec = dict(cfg.layers())
    parts = {"conv1x1": 0, "dw": 0, "first": 0, "fc": 0}
    for name, cin, _, c in cfg.walk():
        s = spec.get(name)
        if isinstance(s, DWS):
            dw = cin * s.kernel**2 * c.size**2
            parts["dw"] += dw
            parts["conv1x1"] += c.macs - dw
        elif isinstance(s, ConvBN):
            parts["first"] += c.macs
        else:
            assert name == "head"
            parts["fc"] += c.macs
    total = cfg.macs()
    assert sum(parts.values()) == total
    shares = {k: 100 * v / total for k, v in parts.items()}
    expected = {"conv1x1": 94.86, "dw": 3.06, "first": 1.91, "fc": 0.18}
    assert shares == pytest.approx(expected, abs=0.05)


@pytest.mark.parametrize(("groups", "mflops"), [(1, 143), (2, 140), (3, 137), (4, 133), (8, 137)])
def test_shufflenet_table_1(groups: int, mflops: float) -> None:
    assert preset("shufflenet_v1", groups=groups).macs() / M == pytest.approx(mflops, rel=0.015)


@pytest.mark.parametrize("groups", [1, 3, 8])
def test_shufflenet_table_2_small(groups: int) -> None:
    half = preset("shufflenet_v1", groups=groups, width_mult=0.5).macs() / M
    assert half < 40
    assert half == pytest.approx(38, rel=0.05)
    quarter = preset("shufflenet_v1", groups=groups, width_mult=0.25).macs() / M
    assert quarter == pytest.approx(13, rel=0.10)


@pytest.mark.parametrize(("width", "mflops", "mparams"), [(1.0, 138, 1.9), (0.5, 38, 0.7)])
def test_shufflenet_official_g3(width: float, mflops: float, mparams: float) -> None:
    cfg = preset("shufflenet_v1", groups=3, width_mult=width)
    assert cfg.macs() / M == pytest.approx(mflops, rel=0.015)
    assert round(cfg.params() / M, 1) == mparams


def test_xception_params() -> None:
    cfg = preset("xception")
    assert cfg.input_size == 299
    assert cfg.params() == 22_855_952
    assert cost.count_params(_meta(cfg)) == 22_855_952


def test_cost_is_analytic_only():
    """Timing lives in nasl.latency.timing: importing nasl.network.cost loads nothing of nasl.latency."""
    import subprocess
    import sys

    code = ("import sys, nasl.network.cost; "
            "print(sorted(m for m in sys.modules if m.startswith('nasl.latency')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
