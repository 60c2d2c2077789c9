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
without schedstat, when the CPU ratio is below ``CONTENDED_CPU``). ``nasl`` sets (:mod:`nasl.hardware.omp`)
``OMP_WAIT_POLICY=PASSIVE`` so that a second training process costs a fair share, not 20x.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nasl.common.errors import NaslError
from nasl.common.signals import check as check_interrupt
from nasl.common.vocab import PRECISIONS
from nasl.data import DataSplits
from nasl.hardware import accel
from nasl.hardware import contention as _contention
from nasl.hardware.contention import ContendedWarning, Meter, Watch, warn_contended  # noqa: F401 (re-exported)
from nasl.training.augment import augment_batch, epoch_draws
from nasl.training.evaluation import correct, evaluate, model_device, prepare, recalibrate_bn  # noqa: F401

OPTIMIZERS = ("sgd", "adamw")
CONTENDED_WAIT = _contention.CONTENDED_WAIT
ADAPT_WINDOW = 1.0
"""Seconds of training between two contention checks of ``adapt_threads``."""
CONTENDED_CPU = _contention.CONTENDED_CPU
SYNC_EVERY = 32
"""Training steps between two NaN/inf checks of the loss (one host sync each, not one per step)."""


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
    precision: str = "fp32"  # auto | fp32 | bf16 | fp16 (autocast; fp16 with a gradient scaler)
    compile: bool = False  # torch.compile the training forward pass (compile time kept apart)

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
            ("precision", self.precision in PRECISIONS, f"one of {list(PRECISIONS)}"),
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
    device: str = "cpu"  # where it trained
    precision: str = "fp32"  # the resolved precision
    batch_size: int = 0  # the batch size it trained with
    compile_seconds: float = 0.0  # torch.compile's first step, not in train_seconds


