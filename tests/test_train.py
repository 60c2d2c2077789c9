"""Tests for nasl.training.train: accuracy on digits, determinism, callbacks, NaN guard, threads."""

from __future__ import annotations

import os
import warnings

import pytest
import torch
from torch import nn

from nasl.common.errors import NaslError
from nasl.data import DataSplits, load_dataset
from nasl.training import train as train_mod
from nasl.training.train import (
    EpochResult,
    TrainConfig,
    TrainingDiverged,
    evaluate,
    recalibrate_bn,
    train_model,
)


def small_cnn(in_channels: int, num_classes: int, width: int = 16) -> nn.Sequential:
    """conv-bn-relu x3, global average pool, linear."""
    def block(i: int, o: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, stride, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

    return nn.Sequential(*block(in_channels, width, 1), *block(width, 2 * width, 2),
                         *block(2 * width, 4 * width, 2), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4 * width, num_classes))


@pytest.fixture(scope="module")
def digits16() -> DataSplits:
    return load_dataset("digits", resolution=16, seed=0)


@pytest.fixture(scope="module")
def fake() -> DataSplits:
    return load_dataset("fake:160", resolution=12, seed=0)


def _model(data: DataSplits, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return small_cnn(data.in_channels, data.num_classes, width=8)


def test_digits_accuracy(digits16: DataSplits) -> None:
    torch.manual_seed(0)
    model = small_cnn(1, 10)
    result = train_model(model, digits16, TrainConfig(epochs=10), seed=0, threads=1)
    assert result.final_accuracy >= 0.95, result.history
    assert result.best_accuracy >= result.final_accuracy
    assert result.epochs == 10 and len(result.history) == 10
    assert result.steps == 10 * (1149 // 64)
    assert result.images_per_second > 0 and result.seconds >= result.train_seconds > 0
    assert not model.training


def test_same_seed_same_accuracies(fake: DataSplits) -> None:
    cfg = TrainConfig(epochs=2, batch_size=32)
    a = train_model(_model(fake), fake, cfg, seed=3, threads=1)
    b = train_model(_model(fake), fake, cfg, seed=3, threads=1)
    c = train_model(_model(fake), fake, cfg, seed=4, threads=1)
    assert [(h.train_loss, h.val_accuracy) for h in a.history] == [
        (h.train_loss, h.val_accuracy) for h in b.history]
    assert [h.train_loss for h in a.history] != [h.train_loss for h in c.history]


def test_callback_each_epoch_and_threads_restored(fake: DataSplits) -> None:
    seen: list[EpochResult] = []
    before = torch.get_num_threads()
    result = train_model(_model(fake), fake, TrainConfig(epochs=3, batch_size=32), seed=0,
                         on_epoch=seen.append, threads=1)
    assert [r.epoch for r in seen] == [1, 2, 3]
    assert seen == result.history
    assert all(0.0 <= r.val_accuracy <= 1.0 and r.seconds > 0 and r.steps == 4 for r in seen)
    assert result.threads == 1 and torch.get_num_threads() == before


class Pruned(Exception):
    """Stands in for a search's pruning exception."""


def test_callback_exception_propagates(fake: DataSplits) -> None:
    before = torch.get_num_threads()

    def prune(r: EpochResult) -> None:
        if r.epoch == 2:
            raise Pruned(r.epoch)

    with pytest.raises(Pruned) as e:
        train_model(_model(fake), fake, TrainConfig(epochs=5, batch_size=32), seed=0,
                    on_epoch=prune, threads=1)
    assert e.value.args == (2,)
    assert torch.get_num_threads() == before


class NanModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(1, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(1, 2, 3))[:, None]) * float("nan")


def test_nan_guard(fake: DataSplits) -> None:
    with pytest.raises(TrainingDiverged) as e:
        train_model(NanModel(), fake, TrainConfig(epochs=2, batch_size=32), seed=0, threads=1)
    assert e.value.epoch == 1 and e.value.step == 1 and "nan" in str(e.value)
    assert isinstance(e.value, RuntimeError)


def test_huge_lr_diverges(fake: DataSplits) -> None:
    cfg = TrainConfig(epochs=5, batch_size=16, lr=1e12, warmup_epochs=0,
                      label_smoothing=0.0)
    with pytest.raises(TrainingDiverged):
        train_model(_model(fake), fake, cfg, seed=0, threads=1)


def test_max_steps_and_adamw(fake: DataSplits) -> None:
    cfg = TrainConfig(epochs=10, batch_size=32, max_steps=6, optimizer="adamw")
    r = train_model(_model(fake), fake, cfg, seed=0, threads=1)
    assert r.steps == 6 and r.epochs == 2 and [h.steps for h in r.history] == [4, 2]
    assert r.history[-1].lr < 1e-3


@pytest.mark.parametrize("kwargs", [dict(epochs=0), dict(batch_size=0), dict(lr=-1.0),
                                    dict(optimizer="rmsprop"), dict(max_steps=0)])
def test_bad_config_is_clear_error(kwargs: dict) -> None:
    with pytest.raises(NaslError, match="train config"):
        TrainConfig(**kwargs)


def test_evaluate_and_recalibrate_bn() -> None:
    torch.manual_seed(0)
    model = small_cnn(1, 3, width=4)
    x, y = torch.randn(20, 1, 8, 8) * 3 + 5, torch.randint(0, 3, (20,))
    model.train()
    acc = evaluate(model, x, y, batch_size=7)
    assert 0.0 <= acc <= 1.0 and model.training  # mode restored
    recalibrate_bn(model, x, batch_size=20, channels_last=False)
    first_bn = model[1]
    with torch.no_grad():
        h = model[0](x)
    assert torch.allclose(first_bn.running_mean, h.mean(dim=(0, 2, 3)), atol=1e-5)
    assert first_bn.momentum == 0.1


def test_progress_task_added_and_removed(fake: DataSplits) -> None:
    class Progress:
        def __init__(self) -> None:
            self.calls: list[str] = []

        def add_task(self, description: str, total: int) -> int:
            self.calls.append(f"add {total}")
            return 7

        def advance(self, task: int) -> None:
            self.calls.append("advance")

        def remove_task(self, task: int) -> None:
            self.calls.append("remove")

    p = Progress()
    train_model(_model(fake), fake, TrainConfig(epochs=1, batch_size=32), seed=0, progress=p,
                threads=1)
    assert p.calls == ["add 4"] + ["advance"] * 4 + ["remove"]


def test_shufflenet_preset_on_digits() -> None:
    try:
        from nasl.families import preset
        from nasl.network.builder import build_model
    except ImportError as e:
        pytest.skip(f"model library not available: {e}")
    data = load_dataset("digits", resolution=32, seed=0)
    torch.manual_seed(0)
    arch = preset("shufflenet_v1", width_mult=0.5).with_io(input_size=32, num_classes=10,
                                                           in_channels=1)
    result = train_model(build_model(arch), data, TrainConfig(epochs=2), seed=0, threads=1)
    assert result.final_accuracy >= 0.6, result.history  # chance is 0.1


class DropoutNet(nn.Module):
    """Draws from the global RNG in training (dropout), so its result depends on the seed."""

    def __init__(self, data: DataSplits) -> None:
        super().__init__()
        self.body = small_cnn(data.in_channels, data.num_classes, width=8)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.drop(x))


