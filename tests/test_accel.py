"""Training where the accelerator is (nasl.hardware.accel, docs/gpu.md), tested on the CPU: device and
precision resolution, bf16 against fp32, the deferred NaN check, out of memory as a trial
outcome, the per-device lock, and the one-line errors without a GPU."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from nasl.cli import main
from nasl.data import DataSplits, load_dataset
from nasl.hardware import accel
from nasl.hardware.devices import device_lock, training_lock
from nasl.search.objective import Evaluator, TrialOutOfMemory
from nasl.training.train import SYNC_EVERY, TrainConfig, TrainingDiverged, train_model


@pytest.fixture(scope="module")
def digits16() -> DataSplits:
    return load_dataset("digits", resolution=16, seed=0)


# ------------------------------------------------------------------ resolution (pure functions)
def test_auto_is_the_cpu_here_and_cuda_when_cuda_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    if not torch.cuda.is_available():
        assert accel.resolve_train_device("auto") == "cpu"
        assert accel.resolve_precision("auto", "cpu") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert accel.resolve_train_device("auto") == "cuda:0"
    assert accel.resolve_train_device("cuda") == "cuda:0"
    assert accel.resolve_train_device("cuda:1") == "cuda:1"
    assert accel.resolve_train_device("cpu") == "cpu"
    assert accel.resolve_precision("auto", "cuda:0") == "bf16"
    assert accel.resolve_precision("fp16", "cuda:1") == "fp16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert accel.resolve_precision("auto", "cuda:0") == "fp32"  # e.g. a V100 or a T4
    with pytest.raises(ValueError, match="only 2 CUDA"):
        accel.resolve_train_device("cuda:2")


def test_cuda_and_fp16_rejected_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        accel.resolve_train_device("cuda")
    with pytest.raises(ValueError, match="needs a GPU"):
        accel.resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="expected one of"):
        accel.resolve_precision("fp8", "cpu")


@pytest.mark.parametrize("flags, says", [
    (["--train-device", "cuda"], "--train-device cuda: device 'cuda' requested but no CUDA GPU"),
    (["--gpus-per-trial", "1"], "--gpus-per-trial 1: no CUDA GPU is visible"),
    (["--backend", "ray", "--gpus-per-trial", "0.25"], "--gpus-per-trial 0.25: no CUDA GPU"),
    (["--precision", "fp16"], "--precision fp16 on cpu: precision fp16 needs a GPU"),
])
def test_gpu_flags_without_a_gpu_are_one_line_exit_2(
        flags: list[str], says: str, tiny_space: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc = main(["search", str(tiny_space), "--runs-dir", str(tmp_path / "runs"), "--name", "g",
               "--quiet", *flags])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and says in err, err
    assert not (tmp_path / "runs").exists()  # nothing written


# ------------------------------------------------------------------ precision
def test_bf16_reaches_fp32_accuracy_within_seed_noise(digits16: DataSplits) -> None:
    from nasl.families import preset
    from nasl.network.builder import build_model

    arch = preset("shufflenet_v1", width_mult=0.25).with_io(input_size=16, num_classes=10,
                                                            in_channels=1)
    acc: dict[str, list[float]] = {}
    loss: dict[str, list[float]] = {}
    for precision in ("fp32", "bf16"):
        for seed in (0, 1, 2):
            r = train_model(build_model(arch, seed=seed), digits16,
                            TrainConfig(epochs=3, precision=precision), seed=seed, threads=1)
            assert r.precision == precision and r.device == "cpu"
            acc.setdefault(precision, []).append(r.final_accuracy)
            loss.setdefault(precision, []).append(r.history[0].train_loss)
    assert loss["bf16"] != loss["fp32"]  # autocast really ran in bf16
    mean = {p: statistics.fmean(a) for p, a in acc.items()}
    noise = (statistics.variance(acc["fp32"]) / 3 + statistics.variance(acc["bf16"]) / 3) ** 0.5
    assert min(mean.values()) > 0.8, acc  # chance is 0.1
    assert abs(mean["bf16"] - mean["fp32"]) <= max(3 * noise, 0.02), acc


class LateNan(nn.Module):
    """Finite losses for ``good`` steps, then NaN: the deferred check must name that step."""

    def __init__(self, good: int) -> None:
        super().__init__()
        self.fc, self.good, self.calls = nn.Linear(1, 10), good, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += self.training
        out = self.fc(x.mean(dim=(1, 2, 3))[:, None])
        return out * float("nan") if self.training and self.calls > self.good else out


@pytest.mark.parametrize("good", [4, SYNC_EVERY + 2])
def test_nan_check_every_n_steps_names_the_first_bad_step(digits16: DataSplits, good: int) -> None:
    cfg = TrainConfig(epochs=8, batch_size=16, bn_recalibrate=False)
    per_epoch = len(digits16.train_y) // 16
    with pytest.raises(TrainingDiverged) as e:
        train_model(LateNan(good), digits16, cfg, seed=0, threads=1)
    assert (e.value.epoch, e.value.step) == (good // per_epoch + 1, good + 1)


# ------------------------------------------------------------------ out of memory
class _Space:
    """Evaluator needs only ``proxy_arch`` of a space here."""

    def __init__(self, arch) -> None:
        self.arch = arch

    def proxy_arch(self, params, num_classes, in_channels):
        return self.arch.with_io(num_classes=num_classes, in_channels=in_channels)


def _evaluator(batch_size: int = 64) -> Evaluator:
    from nasl.families import preset
    from nasl.search.objective import Settings

    arch = preset("shufflenet_v1", width_mult=0.25).with_io(input_size=16)
    settings = Settings(objectives=(("accuracy", "maximize"),), budgets={}, data="digits",
                        proxy_resolution=16, val_fraction=0.2, subset=200, val_subset=100,
                        train=TrainConfig(epochs=1, batch_size=batch_size), threads=1,
                        train_device="cpu")
    return Evaluator(_Space(arch), settings)


def test_out_of_memory_is_retried_once_at_half_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    import nasl.training.train

    real, seen = nasl.training.train.train_model, []

    def first_call_oom(model, data, cfg, **kw):
        seen.append(cfg.batch_size)
        if len(seen) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, data, cfg, **kw)

    monkeypatch.setattr(nasl.training.train, "train_model", first_call_oom)
    result = _evaluator().train({}, seed=0)
    assert seen == [64, 32] and result.batch_size == 32 and result.epochs == 1


def test_out_of_memory_twice_is_a_trial_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    import nasl.training.train

    seen = []

    def always_oom(model, data, cfg, **kw):
        seen.append(cfg.batch_size)
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(nasl.training.train, "train_model", always_oom)
    with pytest.raises(TrialOutOfMemory, match="out of memory on cpu at batch size 64 and at 32"):
        _evaluator().train({}, seed=0)
    assert seen == [64, 32]


def test_other_errors_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    import nasl.training.train

    seen = []

    def broken(model, data, cfg, **kw):
        seen.append(cfg.batch_size)
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(nasl.training.train, "train_model", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        _evaluator().train({}, seed=0)
    assert seen == [64]


def test_confirmation_trains_like_the_search(monkeypatch: pytest.MonkeyPatch) -> None:
    import nasl.training.train
    from nasl.training.recipes import resolve

    real, seen = nasl.training.train.train_model, []

    def spy(model, data, cfg, **kw):
        seen.append((cfg.precision, str(next(model.parameters()).device), data.train_x.device.type))
        return real(model, data, cfg, **kw)

    monkeypatch.setattr(nasl.training.train, "train_model", spy)
    ev = _evaluator()
    ev.settings = type(ev.settings)(**{**ev.settings.__dict__,
                                       "train": TrainConfig(epochs=1, precision="bf16")})
    ev.train({}, seed=0)
    acc, mask = ev.confirm_train({}, seed=1, epochs=1, recipe=resolve("plain"))
    assert seen == [("bf16", "cpu", "cpu")] * 2
    assert 0 <= acc <= 1 and mask.device.type == "cpu"
    assert ev.train_data(16) is ev.data(16)  # on the CPU: no copy of the data set


@pytest.mark.slow
def test_out_of_memory_in_a_search_fails_the_trial_and_goes_on(
        tiny_space: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import csv

    import nasl.training.train

    real = nasl.training.train.train_model

    def oom_for_wide(model, data, cfg, **kw):  # width 0.5 never fits; 0.25 fits at half the batch
        params = sum(p.numel() for p in model.parameters())
        if params > 60_000 or cfg.batch_size == 64:
            raise torch.OutOfMemoryError(f"CUDA out of memory ({params} params, simulated)")
        return real(model, data, cfg, **kw)

    monkeypatch.setattr(nasl.training.train, "train_model", oom_for_wide)
    rc = main(["search", str(tiny_space), "--trials", "4", "--runs-dir", str(tmp_path), "--name",
               "oom", "--quiet", "--no-early-stop", "--confirm-seeds", "0"])
    assert rc == 0
    with open(tmp_path / "oom" / "trials.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["feasible"] == "True"]
    assert len(rows) == 4
    for r in rows:
        if float(r["width_mult"]) == 0.5:
            assert r["state"] == "FAIL" and "out of memory on cpu at batch size 64 and at 32" \
                in r["reason"], r
        else:
            assert r["state"] == "COMPLETE" and r["train_device"] == "cpu", r
    assert {r["state"] for r in rows} == {"FAIL", "COMPLETE"}


# ------------------------------------------------------------------ the per-device lock
HOLD = """
import sys, time
from nasl.hardware.devices import training_lock
with training_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_latency_lock_excludes_a_trainer_on_the_same_device(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASL_LOCK_DIR", str(tmp_path / "locks"))
    trainer = subprocess.Popen([sys.executable, "-c", HOLD, "cuda:0"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert trainer.stdout.readline().strip() == "held"
        for busy in ("cuda:0", "cpu"):  # the GPU it trains on, and the host feeding it
            with pytest.raises(TimeoutError), device_lock(busy, timeout=0.3):
                pass
        with device_lock("cuda:1", timeout=5):  # another GPU is free
            pass
        with training_lock("cuda:0"):  # trainers share
            pass
    finally:
        trainer.communicate("\n", timeout=30)
    t = time.monotonic()
    with device_lock("cuda:0", timeout=10):  # free once the epoch (the process) ended
        assert time.monotonic() - t < 10


@pytest.mark.parametrize("kinds", [("crop",), ("flip",), ("crop", "flip")])
def test_an_epochs_draws_augment_as_the_per_batch_draws_do(kinds: tuple[str, ...]) -> None:
    """On a GPU the epoch's augmentation draws are made at once and copied once; the images
    come out the same as with the per-batch draws the CPU path makes."""
    from nasl.training.augment import augment_batch, epoch_draws

    x = torch.randn(3, 8, 1, 16, 16).contiguous()
    g1 = torch.Generator().manual_seed(7)
    per_batch = [augment_batch(x[i], kinds, g1) for i in range(3)]
    g2 = torch.Generator().manual_seed(7)
    drawn = epoch_draws(3, 8, 16, kinds, g2, torch.device("cpu"))
    at_once = [augment_batch(x[i], kinds, g2, {k: v[i] for k, v in drawn.items()})
               for i in range(3)]
    for a, b in zip(per_batch, at_once, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(torch.rand(1, generator=g1), torch.rand(1, generator=g2))  # same state after
