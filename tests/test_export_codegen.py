"""model.py generation: every family's generated module has nasl's exact state dict and output;
its code is nasl.network.blocks' own, copied verbatim; it imports only torch (and safetensors lazily),
holds the ArchConfig as a literal and runs where nasl cannot be imported."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nasl.export.codegen import block_types, generate_source, load_module
from nasl.families import get_family, preset
from nasl.network import blocks
from nasl.network.arch import ArchConfig
from nasl.network.builder import build_model


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


def _definitions(source: str) -> dict[str, str]:
    """{name: source} of each top-level function and class of a module's source."""
    tree = ast.parse(source)
    return {n.name: ast.get_source_segment(source, n) or "" for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


@pytest.mark.parametrize("name", list(family_archs()))
def test_generated_code_is_nasl_blocks_own(name: str) -> None:
    """Every function and class of model.py is a verbatim copy of one in nasl/network/blocks.py (the
    one block library), except ``load_model``; everything else is imports and constants."""
    src = generate_source(family_archs()[name], mean=[0.5], std=[2.0])
    library = _definitions(Path(blocks.__file__).read_text(encoding="utf-8"))
    generated = _definitions(src)
    assert {"Network", "Head", "build_block", "load_model"} <= set(generated)
    for def_name, code in generated.items():
        assert def_name == "load_model" or code == library.get(def_name), def_name
    others = [n for n in ast.parse(src).body[1:]  # after the docstring
              if not isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom))]
    assigned = {t.id for n in others if isinstance(n, ast.Assign) for t in n.targets
                if isinstance(t, ast.Name)}
    assert len(others) == len(assigned) == 7
    assert assigned == {"INPUT_SHAPE", "NUM_CLASSES", "MEAN", "STD", "WEIGHTS_FILE", "ARCH", "BLOCKS"}


STANDALONE = """
import sys

class NoNasl:  # nasl is installed here: make it unimportable, as on a machine without it
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "nasl":
            raise ImportError("no nasl here")

sys.meta_path.insert(0, NoNasl())
import torch
import model

x = torch.load("x.pt")
with torch.no_grad():
    torch.save(model.load_model()(x), "y.pt")
print(sorted(m for m in sys.modules if m.split(".")[0] == "nasl"))
"""


@pytest.mark.slow
def test_generated_model_runs_standalone_without_nasl(tmp_path: Path) -> None:
    """model.py + weights.safetensors in a folder, in a fresh interpreter that cannot import
    nasl: the exported weights load and the logits are nasl's."""
    from safetensors.torch import save_file

    arch = family_archs()["hybrid"]
    model = randomise(build_model(arch, seed=2))
    (tmp_path / "model.py").write_text(generate_source(arch))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(tmp_path / "weights.safetensors"))
    x = torch.randn(3, arch.in_channels, arch.input_size, arch.input_size)
    torch.save(x, tmp_path / "x.pt")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", STANDALONE], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    with torch.no_grad():
        assert float((torch.load(tmp_path / "y.pt") - model(x)).abs().max()) <= 1e-5


@pytest.mark.parametrize("name", list(family_archs()))
def test_generated_module_matches_nasl(name: str, tmp_path) -> None:
    arch = family_archs()[name]
    model = randomise(build_model(arch, seed=1))
    path = tmp_path / "model.py"
    path.write_text(generate_source(arch, mean=[0.5] * arch.in_channels, std=[2.0] * arch.in_channels))
    mod = load_module(path)
    net = mod.Network(mod.ARCH).eval()
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
    assert top == {"__future__", "os", "typing", "torch"}
    nested = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} - top
    assert nested == {"safetensors.torch"}  # lazily, inside load_model
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert classes == {"Conv", "DepthwiseSeparable", "Head", "Network"}
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert functions == {"conv_bn", "build_block", "load_model"}  # no channel_shuffle
    assert block_types(arch) == ["conv", "dws"]
    assert "MEAN = None" in src and "pickle" not in src