def test_global_rng_untouched_and_results_reproducible(fake: DataSplits) -> None:
    cfg = TrainConfig(epochs=2, batch_size=32)
    results = []
    for caller_seed in (123, 456):  # the caller's global RNG must not matter either
        torch.manual_seed(0)
        model = DropoutNet(fake)
        torch.manual_seed(caller_seed)
        state = torch.get_rng_state()
        results.append(train_model(model, fake, cfg, seed=5, threads=1))
        assert torch.equal(torch.get_rng_state(), state)
    a, b = results
    assert [(h.train_loss, h.val_accuracy) for h in a.history] == [
        (h.train_loss, h.val_accuracy) for h in b.history]


def test_global_rng_restored_after_an_exception(fake: DataSplits) -> None:
    model = _model(fake)
    torch.manual_seed(9)
    state = torch.get_rng_state()

    def stop(r: EpochResult) -> None:
        raise Pruned(r.epoch)

    with pytest.raises(Pruned):
        train_model(model, fake, TrainConfig(epochs=3, batch_size=32), seed=0, on_epoch=stop,
                    threads=1)
    assert torch.equal(torch.get_rng_state(), state)


def test_contention_fields(fake: DataSplits) -> None:
    r = train_model(_model(fake), fake, TrainConfig(epochs=1, batch_size=32), seed=0, threads=1)
    assert r.threads == 1 and 0 < r.cpu_ratio <= (os.cpu_count() or 1) + 0.1  # process CPU
    assert r.wait_ratio is None or 0.0 <= r.wait_ratio <= 1.0
    assert r.contended == (r.wait_ratio > train_mod.CONTENDED_WAIT if r.wait_ratio is not None
                           else r.cpu_ratio < train_mod.CONTENDED_CPU)


