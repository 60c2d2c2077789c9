"""model.py generation: every family's generated module has nasl's exact state dict and output;
the source imports only torch (and safetensors lazily) and holds the ArchConfig as a literal."""

from __future__ import annotations

import ast

import pytest
import torch

from nasl.arch import ArchConfig
from nasl.blocks import BLOCKS
from nasl.builder import build_model
from nasl.export.codegen import TEMPLATES, block_types, generate_source, load_module
from nasl.families import get_family, preset


def family_archs() -> dict[str, ArchConfig]:
    """One small network per family (and variants that use every block option)."""
    return {
        "squeezenet1_0-bypass": preset("squeezenet1_0", input_size=48, num_classes=7, bypass=True,
                                       base_e=32, incr_e=32),
        "squeezenet1_1": preset("squeezenet1_1", input_size=48, num_classes=7, base_e=32, incr_e=32),
        "mobilenet": preset("mobilenet_v1", width_mult=0.25, input_size=32, num_classes=10),
        "shufflenet": preset("shufflenet_v1", width_mult=0.25, input_size=32, num_classes=10),
        "shufflenet-noshuffle-g8": preset("shufflenet_v1", width_mult=0.5, groups=8, shuffle=False,
                                          stage_repeats=[1, 2, 1], input_size=32, num_classes=10),
        "xception": preset("xception", width_mult=0.25, middle_blocks=1, input_size=64,
                           num_classes=10),
        "hybrid": get_family("hybrid").generate(
            {"stage_blocks": ["fire", "xception", "shuffle", "dws"], "width_mult": 0.25,
             "stage_repeats": [1, 1, 2, 1]}, input_size=32, num_classes=10),
        "grey-1-channel": preset("mobilenet_v1", width_mult=0.25, input_size=16,
                                 num_classes=10).with_io(in_channels=1),
    }


def randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give BN statistics and the classifier non-trivial values so outputs are O(1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
            elif isinstance(m, torch.nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.2)
        model.eval()
        arch = model.arch  # type: ignore[attr-defined]
        x = torch.randn(4, arch.in_channels, arch.input_size, arch.input_size, generator=g)
        scale = 3.0 / float(model(x).abs().max())  # logits of magnitude ~3 (heads are homogeneous)
        for p in model.head.classifier.parameters():  # type: ignore[union-attr]
            p.mul_(scale)
    return model


def test_every_registered_block_has_a_template() -> None:
    assert set(BLOCKS) == set(TEMPLATES)


@pytest.mark.parametrize("name", list(family_archs()))
def test_generated_module_matches_nasl(name: str, tmp_path) -> None:
    arch = family_archs()[name]
    model = randomise(build_model(arch, seed=1))
    path = tmp_path / "model.py"
    path.write_text(generate_source(arch, mean=[0.5] * arch.in_channels, std=[2.0] * arch.in_channels))
    mod = load_module(path)
    net = mod.Network().eval()
    ref, got = model.state_dict(), net.state_dict()
    assert list(ref) == list(got)
    assert all(ref[k].shape == got[k].shape for k in ref)
    net.load_state_dict(ref, strict=True)
    x = torch.randn(2, arch.in_channels, arch.input_size, arch.input_size)
    with torch.no_grad():
        expected = model(x)
        assert 0.5 < float(expected.abs().max()) < 20  # a meaningful comparison
        assert float((net(x) - expected).abs().max()) <= 1e-5
    assert (1, arch.in_channels, arch.input_size, arch.input_size) == mod.INPUT_SHAPE
    assert arch.num_classes == mod.NUM_CLASSES
    assert arch.to_dict() == mod.ARCH
    assert ArchConfig.from_dict(mod.ARCH) == arch


def test_source_imports_only_torch_and_only_needed_blocks(tmp_path) -> None:
    arch = family_archs()["mobilenet"]
    src = generate_source(arch)
    tree = ast.parse(src)
    top = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    top |= {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
    assert top == {"__future__", "os", "torch"}
    nested = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} - top
    assert nested == {"safetensors.torch"}  # lazily, inside load_model
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert classes == {"Conv", "DepthwiseSeparable", "Head", "Network"}
    assert block_types(arch) == ["conv", "dws"]
    assert "MEAN = None" in src and "pickle" not in src
