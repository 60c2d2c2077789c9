"""Every preset builds, runs forward and backward, and matches its analytic costs."""

from __future__ import annotations

import pytest
import torch

from nasl.families import FAMILIES, PRESETS, preset
from nasl.network.builder import build_model

SMALL = {"squeezenet1_0": 96, "squeezenet1_1": 64, "mobilenet_v1": 64, "shufflenet_v1": 64,
         "xception": 71}


@pytest.mark.parametrize("name", list(PRESETS))
def test_forward_backward_and_exact_params(name):
    a = preset(name, input_size=SMALL[name], num_classes=10)
    m = build_model(a)
    x = torch.randn(2, 3, a.input_size, a.input_size, requires_grad=True)
    y = m(x)
    assert y.shape == (2, 10)
    y.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    assert sum(p.numel() for p in m.parameters()) == a.params()


@pytest.mark.parametrize("name", list(PRESETS))
def test_full_size_params_match_the_module(name):
    a = preset(name)
    m = build_model(a)
    assert sum(p.numel() for p in m.parameters() if p.requires_grad) == a.params()


def test_build_is_deterministic_for_a_seed():
    a = preset("shufflenet_v1", width_mult=0.5, input_size=64)
    s1, s2 = build_model(a, seed=3).state_dict(), build_model(a, seed=3).state_dict()
    s3 = build_model(a, seed=4).state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert any(not torch.equal(s1[k], s3[k]) for k in s1)


def test_grey_input_channels():
    a = preset("mobilenet_v1", width_mult=0.25, input_size=32, num_classes=10).with_io(
        in_channels=1)
    assert build_model(a).eval()(torch.randn(1, 1, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("blocks", [["fire", "xception", "shuffle", "dws"],
                                    ["shuffle", "fire", "dws", "xception"],
                                    ["xception", "dws", "fire", "shuffle"]])
def test_hybrid_stages_mix_blocks(blocks):
    a = FAMILIES["hybrid"].generate({"stage_blocks": blocks, "groups": [2, 3, 8, 4]},
                                    input_size=64, num_classes=10)
    kinds = [b.type for st in a.stages for b in st.blocks]
    assert {"fire", "xception", "shuffle", "dws"} <= set(kinds)
    m = build_model(a)
    assert m(torch.randn(2, 3, 64, 64)).shape == (2, 10)
    assert sum(p.numel() for p in m.parameters()) == a.params()
