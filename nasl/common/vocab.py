"""The project's vocabulary, in one place (no torch): metrics and their directions, samplers,
dtypes, data-set kinds and trial states.

Every list of these names elsewhere (schema validation, CLI choices, Optuna directions,
trials.csv columns) is derived from here, so adding a metric or a sampler is one edit.
"""

from __future__ import annotations

#: Objective metrics a space may optimise (``accuracy`` is maximised, the costs minimised).
METRICS = ("accuracy", "macs", "params", "size_mb", "latency_ms")
#: Cost metrics (all minimised); budgets may be set on each.
COST_METRICS = ("macs", "params", "size_mb", "latency_ms")
#: Costs known from the architecture alone, in microseconds, before anything is built.
STATIC_METRICS = ("macs", "params", "size_mb")
#: Default direction of each metric, Optuna's spelling.
DEFAULT_DIRECTION = {"accuracy": "maximize", **{m: "minimize" for m in COST_METRICS}}
#: Direction spellings accepted in YAML / CLI → Optuna's spelling.
DIRECTIONS = {"min": "minimize", "max": "maximize", "minimize": "minimize", "maximize": "maximize"}

#: Optuna samplers by name (``nasl search --sampler``).
SAMPLERS = ("tpe", "nsga2", "nsga3", "gp", "random", "pick")
#: Trial schedulers by name (``nasl search --scheduler``).
SCHEDULERS = ("auto", "none", "front", "asha", "asha-strict")
#: The scheduler ``nasl search`` uses unless told (see docs/search.md for why): ``auto`` is
#: ``asha`` when trials train at least ``AUTO_ASHA_EPOCHS`` epochs, else ``front``.
DEFAULT_SCHEDULER = "auto"
#: Zero-cost proxy the pre-screen ranks with by default: ``auto`` tries each of
#: ``nasl.zerocost.PROXIES`` on the run's own trials (Bonferroni-corrected), because which one
#: works depends on the space: naswot on ShuffleNet, synflow on MobileNet (docs/benchmarks.md).
DEFAULT_PRESCREEN_PROXY = "auto"
#: Epochs per trial from which ``auto`` means successive halving (the benchmark behind the
#: choice ran at 9 epochs, rungs at 1 and 3; docs/benchmarks.md).
AUTO_ASHA_EPOCHS = 9

#: Runtimes latency can be measured in (``target.runtime`` / ``--runtime``).
RUNTIMES = ("torch", "onnxruntime", "torch.compile")

#: Target dtypes: YAML spelling → the short name used in records and by :mod:`nasl.latency.timing`.
DTYPES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}

#: Training precisions (``proxy.precision`` / ``--precision``): auto = bf16 on a GPU that
#: supports it, fp32 elsewhere (:mod:`nasl.hardware.accel`).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: The form of a device name (``proxy.device``, ``target.device``, ``--train-device``).
DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?|mps"

#: Data-set kinds of ``proxy.dataset`` / ``--data``; those in :data:`DATASET_KINDS_WITH_PATH`
#: need ``KIND:PATH``.
DATASET_KINDS_WITH_PATH = ("cifar10", "cifar100", "imagefolder", "npz")
DATASET_KINDS = ("fmnist-mini", "digits", "fashion-mnist", "fake", *DATASET_KINDS_WITH_PATH)
#: The embedded default proxy data set (a Fashion-MNIST subset shipped with nasl).
DEFAULT_DATASET = "fmnist-mini"

#: Optuna trial states that a trained trial ends in.
TRAINED_STATES = ("COMPLETE", "PRUNED", "FAIL")
#: Trial states of trials that have not ended.
OPEN_STATES = ("RUNNING", "WAITING")


def direction(spelling: str) -> str:
    """``'min'``/``'max'``/``'minimize'``/``'maximize'`` → Optuna's spelling (KeyError if unknown)."""
    return DIRECTIONS[spelling]


#: Designs whose kernels (not the whole) ``nasl latency calibrate`` measures by default: on
#: this project's CPU (2026-12-06, docs/benchmarks.md) MobileNet's held-out share within ±10 % rose from 74 %
#: (40) to 90 % (150) and 98 % (400, 49 s of kernel timing); ShuffleNet's from 48 % to 82 %
#: and 56 % (its kernel sum is off by up to ±11 % even on calibration designs).
KERNEL_DESIGNS = 400
