"""One candidate, start to finish: params → ArchConfig → costs → budget → latency → training.

In: a search space, the resolved settings and a sampled design. Out: the trial's record
(costs, latency, learning curve) or the reason it was rejected, stopped or failed. The
backends (Optuna, Ray) only decide *which* candidates to evaluate and where.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nasl.common.errors import NaslError
from nasl.common.vocab import COST_METRICS, STATIC_METRICS
from nasl.network.arch import ArchConfig

__all__ = ["COST_METRICS", "STATIC_METRICS", "Evaluator", "Settings", "Stopped", "TableEvaluator",
           "TrialOutOfMemory", "describe_violation", "make_evaluator", "seed_list", "static_costs",
           "trial_seed", "violations"]


class TrialOutOfMemory(RuntimeError):
    """A trial's training ran out of device memory, at its batch size and at half of it."""

    def __init__(self, device: str, batch_sizes: list[int], error: BaseException) -> None:
        text = str(error).strip()
        first = text.splitlines()[0][:200] if text else type(error).__name__
        tried = " and at ".join(str(b) for b in batch_sizes)
        super().__init__(f"out of memory on {device} at batch size {tried}: {first}")
        self.device, self.batch_sizes = device, batch_sizes


class Stopped(Exception):
    """Raised from the epoch callback to stop a trial early (recorded as PRUNED)."""

    def __init__(self, reason: str, epoch: int):
        super().__init__(reason)
        self.reason = reason
        self.epoch = epoch


@dataclass(frozen=True)
class Settings:
    """Everything a trial needs besides its design (resolved from space + CLI)."""

    objectives: tuple[tuple[str, str], ...]
    budgets: dict[str, float]
    data: str
    proxy_resolution: int
    val_fraction: float
    subset: int | None
    val_subset: int | None
    train: Any  # nasl.training.train.TrainConfig
    holdout_fraction: float = 0.0  # of the training split, set aside for the confirmation's claims
    device: str = "auto"
    latency_batch: int = 1
    dtype: str = "fp32"
    latency_warmup: int = 5
    latency_repeats: int = 20
    threads: int | None = None
    train_device: str = "auto"  # where trials train; resolved by each process (nasl.hardware.accel)
    latency_threads: int = 1
    seed: int = 0
    early_stop: bool = True
    early_stop_margin: float = 0.02
    seeds: int = 1  # seeds each trial trains with (the first one is the trial's seed)
    runtime: str = "torch"  # where latency is measured: torch | onnxruntime | torch.compile
    adapt_threads: bool = True  # 1 thread for the rest of a trial whose threads wait for cores
    remote: Any = None  # a nasl.latency.remote.RemoteTarget: latency measured there
    ray_resource: str | None = None  # Ray: latency timed on a node with this custom resource

    @property
    def cost_objectives(self) -> tuple[str, ...]:
        return tuple(m for m, _ in self.objectives if m != "accuracy")

    @property
    def needs_latency(self) -> bool:
        return "latency_ms" in self.budgets or "latency_ms" in dict(self.objectives)


def trial_seed(seed: int, number: int) -> int:
    """Per-trial seed from (study seed, trial number), recorded with the trial."""
    return (seed * 1_000_003 + number * 7919 + 17) % (2**31 - 1)


def seed_list(seed: int, k: int, start: int = 0) -> list[int]:
    """``k`` training seeds of a design whose trial seed is ``seed``: ``seed`` itself first,
    then seeds derived from it (``start`` skips the first ones, e.g. those already trained)."""
    return [seed if i == 0 else (seed + i * 104_729) % (2**31 - 1) for i in range(start, start + k)]


def static_costs(arch: Any) -> dict[str, float]:
    """MACs, params and size of the target network, analytically (microseconds); for a row
    of a tabular space (:class:`nasl.space.table.TableRow`) the ones its table gives."""
    from nasl.network.cost import costs
    from nasl.space.table import TableRow

    if isinstance(arch, TableRow):
        return arch.static_costs()

    return dict(costs(arch))


def violations(measured: dict[str, Any], budgets: dict[str, float],
               metrics: tuple[str, ...]) -> dict[str, float]:
    """``metric → value - budget`` for every budget in ``metrics`` that is exceeded."""
    return {m: float(measured[m]) - b for m, b in budgets.items()
            if m in metrics and measured.get(m) is not None and float(measured[m]) > b}


def describe_violation(measured: dict[str, Any], budgets: dict[str, float],
                       over: dict[str, float]) -> str:
    from nasl.common.units import format_budget

    parts = [f"{m} {format_budget(m, float(measured[m]))} > {format_budget(m, budgets[m])}"
             for m in over]
    return "over budget: " + "; ".join(parts)


def latency_task_options(settings: Settings) -> dict[str, Any] | None:
    """Ray options that place a latency measurement on the node holding the custom resource
    ``target.ray_resource`` (one unit: one measurement at a time per unit there); None when
    there is none or Ray is not running (then latency is measured here)."""
    if not settings.ray_resource:
        return None
    import sys

    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    return {"resources": {settings.ray_resource: 1}, "num_cpus": 1, "max_retries": 0}


