"""Tests for nasl.latency.timing and nasl.hardware.devices: measure_latency, resolve_device
and the device lock."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from nasl.families import preset
from nasl.hardware import devices
from nasl.latency import timing
from nasl.network.builder import Network, build_model

FAST: dict[str, Any] = {"warmup": 1, "repeats": 5}


@pytest.fixture(autouse=True)
def _lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NASL_LOCK_DIR", str(tmp_path / "locks"))
    return tmp_path / "locks"


@pytest.fixture(scope="module")
def model() -> Network:
    return build_model(preset("mobilenet_v1", width_mult=0.25, input_size=64))


def test_cpu_latency_is_sane_and_recorded(model: Network) -> None:
    model.train()
    model.head.eval()
    modes = [m.training for m in model.modules()]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    threads = torch.get_num_threads()
    lat = timing.measure_latency(model, (3, 64, 64), device="cpu", **FAST)
    assert 0 < lat.p10_ms <= lat.median_ms <= lat.p90_ms
    assert lat.mean_ms > 0 and lat.std_ms >= 0
    assert (lat.repeats, lat.warmup, lat.device, lat.threads) == (5, 1, "cpu", 1)
    assert (lat.batch_size, lat.dtype, lat.input_shape) == (1, "fp32", (1, 3, 64, 64))
    assert lat.device_name and lat.device_name == devices.cpu_name()
    # with 1 thread the timing thread's own CPU time: other threads of this process (OpenMP
    # workers spinning after an earlier 2-thread test, Ray or W&B threads) do not count
    assert lat.cpu_ratio is not None and 0 < lat.cpu_ratio < 1.5
    assert torch.get_num_threads() == threads  # restored
    assert [m.training for m in model.modules()] == modes  # modes untouched
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(before[k], after[k]) and before[k].dtype == after[k].dtype
               for k in before)
    json.dumps(lat.to_dict())


def test_batch_dtype_threads_and_shape_conventions(model: torch.nn.Module) -> None:
    lat = timing.measure_latency(model, (4, 3, 64, 64), device="cpu", dtype="bf16", threads=2,
                               channels_last=False, **FAST)
    assert (lat.batch_size, lat.input_shape, lat.dtype) == (4, (4, 3, 64, 64), "bf16")
    assert lat.threads == 2 and not lat.channels_last
    lat = timing.measure_latency(model, (4, 3, 64, 64), device="cpu", batch_size=2, **FAST)
    assert lat.input_shape == (2, 3, 64, 64)
    lat = timing.measure_latency(model, (3, 64, 64), device="auto", lock=False, threads=None,
                               **FAST)
    assert lat.device == devices.resolve_device("auto")
    assert next(model.parameters()).dtype == torch.float32


def test_fp16_on_cpu_runs_or_says_why(model: torch.nn.Module) -> None:
    try:
        lat = timing.measure_latency(model, (3, 64, 64), device="cpu", dtype="fp16", **FAST)
    except ValueError as e:
        assert "not supported on CPU" in str(e)
    else:
        assert lat.dtype == "fp16"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"device": "tpu"}, "unknown device"),
    ({"device": "cuda:x"}, "unknown device"),
    ({"dtype": "fp64"}, "dtype must be one of"),
    ({"dtype": "int8"}, "dtype must be one of"),
    ({"repeats": 0}, "need repeats >= 1"),
    ({"batch_size": 0}, "batch_size >= 1"),
    ({"input_shape": (64, 64)}, "input_shape must be"),
])
def test_bad_arguments(model: torch.nn.Module, kwargs: dict[str, Any], match: str) -> None:
    args = {"input_shape": (3, 64, 64), "device": "cpu", **FAST, **kwargs}
    with pytest.raises(ValueError, match=match):
        timing.measure_latency(model, **args)


def test_meta_model_is_refused() -> None:
    with torch.device("meta"):
        meta = build_model(preset("mobilenet_v1", width_mult=0.25, input_size=64), seed=None)
    with pytest.raises(ValueError, match="meta device"):
        timing.measure_latency(meta, (3, 64, 64), device="cpu")


def test_resolve_device() -> None:
    assert devices.resolve_device("cpu") == "cpu"
    assert devices.resolve_device(" CPU ") == "cpu"
    assert devices.resolve_device("auto") == ("cuda:0" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        devices.resolve_device("gpu")
    if not torch.backends.mps.is_available():
        with pytest.raises(ValueError, match="MPS is not available"):
            devices.resolve_device("mps")
    if torch.cuda.is_available():
        assert devices.resolve_device("cuda") == "cuda:0"
        with pytest.raises(ValueError, match="CUDA device"):
            devices.resolve_device(f"cuda:{torch.cuda.device_count()}")
    else:
        for dev in ("cuda", "cuda:0", "cuda:1"):
            with pytest.raises(ValueError, match="no CUDA GPU is available"):
                devices.resolve_device(dev)


def test_cuda_latency(model: torch.nn.Module) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    lat = timing.measure_latency(model, (3, 64, 64), device="cuda", dtype="fp16", **FAST)
    assert lat.device == "cuda:0" and lat.cpu_ratio is None
    assert lat.device_name == torch.cuda.get_device_name(0)
    assert 0 < lat.p10_ms <= lat.median_ms <= lat.p90_ms
    assert next(model.parameters()).device.type == "cpu"


# -- the cross-process lock -----------------------------------------------------------------
HOLDER = textwrap.dedent("""
    import sys, time
    from nasl.hardware.devices import device_lock
    with device_lock("cpu", shared=sys.argv[2] == "shared"):
        print("locked", flush=True)
        time.sleep(float(sys.argv[1]))
