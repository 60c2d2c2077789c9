"""The shipped spaces: every sampled config builds at the target and proxy sizes; baselines
reproduce the papers' networks."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasl.common.units import Budgets
from nasl.families import preset
from nasl.space import (
    list_spaces,
    load_space,
    sample_params,
    shipped_dir,
    shipped_names,
)

SHIPPED = ["hybrid", "mobilenet", "shufflenet", "squeezenet", "xception"]
TABLES = ["nb201"]  # tabular spaces (tests/test_table_space.py): looked up, not built


def test_shipped_names_and_list() -> None:
    assert shipped_names() == sorted(SHIPPED + TABLES)
    rows = list_spaces()
    assert [r[0] for r in rows] == sorted(SHIPPED + TABLES)
    for _name, path, description in rows:
        assert Path(path).is_file() and Path(path).parent == shipped_dir()
        assert description


@pytest.mark.parametrize("name", SHIPPED)
def test_200_samples_build_at_target_and_proxy(name: str) -> None:
    space = load_space(name)
    samples = sample_params(space, 200, seed=7)
    assert len({repr(sorted(p.items())) for p in samples}) > 100  # genuinely varied
    for params in samples:
        target = space.to_arch(params)
        target.validate()
        assert target.macs() > 0 and target.params() > 0
        assert target.num_classes == space.target.num_classes
        proxy = space.proxy_arch(params, num_classes=10, in_channels=1)
        proxy.validate()
        assert proxy.macs() > 0 and proxy.in_channels == 1
        assert proxy.input_size <= target.input_size


@pytest.mark.parametrize("name", SHIPPED)
def test_same_seed_same_samples(name: str) -> None:
    space = load_space(name)
    assert sample_params(space, 20, seed=3) == sample_params(space, 20, seed=3)
    assert sample_params(space, 20, seed=3) != sample_params(space, 20, seed=4)


@pytest.mark.parametrize("name", SHIPPED)
def test_real_models_forward_at_proxy_size(name: str) -> None:
    torch = pytest.importorskip("torch")
    from nasl.network.builder import build_model

    space = load_space(name)
    picks = sorted(sample_params(space, 40, seed=11),
                   key=lambda p: space.proxy_arch(p, 10, 1).params())[:6]
    for params in picks:
        cfg = space.proxy_arch(params, num_classes=10, in_channels=1)
        model = build_model(cfg, seed=0).eval()
        n = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert n == cfg.params()
        with torch.no_grad():
            out = model(torch.zeros(2, 1, cfg.input_size, cfg.input_size))
        assert out.shape == (2, 10)


def test_shufflenet_baselines_match_presets_and_40mflops() -> None:
    space = load_space("shufflenet")
    assert len(space.baselines) == 15
    for bname, params in space.baselines.items():
        g, w = params["groups"], params["width_mult"]
        assert space.to_arch(params).macs() == preset("shufflenet_v1", groups=g,
                                                      width_mult=w).macs(), bname
    assert space.to_arch(space.baselines["shufflenet_0.5x_g3"]).macs() == 37_589_856
    budget = Budgets.parse(["40MFLOPs"])
    fits = {n for n, p in space.baselines.items() if budget.fits({"macs": space.to_arch(p).macs()})}
    assert {n for n in space.baselines if n.startswith("shufflenet_0.5x")} <= fits
    assert not any(n.startswith("shufflenet_1x") for n in fits)


def test_mobilenet_baselines() -> None:
    space = load_space("mobilenet")
    expected = {"mobilenet_1.0_224": (1.0, 224), "mobilenet_0.75_224": (0.75, 224),
                "mobilenet_0.5_224": (0.5, 224), "mobilenet_0.25_224": (0.25, 224),
                "mobilenet_1.0_192": (1.0, 192), "mobilenet_1.0_160": (1.0, 160),
                "mobilenet_1.0_128": (1.0, 128)}
    assert set(space.baselines) == set(expected)
    for bname, (alpha, res) in expected.items():
        cfg = space.to_arch(space.baselines[bname])
        assert cfg.input_size == res
        ref = preset("mobilenet_v1", width_mult=alpha, resolution_mult=res / 224)
        assert (cfg.macs(), cfg.params()) == (ref.macs(), ref.params()), bname
    assert space.to_arch(space.baselines["mobilenet_1.0_224"]).macs() == 568_740_352
    # the paper's published mult-adds (millions), within rounding
    paper = {"mobilenet_0.5_224": 149, "mobilenet_0.25_224": 41, "mobilenet_1.0_128": 186}
    for bname, m in paper.items():
        assert space.to_arch(space.baselines[bname]).macs() / 1e6 == pytest.approx(m, abs=1.5)


def test_squeezenet_and_xception_baselines() -> None:
    sq = load_space("squeezenet")
    for bname, ref in (("squeezenet_v1.0", "squeezenet1_0"), ("squeezenet_v1.1", "squeezenet1_1")):
        cfg, want = sq.to_arch(sq.baselines[bname]), preset(ref)
        assert (cfg.macs(), cfg.params()) == (want.macs(), want.params())
    assert sq.to_arch(sq.baselines["squeezenet_v1.0"]).params() == 1_248_424
    assert sq.to_arch(sq.baselines["squeezenet_v1.1"]).params() == 1_235_496
    xc = load_space("xception")
    cfg = xc.to_arch(xc.baselines["xception"])
    assert cfg.input_size == 299 and cfg.params() == 22_855_952


def test_hybrid_baselines_and_conditionals() -> None:
    space = load_space("hybrid")
    assert {"all_dws", "all_shuffle", "all_fire", "all_xception"} <= set(space.baselines)
    b = space.baselines["all_dws"]
    assert not any(k.startswith(("groups[", "squeeze_ratio[")) for k in b)
    kinds = [s.name.split("_", 1)[1] for s in space.to_arch(space.baselines["all_fire"]).stages]
    assert kinds == ["fire"] * 4
    for params in sample_params(space, 100, seed=5):
        for i in range(4):
            block = params[f"stage_blocks[{i}]"]
            assert (f"groups[{i}]" in params) == (block == "shuffle")
            assert (f"squeeze_ratio[{i}]" in params) == (block == "fire")
        assert [s.name.split("_", 1)[1] for s in space.to_arch(params).stages] == [
            params[f"stage_blocks[{i}]"] for i in range(4)]


def test_loads_by_name_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_space("shufflenet").name == "shufflenet"
    assert load_space("shufflenet.yaml").name == "shufflenet"
    path = shipped_dir() / "mobilenet.yaml"
    assert load_space(str(path)) == load_space("mobilenet")
    # a local file of the same name wins over the shipped one
    (tmp_path / "shufflenet.yaml").write_text(
        "name: mine\nfamily: shufflenet\nparams: {groups: {choices: [3, 8]}}\n")
    assert load_space("shufflenet.yaml").name == "mine"
