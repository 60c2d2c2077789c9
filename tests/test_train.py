"""Tests for nasl.train: accuracy on digits, determinism, callbacks, NaN guard, threads."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasl.data import DataSplits, load_dataset
from nasl.errors import NaslError
from nasl.train import (
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
        from nasl.builder import build_model
        from nasl.families import preset
    except ImportError as e:
        pytest.skip(f"model library not available: {e}")
    data = load_dataset("digits", resolution=32, seed=0)
    torch.manual_seed(0)
    arch = preset("shufflenet_v1", width_mult=0.5).with_io(input_size=32, num_classes=10,
                                                           in_channels=1)
    result = train_model(build_model(arch), data, TrainConfig(epochs=2), seed=0, threads=1)
    assert result.final_accuracy >= 0.6, result.history  # chance is 0.1