""")


def _hold(seconds: float, mode: str = "exclusive") -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(seconds), mode],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_two_processes_serialise() -> None:
    proc = _hold(0.5)
    t = time.perf_counter()
    with devices.device_lock("cpu"):
        waited = time.perf_counter() - t
    proc.wait(10)
    assert waited >= 0.3


def test_measure_latency_waits_for_the_lock(model: torch.nn.Module) -> None:
    proc = _hold(0.5)
    t = time.perf_counter()
    timing.measure_latency(model, (3, 64, 64), device="cpu", warmup=0, repeats=1)
    proc.wait(10)
    assert time.perf_counter() - t >= 0.3


def test_shared_holders_coexist_and_keep_timing_out() -> None:
    proc = _hold(0.5, "shared")
    t = time.perf_counter()
    with devices.device_lock("cpu", shared=True):
        assert time.perf_counter() - t < 0.3
    with pytest.raises(TimeoutError, match="busy"), devices.device_lock("cpu", timeout=0.05):
        pass
    proc.wait(10)
    with devices.device_lock("cpu", timeout=1.0):
        pass


def test_lock_is_reentrant_and_per_device(_lock_dir: Path) -> None:
    with devices.device_lock("cpu"), devices.device_lock("cpu", timeout=0.1), \
            devices.device_lock("cuda:1", timeout=0.1):
        pass
    assert {p.name for p in _lock_dir.iterdir()} == {"cpu.lock", "cuda_1.lock", "cpu.pending",
                                                     "cuda_1.pending"}


def test_waiting_timer_is_preferred_over_new_trainers(_lock_dir: Path) -> None:
    """Trainers re-take the lock shared per epoch, overlapping so it is never free; a timer
    (exclusive) still gets in at their next epoch boundary instead of starving."""
    import threading

    stop = threading.Event()

    def trainer() -> None:
        while not stop.is_set():
            with devices.device_lock("cpu", shared=True):
                time.sleep(0.05)

    threads = [threading.Thread(target=trainer) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.025)
    try:
        t0 = time.monotonic()
        with devices.device_lock("cpu", timeout=2.0):
            waited = time.monotonic() - t0
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert waited < 0.5
