"""Memory formats flowing between kernels: traced by rule on the meta device, equal to what
PyTorch's CPU kernels do, and timed that way."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.fx.passes.shape_prop import ShapeProp

from nasl.families import preset
from nasl.latency import measure as lmeasure
from nasl.latency.kernels import channels_last_run, kernels, tensor_formats, trace
from nasl.latency.measure import LatencyTarget, measure_kernels
from nasl.latency.predictor import Predictor
from nasl.network.builder import build_model

PRESETS = [("shufflenet_v1", {"groups": 3}), ("shufflenet_v1", {"groups": 1}),
           ("mobilenet_v1", {}), ("squeezenet1_1", {}), ("xception", {})]


@pytest.fixture(autouse=True)
def _dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASL_LOCK_DIR", str(tmp_path / "locks"))


def _arch(name: str, extra: dict) -> object:
    return preset(name, input_size=99 if name == "xception" else 64, **extra)


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize(("name", "extra"), PRESETS)
def test_rules_match_what_the_cpu_does(name: str, extra: dict, channels_last: bool) -> None:
    """Every 4-D value's format by rule equals the format of the real tensor on the CPU."""
    arch = _arch(name, extra)
    model = build_model(arch, seed=0).eval()
    x = torch.randn(1, 3, arch.input_size, arch.input_size)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    gm = trace(model)
    with torch.inference_mode():
        ShapeProp(gm).propagate(x)
    formats = tensor_formats(gm, channels_last)
    checked = 0
    for node, fmt in formats.items():
        meta = node.meta["tensor_meta"]
        n, c, h, w = meta.shape
        if c > 1 and h * w > 1:  # both formats differ in layout
            real = "cl" if meta.memory_format == torch.channels_last else "nchw"
            assert fmt == real, f"{node.name}: rule says {fmt}, the CPU gives {real}"
            checked += 1
    assert checked > 10


def test_a_shuffle_hands_the_next_kernel_nchw() -> None:
    """Channels-last ShuffleNet g=3: the depthwise kernels after a shuffle are kinds of their
    own, fed NCHW; g=1 (no shuffle) and a contiguous-format network have none."""
    def marked(arch: object, channels_last: bool) -> list:
        with torch.device("meta"):
            model = build_model(arch, seed=None)
        return [k for k in kernels(model, (1, 3, 64, 64), channels_last=channels_last)[1]
                if "+" in k.kind]

    g3 = _arch("shufflenet_v1", {"groups": 3})
    ks = marked(g3, True)
    shuffles = sum(1 for k in kernels(build_model(g3, seed=0), (1, 3, 64, 64))[1] if k.kind == "shuffle")
    assert len(ks) == shuffles > 0
    assert all(k.kind.startswith("dwconv") and k.kind.endswith("+nchw") and k.formats == ("nchw",)
               for k in ks)
    assert not marked(g3, False)
    assert not marked(_arch("shufflenet_v1", {"groups": 1}), True)
    assert not marked(_arch("mobilenet_v1", {}), True)


def test_measured_kernels_are_timed_in_their_format_and_found_by_the_predictor(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """measure_kernels gives each kernel its inputs in the format they arrive in, and the
    predictor's meta-device kernels have exactly the measured keys."""
    arch = preset("shufflenet_v1", input_size=64, groups=2)
    target = LatencyTarget(device="cpu", channels_last=True).resolved()
    seen: list[tuple[str, ...]] = []
    real = lmeasure.make_runner

    def spy(module: object, xs: tuple, **kw: object) -> object:
        seen.append(tuple("cl" if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
                          and not x.is_contiguous() else "nchw" if x.dim() == 4 else "" for x in xs))
        return real(module, xs, **kw)

    monkeypatch.setattr(lmeasure, "make_runner", spy)
    known: dict[str, float] = {}
    ks = measure_kernels(arch, target, known, warmup=1, repeats=2)
    assert channels_last_run(target.facts())
    assert ("nchw",) in seen and ("cl",) in seen
    pred = Predictor(target.facts(), target.fingerprint(), "s")
    assert [k.key for k in pred.design_kernels(arch)] == [k.key for k in ks]
    assert all(k.key in known for k in ks)
    assert any(k.kind.endswith("+nchw") for k in ks)


def test_onnxruntime_targets_run_nchw() -> None:
    assert not channels_last_run({"channels_last": True, "runtime": "onnxruntime"})
    assert channels_last_run({"channels_last": True, "runtime": "torch"})
    assert not channels_last_run({"channels_last": False, "runtime": "torch"})


@pytest.mark.slow
def test_the_benchmark_compares_formats_paired(tmp_path: Path) -> None:
    """bench/bench_latency_predictor.py --ablate-formats on a tiny ShuffleNet run: both
    predictors scored on the same held-out timings, under both calibrations, with the
    machine's retest floor (each design timed in two rounds)."""
    import importlib.util
    import json

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("blp", root / "bench" / "bench_latency_predictor.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "r.json"
    assert mod.main(["--spaces", "shufflenet", "--designs", "6", "--kernel-designs", "0",
                     "--holdout", "3", "--repeats", "1", "--rounds", "2", "--ablate-formats",
                     "--out", str(out)]) == 0
    res = json.loads(out.read_text())["shufflenet"]
    ab = res["details"]["formats_ablation"]
    assert set(ab) == {f"formats {t} ({c} calibration)" for t in ("tracked", "not tracked")
                       for c in ("global", "memory traffic")}
    assert all(e["n"] == 3 for e in ab.values())
    assert res["details"]["rounds"] == 2 and 0.0 <= res["error"]["retest_within_10pct"] <= 1.0
    held = [r for r in res["details"]["rows"] if r["set"] == "held-out"]
    assert len(held) == 3 and all(len(r["rounds_ms"]) == 2 for r in held)