_Meter = Meter  # (the name the tests use)
sched_times = _contention.sched_times


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
    The model trains where it is; ``data`` is moved there once (a no-op when it is there
    already: the search keeps a copy per device). Forward passes run under autocast when
    ``cfg.precision`` asks (fp16 with a gradient scaler); cuDNN autotunes on CUDA. The loss
    stays on the device: it is checked for NaN/inf every ``SYNC_EVERY`` steps and at the end
    of each epoch, not per step.
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
    Raises TrainingDiverged naming the first step whose loss was NaN or infinite.
    """
    n = len(data.train_y)
    if n == 0 or len(data.val_y) == 0:
        raise NaslError(f"data set {data.name}: empty train or validation split")
    old_threads = torch.get_num_threads()
    device = model_device(model)
    try:
        precision = accel.resolve_precision(cfg.precision, str(device))
    except ValueError as e:
        raise NaslError(f"train config: {e}") from None
    data = accel.on_device(data, device)
    task = None
    # Training draws from a fork of the global RNG: the caller's state is left unchanged.
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), accel.cudnn_autotune(device):
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
            scaler = accel.grad_scaler(precision, device.type)
            forward = torch.compile(model) if cfg.compile else model
            compile_seconds = 0.0
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
                    perm = torch.randperm(n, generator=gen).to(device)  # no copy on the CPU
                    losses = _Losses(epoch, step)
                    drawn = epoch_draws(steps_per_epoch, bs, min(data.train_x.shape[-2:]),
                                        cfg.augment, gen, device) \
                        if cfg.augment and device.type != "cpu" else None  # one copy per epoch
                    epoch_steps = 0
                    lr = peak
                    for i in range(steps_per_epoch):
                        check_interrupt()  # a SIGTERM deferred out of a finalizer stops here
                        if step >= total:
                            break
                        idx = perm[i * bs:(i + 1) * bs]
                        xb = prepare(data.train_x[idx], device, cfg.channels_last)
                        if cfg.augment:
                            xb = augment_batch(xb, cfg.augment, gen, drawn and
                                               {k: v[i] for k, v in drawn.items()})
                        yb = data.train_y[idx].to(device, non_blocking=True)
                        lr = peak * _lr_factor(step, warmup, total)
                        for g in opt.param_groups:
                            g["lr"] = lr
                        t_step = time.perf_counter() if cfg.compile and step == 0 else 0.0
                        with accel.autocast(precision, device.type):
                            loss = loss_fn(forward(xb), yb)
                        opt.zero_grad(set_to_none=True)
                        if scaler is None:
                            loss.backward()
                            if cfg.grad_clip is not None:
                                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                            opt.step()
                        else:
                            _scaled_step(scaler, loss, opt, model, cfg.grad_clip)
                        losses.add(loss)  # checked every SYNC_EVERY steps: no sync per step
                        if t_step:  # the first step compiled: its time is kept apart
                            accel.synchronize(device)
                            compile_seconds = time.perf_counter() - t_step
                            images -= len(idx)
                        step += 1
                        epoch_steps += 1
                        images += len(idx)
                        if task is not None:
                            progress.advance(task)
                        if (watch is not None and torch.get_num_threads() > 1
                                and watch.due_and_contended()):
                            torch.set_num_threads(1)  # threads waiting for cores: no barriers
                            adapted_at = step
                    losses.flush()  # raises TrainingDiverged; waits for the device's work
                    train_seconds += time.perf_counter() - t_epoch
                    epoch_wait = meter.stop()
                    if cfg.bn_recalibrate:
                        recal = perm[: min(n, cfg.bn_recalibrate_images)]
                        recalibrate_bn(model, data.train_x[recal], max(bs, 256), cfg.channels_last)
                    acc = evaluate(model, data.val_x, data.val_y, cfg.eval_batch_size,
                                   channels_last=cfg.channels_last)
                    result = EpochResult(epoch=epoch, train_loss=losses.total / max(1, epoch_steps),
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
                warn_contended(data.name, cpu_ratio, wait_ratio, used)
            train_seconds -= compile_seconds
            return TrainResult(
                final_accuracy=history[-1].val_accuracy,
                best_accuracy=max(r.val_accuracy for r in history),
                history=history, epochs=len(history), steps=step, seconds=wall,
                train_seconds=train_seconds,
                images_per_second=images / train_seconds if train_seconds > 0 else 0.0,
                cpu_wall_ratio=(time.process_time() - cpu0) / wall if wall > 0 else 0.0,
                threads=used, cpu_ratio=cpu_ratio, wait_ratio=wait_ratio, contended=contended,
                adapted_at_step=adapted_at, device=str(device), precision=precision,
                batch_size=bs, compile_seconds=compile_seconds,
            )
        finally:
            if task is not None:
                progress.remove_task(task)
            torch.set_num_threads(old_threads)


class _Losses:
    """An epoch's losses, kept on the device and checked for NaN/inf in groups of
    ``SYNC_EVERY`` (one host sync per group); ``total`` sums the checked ones."""

    def __init__(self, epoch: int, first_step: int) -> None:
        self.epoch, self.first, self.total = epoch, first_step, 0.0
        self.pending: list[torch.Tensor] = []

    def add(self, loss: torch.Tensor) -> None:
        self.pending.append(loss.detach())
        if len(self.pending) >= SYNC_EVERY:
            self.flush()

    def flush(self) -> None:
        """Check the pending losses → TrainingDiverged naming the first bad step (1-based)."""
        if not self.pending:
            return
        values = torch.stack(self.pending).double().cpu()
        bad = (~torch.isfinite(values)).nonzero()
        if len(bad):
            i = int(bad[0, 0])
            raise TrainingDiverged(f"loss is {float(values[i])}", epoch=self.epoch,
                                   step=self.first + i + 1)
        self.total += float(values.sum())
        self.first += len(self.pending)
        self.pending = []


def _scaled_step(scaler: Any, loss: torch.Tensor, opt: torch.optim.Optimizer, model: nn.Module,
                 grad_clip: float | None) -> None:
    """One fp16 optimiser step through the gradient scaler (gradients unscaled before clipping)."""
    scaler.scale(loss).backward()
    if grad_clip is not None:
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(opt)
    scaler.update()
