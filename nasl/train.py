"""Short, honest proxy training on tensors in memory.

``train_model(model, data, cfg, seed=...)`` trains with SGD (nesterov) or AdamW, a short
linear warm-up and a per-step cosine schedule to zero, label smoothing, no weight decay on
BN and biases, channels_last, and evaluates the validation split in eval mode after every
epoch. Before each evaluation the BN running statistics are recomputed on a few training
batches (``bn_recalibrate``): on small data sets the running averages lag far behind the
weights (see reference/proxy.md). Same seed, same thread count -> the same accuracies; the
caller's global RNG state is left unchanged (training draws from a forked RNG, like
``build_model``).

Contention: every trial records ``cpu_ratio`` (process CPU time over wall time over threads
while the training steps ran) and ``wait_ratio`` (the share of its threads' time spent
runnable but waiting for a core, from Linux schedstat); ``contended`` is set and a
``ContendedWarning`` issued once per trial when the wait ratio exceeds ``CONTENDED_WAIT`` (or,
without schedstat, when the CPU ratio is below ``CONTENDED_CPU``). ``import nasl`` sets
``OMP_WAIT_POLICY=PASSIVE`` so that a second training process costs a fair share, not 20x.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nasl import contention as _contention
from nasl.augment import augment_batch
from nasl.contention import Meter, Watch
from nasl.data import DataSplits
from nasl.errors import NaslError
from nasl.signals import check as check_interrupt

OPTIMIZERS = ("sgd", "adamw")
CONTENDED_WAIT = _contention.CONTENDED_WAIT
ADAPT_WINDOW = 1.0
"""Seconds of training between two contention checks of ``adapt_threads``."""
CONTENDED_CPU = _contention.CONTENDED_CPU


class ContendedWarning(UserWarning):
    """Training shared its cores with other processes; its timings are inflated."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; ``epoch`` (1-based) and ``step`` say where."""

    def __init__(self, reason: str, *, epoch: int, step: int) -> None:
        super().__init__(f"training diverged at epoch {epoch}, step {step}: {reason}")
        self.reason = reason
        self.epoch = epoch
        self.step = step


