"""Blocks: shapes, strides, residual rules, shuffle, group divisibility, exact params."""

from __future__ import annotations

import pytest
import torch

from nasl.network import arch
from nasl.network.blocks import BLOCKS, channel_shuffle, make_block

CASES = [
    (arch.ConvBN(16, 3, 2), 3, 16, 8),
    (arch.ConvBN(96, 7, 2, padding=0, bn=False, bias=True), 3, 96, 5),
    (arch.Pool(3, 2, ceil_mode=True), 8, 8, 8),
    (arch.Pool(3, 2, 1, mode="avg"), 8, 8, 8),
    (arch.Fire(4, 8, 8), 12, 16, 16),
    (arch.Fire(4, 8, 8, bypass=True), 16, 16, 16),
    (arch.DWS(24), 16, 24, 16),
    (arch.DWS(24, 2), 16, 24, 8),
    (arch.DWS(24, dw_act=False, pre_relu=True), 16, 24, 16),
    (arch.ShuffleUnit(24, 1, 3), 24, 24, 16),
    (arch.ShuffleUnit(48, 2, 3), 24, 48, 8),
    (arch.ShuffleUnit(48, 2, 3, first_group=False), 12, 48, 8),
    (arch.ShuffleUnit(24, 1, 3, shuffle=False), 24, 24, 16),
    (arch.XceptionModule((32, 32), 2), 16, 32, 8),
    (arch.XceptionModule((16, 16, 16)), 16, 16, 16),
    (arch.XceptionModule((16, 32), 1, start_relu=False), 16, 32, 16),
]


@pytest.mark.parametrize("spec,cin,cout,size", CASES, ids=lambda v: getattr(v, "type", None))
def test_block_shapes_and_exact_params(spec, cin, cout, size):
    m = make_block(spec, cin)
    x = torch.randn(2, cin, 16, 16, requires_grad=True)
    y = m(x)
    cost = spec.cost(cin, 16)
    assert y.shape == (2, cout, cost.size, cost.size) and m.out_channels == cout
    assert cost.channels == cout and cost.size == size
    assert sum(p.numel() for p in m.parameters()) == cost.params
    y.sum().backward()
    assert x.grad is not None


def test_every_spec_has_a_block():
    assert set(BLOCKS) == set(arch.SPECS)


def test_channel_shuffle_is_a_permutation():
    x = torch.arange(12.0).view(1, 12, 1, 1)
    y = channel_shuffle(x, 3)
    assert sorted(y.flatten().tolist()) == x.flatten().tolist()
    assert y.flatten().tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    # g groups then c/g groups undoes it
    assert torch.equal(channel_shuffle(y, 4), x)
    assert torch.equal(channel_shuffle(x, 1), x)
    with pytest.raises(ValueError, match="divide"):
        channel_shuffle(x, 5)


def test_shuffle_stride1_is_residual_and_stride2_concats():
    unit = make_block(arch.ShuffleUnit(24, 1, 3), 24).eval()
    torch.nn.init.zeros_(unit.gconv2[1].weight)
    torch.nn.init.zeros_(unit.gconv2[1].bias)
    x = torch.randn(1, 24, 8, 8)
    assert torch.allclose(unit(x), torch.relu(x), atol=1e-6, rtol=0)
    down = make_block(arch.ShuffleUnit(48, 2, 3), 24).eval()
    torch.nn.init.zeros_(down.gconv2[1].weight)
    torch.nn.init.zeros_(down.gconv2[1].bias)
    x = torch.rand(1, 24, 8, 8)
    y = down(x)
    pooled = torch.nn.functional.avg_pool2d(x, 3, 2, 1)
    assert torch.allclose(y[:, :24], pooled, atol=1e-6, rtol=0)
    assert torch.count_nonzero(y[:, 24:]) == 0


def test_shuffle_off_is_a_different_function_with_same_params():
    torch.manual_seed(0)
    a = make_block(arch.ShuffleUnit(24, 1, 3, shuffle=True), 24).eval()
    b = make_block(arch.ShuffleUnit(24, 1, 3, shuffle=False), 24).eval()
    b.load_state_dict(a.state_dict())
    torch.nn.init.ones_(a.gconv2[1].weight)
    torch.nn.init.ones_(b.gconv2[1].weight)
    x = torch.randn(1, 24, 8, 8)
    assert not torch.allclose(a(x), b(x))


@pytest.mark.parametrize("spec,cin,msg", [
    (arch.ShuffleUnit(24, 1, 3), 12, "equal channels"),
    (arch.ShuffleUnit(25, 1, 3), 25, "must divide"),
    (arch.ShuffleUnit(48, 2, 5), 24, "must divide"),
    (arch.ShuffleUnit(24, 2, 3), 24, "widen"),
    (arch.ShuffleUnit(24, 3, 3), 24, "stride"),
    (arch.Fire(4, 8, 8, bypass=True), 12, "bypass"),
    (arch.ConvBN(10, groups=3), 9, "groups"),
    (arch.ConvBN(0), 3, "positive"),
    (arch.XceptionModule(()), 3, "at least one"),
    (arch.Pool(mode="median"), 3, "mode"),
])
def test_impossible_blocks_raise_value_error(spec, cin, msg):
    with pytest.raises(ValueError, match=msg):
        make_block(spec, cin)


def test_make_divisible_rule():
    assert arch.make_divisible(12, 8) == 16  # nearest, ties up
    assert arch.make_divisible(60, 12) == 60
    assert arch.make_divisible(136, 16) == 144
    assert arch.make_divisible(3, 8) == 8  # at least the divisor
    assert arch.make_divisible(100, 64) == 128  # never below 90%
    with pytest.raises(ValueError):
        arch.make_divisible(10, 0)