def test_meter_ratios_and_threshold() -> None:
    m = train_mod._Meter(wall=2.0, thread_wall=4.0, cpu=3.0, run=700, wait=300)
    assert m.ratios()[0] == pytest.approx(0.75)
    cpu, wait, contended = m.ratios(threads=2)
    assert cpu == pytest.approx(0.75) and wait == pytest.approx(0.3) and contended
    m = train_mod._Meter(wall=2.0, cpu=1.0, run=900, wait=100)  # low CPU, but no waiting
    assert m.ratios(threads=2) == (pytest.approx(0.25), pytest.approx(0.1), False)
    no_sched = train_mod._Meter(wall=2.0, cpu=1.0, sched=False)
    assert no_sched.ratios(threads=1) == (pytest.approx(0.5), None, False)
    assert no_sched.ratios(threads=4)[2]  # 0.125 < CONTENDED_CPU


def test_one_warning_per_contended_trial(fake: DataSplits, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    cfg = TrainConfig(epochs=3, batch_size=32)
    monkeypatch.setattr(train_mod, "CONTENDED_WAIT", -1.0)  # every trial counts as contended
    monkeypatch.setattr(train_mod, "CONTENDED_CPU", 2.0)
    with pytest.warns(train_mod.ContendedWarning, match="ran contended") as record:
        r = train_model(_model(fake), fake, cfg, seed=0, threads=1)
    assert r.contended and len(record) == 1
    monkeypatch.setattr(train_mod, "CONTENDED_WAIT", 1.0)
    monkeypatch.setattr(train_mod, "CONTENDED_CPU", 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", train_mod.ContendedWarning)
        assert not train_model(_model(fake), fake, cfg, seed=0, threads=1).contended


def test_adapt_threads_steps_down_after_a_contended_epoch(
        fake: DataSplits, monkeypatch: pytest.MonkeyPatch) -> None:
    if train_mod.sched_times() is None:
        pytest.skip("no /proc schedstat on this system")
    before = torch.get_num_threads()
    cfg = TrainConfig(epochs=2, batch_size=32)
    seen: list[int] = []
    monkeypatch.setattr(train_mod, "CONTENDED_WAIT", -1.0)
    with pytest.warns(train_mod.ContendedWarning):
        r = train_model(_model(fake), fake, cfg, seed=0, threads=2, adapt_threads=True,
                        on_epoch=lambda _: seen.append(torch.get_num_threads()))
    assert seen == [1, 1] and r.threads == 1 and torch.get_num_threads() == before
    monkeypatch.setattr(train_mod, "CONTENDED_WAIT", 1.0)
    r = train_model(_model(fake), fake, cfg, seed=0, threads=2, adapt_threads=True)
    assert r.threads == 2 and r.adapted_at_step is None


def test_adapt_threads_steps_down_within_an_epoch(
        fake: DataSplits, monkeypatch: pytest.MonkeyPatch) -> None:
    """A competitor that starts mid-epoch is answered within a second, not an epoch."""
    if train_mod.sched_times() is None:
        pytest.skip("no /proc schedstat on this system")
    monkeypatch.setattr(train_mod, "CONTENDED_WAIT", -1.0)  # every window counts as contended
    monkeypatch.setattr(train_mod, "ADAPT_WINDOW", 0.0)  # and a window ends at every step
    threads: list[int] = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (threads.append(n), real(n)))
    fake = load_dataset("fake:960", resolution=12, seed=0)  # many steps per epoch
    with pytest.warns(train_mod.ContendedWarning):
        r = train_model(_model(fake), fake, TrainConfig(epochs=2, batch_size=32), seed=0,
                        threads=2, adapt_threads=True)
    # schedstat's run time advances at scheduler ticks, so a one-step window can read no run
    # time and decide nothing: the step-down comes at one of the first steps of epoch 1
    steps_per_epoch = len(fake.train_y) // 32
    assert r.adapted_at_step is not None and r.adapted_at_step < steps_per_epoch, \
        (r.adapted_at_step, steps_per_epoch)
    assert r.threads == 1 and threads[:2] == [2, 1]


def test_sched_times_sums_threads() -> None:
    t = train_mod.sched_times()
    if t is None:
        pytest.skip("no /proc schedstat on this system")
    sum(i * i for i in range(200_000))
    t2 = train_mod.sched_times()
    assert t2 is not None and t2[0] > t[0] and t2[1] >= t[1]