@dataclass(frozen=True)
class TrainConfig:
    """Proxy-training recipe. ``lr=None`` means 0.1 for SGD and 1e-3 for AdamW."""

    epochs: int = 10
    batch_size: int = 64
    lr: float | None = None
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 4e-5
    label_smoothing: float = 0.1
    optimizer: str = "sgd"
    warmup_epochs: float = 0.3
    channels_last: bool = True
    max_steps: int | None = None
    bn_recalibrate: bool = True
    bn_recalibrate_images: int = 512
    grad_clip: float | None = None
    eval_batch_size: int = 512
    augment: tuple[str, ...] = ()  # "crop" (zero padding side/8) and/or "flip" (horizontal)

    def __post_init__(self) -> None:
        checks = [
            ("epochs", self.epochs >= 1, "an integer >= 1"),
            ("batch_size", self.batch_size >= 1, "an integer >= 1"),
            ("lr", self.lr is None or self.lr > 0, "a positive number"),
            ("optimizer", self.optimizer in OPTIMIZERS, f"one of {list(OPTIMIZERS)}"),
            ("warmup_epochs", self.warmup_epochs >= 0, "a number >= 0"),
            ("max_steps", self.max_steps is None or self.max_steps >= 1, "None or >= 1"),
            ("weight_decay", self.weight_decay >= 0, "a number >= 0"),
            ("label_smoothing", 0 <= self.label_smoothing < 1, "a number in [0, 1)"),
            ("grad_clip", self.grad_clip is None or self.grad_clip > 0, "None or > 0"),
            ("bn_recalibrate_images", self.bn_recalibrate_images >= 1, "an integer >= 1"),
            ("eval_batch_size", self.eval_batch_size >= 1, "an integer >= 1"),
            ("augment", all(a in ("crop", "flip") for a in self.augment),
             "a tuple of 'crop' and/or 'flip'"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise NaslError(f"train config {name}={getattr(self, name)!r}; expected "
                                f"{expected}")

    @property
    def learning_rate(self) -> float:
        """The peak learning rate actually used."""
        if self.lr is not None:
            return self.lr
        return 0.1 if self.optimizer == "sgd" else 1e-3


@dataclass(frozen=True)
class EpochResult:
    """One epoch: mean train loss, eval-mode validation accuracy (0..1), wall seconds."""

    epoch: int
    train_loss: float
    val_accuracy: float
    seconds: float
    steps: int = 0
    lr: float = 0.0


@dataclass(frozen=True)
class TrainResult:
    """Outcome of ``train_model``; accuracies are fractions in 0..1.

    ``images_per_second`` counts training images over the time of the training steps only
    (no evaluation); ``cpu_wall_ratio`` is process CPU time over wall time of the whole call
    (about the thread count when the machine was not contended). Measured over the training
    steps only (not evaluation, not waits for ``epoch_guard``): ``cpu_ratio`` = process CPU
    time / (wall time x threads, per epoch) (1.0: every thread computed all the time; lower: the threads
    waited, for a core or for each other); ``wait_ratio`` = time the process's threads spent
    runnable but waiting for a core / (that + their run time), from /proc schedstat (None
    where unavailable); ``contended``: ``wait_ratio > CONTENDED_WAIT`` (without schedstat:
    ``cpu_ratio < CONTENDED_CPU``). ``threads``: the count at the end (1 after
    ``adapt_threads`` stepped down, at ``adapted_at_step``).
    """

    final_accuracy: float
    best_accuracy: float
    history: list[EpochResult] = field(default_factory=list)
    epochs: int = 0
    steps: int = 0
    seconds: float = 0.0
    train_seconds: float = 0.0
    images_per_second: float = 0.0
    cpu_wall_ratio: float = 0.0
    threads: int = 0
    cpu_ratio: float = 0.0
    wait_ratio: float | None = None
    contended: bool = False
    adapted_at_step: int | None = None  # the step after which adapt_threads went to 1 thread


_Meter = Meter  # (the name the tests use)
sched_times = _contention.sched_times


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _is_channels_last(model: nn.Module) -> bool:
    for p in model.parameters():
        if p.dim() != 4:
            continue
        cl, plain = p.is_contiguous(memory_format=torch.channels_last), p.is_contiguous()
        if cl != plain:  # both hold for 1-channel or 1x1 weights: look further
            return cl
    return False


def _prepare(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512,
             *, channels_last: bool | None = None) -> float:
    """Eval-mode accuracy (0..1) of ``model`` on images ``x`` and labels ``y``, batched.

    ``channels_last=None`` follows the memory format of the model's weights. The model's
    train/eval mode is restored afterwards.
    """
    return float(correct(model, x, y, batch_size, channels_last=channels_last).float().mean())


def correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512,
            *, channels_last: bool | None = None) -> torch.Tensor:
    """Per image, whether the eval-mode ``model`` classifies it right (bool, on the CPU)."""
    if len(y) == 0:
        raise ValueError("evaluate: no samples")
    device = _model_device(model)
    cl = _is_channels_last(model) if channels_last is None else channels_last
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode():
            for start in range(0, len(y), batch_size):
                logits = model(_prepare(x[start:start + batch_size], device, cl))
                out.append(logits.argmax(dim=1).cpu() == y[start:start + batch_size])
    finally:
        model.train(was_training)
    return torch.cat(out)


def _bn_modules(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: torch.Tensor, batch_size: int,
                   channels_last: bool) -> None:
    """Recompute BN running mean/var as plain averages over the batches of ``x``."""
    bns = _bn_modules(model)
    if not bns or len(x) == 0:
        return
    device = _model_device(model)
    momenta = [m.momentum for m in bns]
    was_training = model.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    try:
        for start in range(0, len(x), batch_size):
            part = x[start:start + batch_size]
            if len(part) > 1:
                model(_prepare(part, device, channels_last))
    finally:
        for m, mom in zip(bns, momenta, strict=True):
            m.momentum = mom
        model.train(was_training)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.dim() <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def _lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from 1 to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def train_model(model: nn.Module, data: DataSplits, cfg: TrainConfig, *, seed: int,
                on_epoch: Callable[[EpochResult], None] | None = None,
                threads: int | None = None, progress: Any = None,
                epoch_guard: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
                adapt_threads: bool = False) -> TrainResult:
    """Train ``model`` on ``data.train_*`` and validate on ``data.val_*`` -> TrainResult.

    ``on_epoch`` gets each EpochResult; whatever it raises propagates unchanged.
    ``threads`` fixes torch's intra-op threads for the call (restored afterwards).
    ``progress`` is an optional rich ``Progress``; a task advances per step.
    ``epoch_guard``: a context manager factory held around each epoch's training and
    evaluation, not around ``on_epoch`` (the search's shared CPU lock, re-taken per epoch so
    a latency measurement waits at most one epoch).
    ``adapt_threads``: as soon as a second of training (or an epoch) had the threads waiting
    for a core more than ``CONTENDED_WAIT`` of the time, train the rest at 1 thread (beside
    another computing process 1 thread trains faster than 2 that wait for each other at
    every barrier; see docs/benchmarks.md, "Busy machines"). Off by default here: the thread
    count changes the floating-point sums, so results then depend on the load
    (``TrainResult.adapted_at_step`` says when it happened).
    Raises TrainingDiverged as soon as a loss is NaN or infinite.
    """
    n = len(data.train_y)
    if n == 0 or len(data.val_y) == 0:
        raise NaslError(f"data set {data.name}: empty train or validation split")
    old_threads = torch.get_num_threads()
    device = _model_device(model)
    task = None
    # Training draws from a fork of the global RNG: the caller's state is left unchanged.
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        try:
            if threads is not None:
                torch.set_num_threads(threads)
            torch.manual_seed(seed)
            gen = torch.Generator().manual_seed(seed)
            if cfg.channels_last:
                model.to(memory_format=torch.channels_last)
            bs = min(cfg.batch_size, n)
            steps_per_epoch = n // bs  # drop the last partial batch; the permutation varies
            total = cfg.epochs * steps_per_epoch
            if cfg.max_steps is not None:
                total = min(total, cfg.max_steps)
            epochs = math.ceil(total / steps_per_epoch)
            warmup = min(round(cfg.warmup_epochs * steps_per_epoch), total // 4)
            peak = cfg.learning_rate
            if cfg.optimizer == "sgd":
                opt: torch.optim.Optimizer = torch.optim.SGD(
                    _param_groups(model, cfg.weight_decay), lr=peak, momentum=cfg.momentum,
                    nesterov=cfg.nesterov and cfg.momentum > 0)
            else:
                opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=peak)
            loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
            if progress is not None:
                task = progress.add_task(f"train {data.name}", total=total)

            history: list[EpochResult] = []
            step = 0
            watch = Watch(ADAPT_WINDOW, CONTENDED_WAIT) if adapt_threads else None
            adapted_at: int | None = None
            train_seconds = 0.0
            images = 0
            meter = Meter()
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for epoch in range(1, epochs + 1):
                with epoch_guard() if epoch_guard is not None else contextlib.nullcontext():
                    t_epoch = time.perf_counter()
                    meter.start(torch.get_num_threads())
                    if watch is not None:
                        watch.restart()
                    model.train()
                    perm = torch.randperm(n, generator=gen)
                    loss_sum = torch.zeros((), dtype=torch.float64)
                    epoch_steps = 0
                    lr = peak
                    for i in range(steps_per_epoch):
                        check_interrupt()  # a SIGTERM deferred out of a finalizer stops here
                        if step >= total:
                            break
                        idx = perm[i * bs:(i + 1) * bs]
                        xb = _prepare(data.train_x[idx], device, cfg.channels_last)
                        if cfg.augment:
                            xb = augment_batch(xb, cfg.augment, gen)
                        yb = data.train_y[idx].to(device, non_blocking=True)
                        lr = peak * _lr_factor(step, warmup, total)
                        for g in opt.param_groups:
                            g["lr"] = lr
                        loss = loss_fn(model(xb), yb)
                        value = float(loss.detach())
                        if not math.isfinite(value):
                            raise TrainingDiverged(f"loss is {value}", epoch=epoch, step=step + 1)
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        if cfg.grad_clip is not None:
                            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                        opt.step()
                        loss_sum += value
                        step += 1
                        epoch_steps += 1
                        images += len(idx)
                        if task is not None:
                            progress.advance(task)
                        if (watch is not None and torch.get_num_threads() > 1
                                and watch.due_and_contended()):
                            torch.set_num_threads(1)  # threads waiting for cores: no barriers
                            adapted_at = step
                    train_seconds += time.perf_counter() - t_epoch
                    epoch_wait = meter.stop()
                    if cfg.bn_recalibrate:
                        recal = perm[: min(n, cfg.bn_recalibrate_images)]
                        recalibrate_bn(model, data.train_x[recal], max(bs, 256), cfg.channels_last)
                    acc = evaluate(model, data.val_x, data.val_y, cfg.eval_batch_size,
                                   channels_last=cfg.channels_last)
                    result = EpochResult(epoch=epoch, train_loss=float(loss_sum) / max(1, epoch_steps),
                                         val_accuracy=acc, seconds=time.perf_counter() - t_epoch,
                                         steps=epoch_steps, lr=lr)
                    history.append(result)
                if (adapt_threads and epoch_wait is not None and epoch_wait > CONTENDED_WAIT
                        and torch.get_num_threads() > 1):
                    torch.set_num_threads(1)  # threads waiting for cores: no barriers
                    adapted_at = step
                if on_epoch is not None:
                    on_epoch(result)
            wall = time.perf_counter() - wall0
            model.eval()
            used = torch.get_num_threads()
            cpu_ratio, wait_ratio, contended = meter.ratios(wait_limit=CONTENDED_WAIT,
                                                            cpu_limit=CONTENDED_CPU)
            if contended:
                _warn_contended(data.name, cpu_ratio, wait_ratio, used)
            return TrainResult(
                final_accuracy=history[-1].val_accuracy,
                best_accuracy=max(r.val_accuracy for r in history),
                history=history, epochs=len(history), steps=step, seconds=wall,
                train_seconds=train_seconds,
                images_per_second=images / train_seconds if train_seconds > 0 else 0.0,
                cpu_wall_ratio=(time.process_time() - cpu0) / wall if wall > 0 else 0.0,
                threads=used, cpu_ratio=cpu_ratio, wait_ratio=wait_ratio, contended=contended,
                adapted_at_step=adapted_at,
            )
        finally:
            if task is not None:
                progress.remove_task(task)
            torch.set_num_threads(old_threads)


def _warn_contended(name: str, cpu_ratio: float, wait_ratio: float | None, threads: int) -> None:
    """Issue one ContendedWarning for a trial whose training shared its cores."""
    waited = f"its threads waited for a core {wait_ratio:.0%} of the time, " if wait_ratio else ""
    hint = ""
    if threads > 1 and (os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE"
                        or _torch_first()):
        hint = ("; OpenMP threads spin while waiting (set OMP_WAIT_POLICY=PASSIVE before torch "
                "is imported, or import nasl first)")
    plural = "s" if threads > 1 else ""
    warnings.warn(f"training on {name} ran contended: {waited}CPU/wall per thread "
                  f"{cpu_ratio:.2f} at {threads} thread{plural}; its timings are inflated{hint}",
                  ContendedWarning, stacklevel=3)


def _torch_first() -> bool:
    import nasl

    return bool(getattr(nasl, "TORCH_IMPORTED_FIRST", False))
