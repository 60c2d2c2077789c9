"""Deployment runtimes: measure_latency(runtime=...), clock='cpu', target.runtime in the space."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from nasl.common.errors import NaslError
from nasl.latency import timing
from nasl.latency.runtime import RUNTIMES, RuntimeUnavailable, make_runner, onnx_bytes, ort_providers

FAST = {"warmup": 1, "repeats": 3, "device": "cpu"}


@pytest.fixture(autouse=True)
def _lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASL_LOCK_DIR", str(tmp_path / "locks"))


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))


def test_onnxruntime_latency_is_recorded_and_outputs_match() -> None:
    lat = timing.measure_latency(_net(), (3, 16, 16), runtime="onnxruntime", **FAST)
    assert lat.runtime == "onnxruntime" and lat.threads == 1 and lat.median_ms > 0
    assert lat.channels_last is False and lat.to_dict()["runtime"] == "onnxruntime"
    net = _net().eval()
    x = torch.randn(2, 3, 16, 16)
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_bytes(net, x), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    assert torch.allclose(torch.from_numpy(got), net(x), atol=1e-5)


def test_torch_runtime_default_and_bad_runtime() -> None:
    assert timing.measure_latency(_net(), (3, 16, 16), **FAST).runtime == "torch"
    with pytest.raises(ValueError, match="runtime must be one of"):
        timing.measure_latency(_net(), (3, 16, 16), runtime="tensorrt", **FAST)


def test_onnxruntime_rejects_what_it_cannot_run() -> None:
    with pytest.raises(RuntimeUnavailable, match="bf16"):
        timing.measure_latency(_net(), (3, 16, 16), runtime="onnxruntime", dtype="bf16", **FAST)
    with pytest.raises(RuntimeUnavailable, match="fp16"):
        make_runner(_net().half().eval(), torch.zeros(1, 3, 8, 8).half(), runtime="onnxruntime")
    if "CUDAExecutionProvider" not in __import__("onnxruntime").get_available_providers():
        with pytest.raises(RuntimeUnavailable, match="no CUDA execution provider"):
            ort_providers("cuda:0")


def test_multi_input_runner_in_every_cheap_runtime() -> None:
    class Add(nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return torch.relu(a + b)

    xs = (torch.randn(1, 4, 5, 5), torch.randn(1, 4, 5, 5))
    for rt in ("torch", "onnxruntime"):
        r = make_runner(Add(), xs, runtime=rt)
        assert r.runtime == rt and not r.events
    assert set(RUNTIMES) == {"torch", "onnxruntime", "torch.compile"}


def test_cpu_clock_only_for_one_cpu_thread() -> None:
    lat = timing.measure_latency(_net(), (3, 16, 16), clock="cpu", **FAST)
    assert lat.clock == "cpu" and lat.median_ms > 0
    with pytest.raises(ValueError, match="clock"):
        timing.measure_latency(_net(), (3, 16, 16), clock="cpu", threads=2, **FAST)
    with pytest.raises(ValueError, match="clock"):
        timing.measure_latency(_net(), (3, 16, 16), clock="gpu", **FAST)


def test_space_target_runtime(tmp_path: Path) -> None:
    from nasl.space import load_space, loads_space

    assert load_space("shufflenet").target.runtime == "torch"
    text = "name: x\nfamily: shufflenet\ntarget: {runtime: %s}\nparams:\n  groups: {choices: [1, 3]}\n"
    assert loads_space(text % "onnxruntime").target.runtime == "onnxruntime"
    assert "runtime: onnxruntime" in loads_space(text % "onnxruntime").to_yaml()
    with pytest.raises(NaslError, match=r"target\.runtime: 'tensorrt' .*expected 'torch', "
                                        r"'onnxruntime' or 'torch.compile'"):
        loads_space(text % "tensorrt")


@pytest.mark.slow
def test_torch_compile_runtime() -> None:
    try:
        lat = timing.measure_latency(_net(), (3, 16, 16), runtime="torch.compile", **FAST)
    except RuntimeUnavailable as e:  # no compiler on this machine: the message says so
        assert "torch.compile does not work" in str(e)
        return
    assert lat.runtime == "torch.compile"