def _measure(ev: Evaluator, arch: ArchConfig, repeats: int | None) -> Any:
    """Module-level (picklable) Ray task: ``ev.latency(arch)`` on the node it runs on."""
    return ev.latency(arch, repeats=repeats)


@dataclass
class Evaluator:
    """Evaluates candidates of one space under one set of settings (data cached per size)."""

    space: Any  # nasl.space.SearchSpace
    settings: Settings
    _data: dict[Any, Any] = field(default_factory=dict)
    _device: str | None = None  # the resolved training device of this process

    def target(self, params: dict[str, Any]) -> ArchConfig:
        try:
            return self.space.to_arch(params)
        except ValueError as e:
            raise NaslError(f"{self.space.name}: design {params} cannot be built: {e}") from None

    def data(self, resolution: int, split: str = "search") -> Any:
        """Proxy data at ``resolution`` (loaded once per resolution and split). ``split``:
        ``search`` (train / validation, the holdout set aside) or ``confirm`` (train on both,
        score on the holdout; without a holdout, the search's split)."""
        s = self.settings
        if split == "confirm" and s.holdout_fraction <= 0:
            split = "search"
        key = resolution if split == "search" else (resolution, split)
        if key not in self._data:
            from nasl.data import load_dataset

            self._data[key] = load_dataset(
                s.data, resolution=resolution, seed=s.seed, val_fraction=s.val_fraction,
                subset=s.subset, val_subset=s.val_subset, split=split,
                holdout_fraction=s.holdout_fraction)
        return self._data[key]

    def proxy(self, params: dict[str, Any]) -> tuple[ArchConfig, Any]:
        """The proxy network (proxy resolution × ρ, the data set's classes) and its data."""
        res = self.space.proxy_arch(params, 1, 3).input_size
        data = self.data(res)
        return self.space.proxy_arch(params, data.num_classes, data.in_channels), data

    def latency(self, arch: ArchConfig, *, repeats: int | None = None) -> Any:
        """Latency of the target network on the target device, measured alone (on the remote
        target when one is set: ``RemoteUnavailable`` when it cannot be reached)."""
        from nasl.latency.timing import measure_latency
        from nasl.network.builder import build_model

        s = self.settings
        options = latency_task_options(s)
        if options is not None:  # a Ray task on the node holding target.ray_resource
            import ray

            alone = Evaluator(self.space, dataclasses.replace(s, ray_resource=None))
            return ray.get(ray.remote(**options)(_measure).remote(alone, arch, repeats))
        if s.remote is not None:
            return s.remote.measure(build_model(arch, seed=0),
                                    (arch.in_channels, arch.input_size, arch.input_size),
                                    batch_size=s.latency_batch, dtype=s.dtype,
                                    warmup=s.latency_warmup, repeats=repeats or s.latency_repeats,
                                    threads=s.latency_threads)
        return measure_latency(build_model(arch, seed=0),
                               (arch.in_channels, arch.input_size, arch.input_size),
                               device=s.device, batch_size=s.latency_batch, dtype=s.dtype,
                               warmup=s.latency_warmup, repeats=repeats or s.latency_repeats,
                               threads=s.latency_threads, runtime=s.runtime)

    def train_device(self) -> str:
        """Where this process trains: ``settings.train_device`` resolved here (once)."""
        if self._device is None:
            from nasl.hardware.accel import resolve_train_device

            try:
                self._device = resolve_train_device(self.settings.train_device)
            except ValueError as e:
                raise NaslError(f"--train-device {self.settings.train_device}: {e}") from None
        return self._device

    def train_data(self, resolution: int, split: str = "search") -> Any:
        """:meth:`data` on the training device (moved once and kept; the same object on the CPU)."""
        from nasl.hardware.accel import on_device

        key = ("device", resolution, split)
        if key not in self._data:
            self._data[key] = on_device(self.data(resolution, split), self.train_device())
        return self._data[key]

    def train(self, params: dict[str, Any], seed: int,
              on_epoch: Callable[[Any], None] | None = None) -> Any:
        """Build the proxy network with ``seed`` and train it on the training device →
        ``TrainResult``. Out of memory: once more at half the batch (unless an epoch was
        already reported), then ``TrialOutOfMemory`` (the trial fails, the search goes on)."""
        arch, _ = self.proxy(params)
        data = self.train_data(arch.input_size)
        return self._fit(arch, data, self.settings.train, seed, on_epoch)

    def confirm_train(self, params: dict[str, Any], seed: int, epochs: int,
                      recipe: Any) -> tuple[float, Any]:
        """Train the proxy network with ``seed`` for ``epochs`` under ``recipe``
        (:class:`nasl.training.recipes.Recipe`) on the confirmation split, on the same device and in
        the same precision as :meth:`train` → (holdout accuracy, each holdout image's result
        as a bool tensor on the CPU)."""
        from nasl.training.train import correct

        arch, _ = self.proxy(params)
        data = self.train_data(self.space.proxy_arch(params, 1, 3).input_size, "confirm")
        cfg = dataclasses.replace(self.settings.train, epochs=epochs, max_steps=None,
                                  **recipe.train_kwargs())
        model = self._fit(arch, data, cfg, seed, None, keep_model=True)
        mask = correct(model, data.val_x, data.val_y, cfg.eval_batch_size)
        return float(mask.float().mean()), mask

    def _fit(self, arch: ArchConfig, data: Any, cfg: Any, seed: int,
             on_epoch: Callable[[Any], None] | None, *, keep_model: bool = False) -> Any:
        """Build and train (the TrainResult, or the trained model with ``keep_model``).

        Each epoch holds the training device's lock shared (and the CPU's): latency
        (exclusive) never times beside training, and waits at most one epoch."""
        from nasl.hardware.accel import is_out_of_memory, release_memory
        from nasl.hardware.devices import training_lock
        from nasl.network.builder import build_model
        from nasl.training.train import ContendedWarning, train_model

        device, reported, tried = self.train_device(), [0], []

        def counted(ep: Any) -> None:
            reported[0] += 1
            if on_epoch is not None:
                on_epoch(ep)

        for attempt in (1, 2):
            tried.append(cfg.batch_size)
            model = build_model(arch, seed=seed).to(device)
            try:
                with warnings.catch_warnings():  # recorded per trial (contended, cpu_ratio)
                    warnings.simplefilter("ignore", ContendedWarning)  # and summed in the report
                    result = train_model(model, data, cfg, seed=seed, on_epoch=counted,
                                         threads=self.settings.threads,
                                         adapt_threads=self.settings.adapt_threads,
                                         epoch_guard=lambda: training_lock(device))
                return model if keep_model else result
            except Exception as e:
                if not is_out_of_memory(e):
                    raise
                del model
                release_memory(device)
                if attempt == 2 or reported[0] or cfg.batch_size < 2:
                    raise TrialOutOfMemory(device, tried, e) from None
                cfg = dataclasses.replace(cfg, batch_size=cfg.batch_size // 2)
        raise AssertionError("unreachable")

    def train_seeds(self, params: dict[str, Any], seeds: list[int]) -> list[float]:
        """Final accuracy of the design trained once per seed in ``seeds`` (no early stop)."""
        return [float(self.train(params, s).final_accuracy) for s in seeds]


@dataclass(frozen=True)
class TableLatency:
    """A latency looked up in a table (duck-types :class:`nasl.latency.timing.Latency` for the record)."""

    median_ms: float
    device: str
    device_name: str

    @property
    def p10_ms(self) -> float:
        return self.median_ms

    @property
    def p90_ms(self) -> float:
        return self.median_ms

    def to_dict(self) -> dict[str, Any]:
        return {"median_ms": self.median_ms, "device": self.device, "device_name": self.device_name,
                "source": "table"}


@dataclass(frozen=True)
class TableResult:
    """What looking a design up gives in place of a ``TrainResult`` (accuracies as fractions)."""

    final_accuracy: float
    best_accuracy: float
    epochs: int = 1
    images_per_second: float | None = None


@dataclass(frozen=True)
class TableEpoch:
    """The one "epoch" of a looked-up design (what ``on_epoch`` callbacks read)."""

    epoch: int
    val_accuracy: float
    train_loss: float = float("nan")  # nothing was trained


@dataclass
class TableEvaluator(Evaluator):
    """Evaluates candidates of a tabular space (``family: table``) by looking them up: the
    same calls as :class:`Evaluator` (search, confirmation with seeds, re-timing), no data,
    no training. Accuracy per seed carries the table's seeded noise (``table.noise``)."""

    def data(self, resolution: int) -> Any:
        return None

    def latency(self, arch: Any, *, repeats: int | None = None) -> Any:
        spec = self.space.spec
        if arch.missing or "latency_ms" not in arch.values:
            raise NaslError(f"{self.space.source}: design {arch.id} has no latency_ms in "
                            f"{spec.file}; expected a 'latency_ms' column under table.metrics")
        return TableLatency(float(arch.values["latency_ms"]), f"table:{spec.device or 'latency_ms'}",
                            f"looked up in {spec.file}")

    def train(self, params: dict[str, Any], seed: int,
              on_epoch: Callable[[Any], None] | None = None) -> Any:
        """Look the design up → a :class:`TableResult` (one epoch reported to ``on_epoch``)."""
        row = self.space.to_arch(params)
        if row.missing:
            raise LookupError(f"design not in {self.space.spec.file}")
        acc = row.accuracy(seed)
        if on_epoch is not None:
            on_epoch(TableEpoch(1, acc))
        return TableResult(acc, acc)

    def confirm_train(self, params: dict[str, Any], seed: int, epochs: int,
                      recipe: Any) -> tuple[float, Any]:
        """The confirmation stage's training, looked up: (accuracy with ``seed``'s noise, None:
        a table has no per-image results). ``epochs`` and ``recipe`` do not change a lookup."""
        return float(self.train(params, seed).final_accuracy), None


def make_evaluator(space: Any, settings: Settings) -> Evaluator:
    """The evaluator of ``space``: :class:`TableEvaluator` for a tabular space, else
    :class:`Evaluator` (training)."""
    return (TableEvaluator if getattr(space, "family", None) == "table" else Evaluator)(space, settings)
