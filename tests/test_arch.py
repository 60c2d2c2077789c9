"""ArchConfig: serialisation, stable id, validation, analytic walk."""

from __future__ import annotations

import pytest

from nasl.families import FAMILIES, PRESETS, preset
from nasl.network.arch import ArchConfig, ConvBN, Stage, conv_out, spec_from_dict


@pytest.mark.parametrize("name", list(PRESETS))
def test_round_trip_dict_and_json(name):
    a = preset(name)
    assert ArchConfig.from_dict(a.to_dict()) == a
    assert ArchConfig.from_json(a.to_json()) == a
    assert ArchConfig.from_json(a.to_json()).id == a.id


def test_id_is_stable_and_sensitive():
    a = preset("shufflenet_v1")
    assert a.id == preset("shufflenet_v1").id and len(a.id) == 10
    assert a.id != preset("shufflenet_v1", shuffle=False).id is not None
    assert a.id != preset("shufflenet_v1", width_mult=0.5).id
    assert a.id != a.with_io(input_size=112).id
    # shuffle on/off is a different network with the same costs
    b = preset("shufflenet_v1", shuffle=False)
    assert (a.macs(), a.params()) == (b.macs(), b.params())


def test_id_ignores_choice_labels():
    a = preset("mobilenet_v1")
    b = ArchConfig(**{**a.__dict__, "choices": ()})
    assert a.id == b.id


def test_walk_names_the_bad_block():
    a = ArchConfig("x", (ConvBN(8, 3, 2),), (Stage("s", (ConvBN(9, groups=2),)),))
    with pytest.raises(ValueError, match=r"s\.0 \(conv\)"):
        a.validate()


def test_too_small_input_is_value_error():
    with pytest.raises(ValueError, match="smaller than kernel"):
        preset("squeezenet1_0", input_size=8)


def test_conv_out_matches_pytorch_ceil_mode():
    import torch

    for size in range(3, 40):
        for ceil in (False, True):
            pool = torch.nn.MaxPool2d(3, 2, ceil_mode=ceil)
            want = pool(torch.zeros(1, 1, size, size)).shape[-1]
            assert conv_out(size, 3, 2, 0, ceil) == want


def test_spec_from_dict_errors():
    with pytest.raises(ValueError, match="unknown block type"):
        spec_from_dict({"type": "nope"})
    with pytest.raises(ValueError, match="unknown fields"):
        spec_from_dict({"type": "conv", "out": 3, "colour": 1})


@pytest.mark.parametrize("family", list(FAMILIES))
def test_unknown_choice_is_named_with_hint(family):
    fam = FAMILIES[family]
    key = next(iter(fam.defaults))
    with pytest.raises(ValueError, match="did you mean"):
        fam.generate({key + "x": 1})


@pytest.mark.parametrize("name,choices,msg", [
    ("shufflenet", {"groups": 0}, "groups"),
    ("shufflenet", {"width_mult": -1}, "width_mult"),
    ("shufflenet", {"stage_repeats": [4, 8]}, "3 entries"),
    ("mobilenet", {"width_mult": 0}, "width_mult"),
    ("mobilenet", {"downsample_at": [7]}, "downsample_at"),
    ("squeezenet", {"pct3x3": 1.0}, "pct3x3"),
    ("squeezenet", {"squeeze_ratio": 0}, "squeeze_ratio"),
    ("squeezenet", {"pool_after": [12]}, "pool_after"),
    ("squeezenet", {"version": "2.0"}, "version"),
    ("xception", {"middle_blocks": -1}, "middle_blocks"),
    ("hybrid", {"stage_blocks": ["dws", "conv2d", "dws", "dws"]}, "stage block"),
    ("mobilenet", {"resolution_mult": 0}, "resolution_mult"),
])
def test_impossible_values_are_clear_value_errors(name, choices, msg):
    with pytest.raises(ValueError, match=msg):
        FAMILIES[name].generate(choices)
