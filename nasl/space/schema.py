"""Typed pieces of a search space: target, proxy, search defaults, objectives, parameters.

In: plain values read from YAML plus a :class:`~nasl.space.yamlsafe.Locator`. Out: frozen
objects; every problem is a one-line NaslError naming file, line, key path, value and what
is expected. Sections with fixed keys are pydantic models (unknown keys forbidden).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nasl.common import vocab
from nasl.space.scalars import ParamValue, fmt_value, on_grid
from nasl.space.yamlsafe import KeyPath, Locator, did_you_mean, unknown_key
from nasl.training import recipes

OBJECTIVE_METRICS = vocab.METRICS
DEFAULT_OBJECTIVES = (("accuracy", "max"), ("macs", "min"), ("latency_ms", "min"))
# kept in step with nasl.data (which imports torch; the space must not)
DATASET_KINDS = vocab.DATASET_KINDS
SAMPLERS = vocab.SAMPLERS


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Target(_Section):
    """What costs are measured on: input side at ρ = 1, classes, device, batch, dtype, and
    the deployment ``runtime`` latency is timed in (torch eager, onnxruntime, torch.compile)."""

    input_size: int = Field(224, ge=8, le=4096)
    num_classes: int = Field(1000, ge=1)
    device: str = "auto"
    batch_size: int = Field(1, ge=1)
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    runtime: Literal["torch", "onnxruntime", "torch.compile"] = "torch"
    # a remote target (``nasl latency serve`` on the device; docs/remote-latency.md)
    remote: str | None = None  # HOST:PORT
    token_file: str | None = None  # the shared secret (chmod 600)
    required: bool = False  # the search stops when the remote target is gone
    ray_resource: str | None = None  # Ray custom resource of the node that times latency

    _device = field_validator("device")(classmethod(lambda cls, v: _check_device(v)))

    @field_validator("remote")
    @classmethod
    def _remote(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):\d{1,5}", v):
            raise ValueError("expected HOST:PORT, e.g. jetson.local:8765")
        return v


def _check_device(v: str) -> str:
    if not re.fullmatch(vocab.DEVICE_PATTERN, v):
        raise ValueError("expected auto, cpu, cuda, cuda:<index> or mps")
    return v


class Proxy(_Section):
    """How accuracy is estimated: data set, resolution at ρ = 1, short training recipe.

    ``lr: null`` means the optimiser's default (0.1 for SGD, 1e-3 for AdamW).
    """

    dataset: str = vocab.DEFAULT_DATASET
    resolution: int = Field(32, ge=4, le=1024)  # proxy data is held in memory at this size
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    recipe: str = recipes.DEFAULT_RECIPE  # named recipe (nasl.training.recipes); the keys below override it
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float | None = Field(None, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(4e-5, ge=0)
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    warmup_epochs: float = Field(0.3, ge=0)
    augment: str | list[str] | None = None  # none | crop | flip | crop+flip (default: the recipe's)
    subset: int | None = Field(None, ge=1)
    val_subset: int | None = Field(None, ge=1)
    val_fraction: float = Field(0.2, gt=0, lt=1)
    holdout_fraction: float = Field(0.2, ge=0, lt=1)  # of the training split, for the claims only
    device: str = "auto"  # where trials train: auto (the accelerator when present) | cpu | cuda[:i] | mps
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 on a GPU, fp32 on the CPU
    _device = field_validator("device")(classmethod(lambda cls, v: _check_device(v)))

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        kind = v.partition(":")[0].strip().lower()
        if kind not in DATASET_KINDS:
            raise ValueError(f"expected a data set such as digits, fashion-mnist, "
                             f"cifar10:DIR, npz:PATH, fake (kinds: {', '.join(DATASET_KINDS)})"
                             f"{did_you_mean(kind, DATASET_KINDS)}")
        return v

    @field_validator("recipe")
    @classmethod
    def _recipe(cls, v: str) -> str:
        if v not in recipes.RECIPES:
            raise ValueError(f"expected one of {', '.join(recipes.RECIPES)}"
                             f"{did_you_mean(v, list(recipes.RECIPES))}")
        return v

    @field_validator("augment")
    @classmethod
    def _augment(cls, v: Any) -> Any:
        recipes.parse_augment(v)  # ValueError with the expected values
        return v

    def recipe_of(self) -> recipes.Recipe:
        """The named recipe with the keys this section sets explicitly applied."""
        keys = sorted(self.model_fields_set & set(recipes.RECIPE_KEYS))
        return recipes.resolve(self.recipe, {k: getattr(self, k) for k in keys})

    def train_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``nasl.training.train.TrainConfig`` (the resolved recipe + length)."""
        return {"epochs": self.epochs, "batch_size": self.batch_size, "precision": self.precision,
                **self.recipe_of().train_kwargs()}


class SearchDefaults(_Section):
    """Defaults of ``nasl search`` for this space (the CLI may override them)."""

    sampler: Literal["tpe", "nsga2", "nsga3", "random", "gp", "pick"] = "tpe"
    trials: int = Field(20, ge=1)
    seed: int = Field(0, ge=0, le=2**32 - 1)  # numpy's seed range


def table_search_doc(doc: Any, objectives: Any) -> Any:
    """A tabular space's ``search`` section with its default sampler: ``pick`` when the space
    has one maximised and one minimised objective (docs/benchmarks.md, "A strategy for ≤ 2 %"),
    else the usual ``tpe``. Anything but a mapping (or nothing) is returned as it is."""
    if doc is not None and not isinstance(doc, dict) or (doc or {}).get("sampler"):
        return doc
    pick = sorted(o.direction for o in objectives) == ["max", "min"]
    return {**(doc or {}), "sampler": "pick" if pick else "tpe"}


class WandbSettings(_Section):
    """``tracking.wandb``: log the search to Weights & Biases (like ``--wandb``)."""

    enabled: bool = True
    project: str | None = None
    entity: str | None = None


class Tracking(_Section):
    """Where a search is logged besides its run folder."""

    wandb: WandbSettings | None = None


def _nested_model(model: type[BaseModel], parts: tuple[Any, ...]) -> type[BaseModel]:
    """The model class at ``parts`` inside ``model`` (for naming the keys it accepts)."""
    for part in parts:
        ann = model.model_fields[part].annotation
        model = next((a for a in (ann, *typing.get_args(ann))
                      if isinstance(a, type) and issubclass(a, BaseModel)), model)
    return model


def parse_section(model: type[_Section], value: Any, path: KeyPath, loc: Locator) -> Any:
    """Validate one fixed-key section (``target``, ``proxy``, ``search``) → its model."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise loc.error(path, value, "expected a mapping of settings")
    try:
        return model.model_validate(dict(value))
    except ValidationError as e:
        err = e.errors()[0]
        key = err["loc"][-1] if err["loc"] else None
        if err["type"] == "extra_forbidden" and isinstance(key, str):
            parent = tuple(err["loc"][:-1])
            raise unknown_key(loc, (*path, *parent), key,
                              list(_nested_model(model, parent).model_fields)) from None
        where = (*path, *(k for k in err["loc"] if isinstance(k, (str, int))))
        msg = str(err["msg"])
        msg = re.sub(r"^Value error, ", "", msg)
        msg = re.sub(r"^Input should be (greater|less)", r"expected a number \1", msg)
        msg = re.sub(r"^Input should be ", "expected ", msg)
        raise loc.error(where, err.get("input"), msg) from None


# ---------------------------------------------------------------- objectives


@dataclass(frozen=True)
class Objective:
    """One objective: a metric and ``'min'`` or ``'max'``."""

    metric: str
    direction: str

    def to_yaml(self) -> dict[str, str]:
        return {self.metric: self.direction}


def parse_objectives(value: Any, loc: Locator) -> tuple[Objective, ...]:
    """``[{accuracy: max}, macs, {metric: latency_ms, direction: min}]`` → Objectives.

    A bare metric name means ``max`` for accuracy and ``min`` for the costs.
    """
    if value is None:
        return tuple(Objective(m, d) for m, d in DEFAULT_OBJECTIVES)
    if not isinstance(value, list) or not value:
        raise loc.error(("objectives",), value, "expected a non-empty list such as "
                                                "[{accuracy: max}, {macs: min}]")
    out: list[Objective] = []
    for i, item in enumerate(value):
        path: KeyPath = ("objectives", i)
        if isinstance(item, str):
            metric, direction = item, "max" if item == "accuracy" else "min"
        elif isinstance(item, Mapping) and set(item) <= {"metric", "direction"} and "metric" in item:
            metric = item["metric"]
            direction = item.get("direction", "max" if metric == "accuracy" else "min")
        elif isinstance(item, Mapping) and len(item) == 1:
            metric, direction = next(iter(item.items()))
        else:
            raise loc.error(path, item, "expected 'metric: min|max', e.g. {macs: min}")
        if metric not in OBJECTIVE_METRICS:
            raise loc.error(path, metric, f"unknown metric{did_you_mean(str(metric), OBJECTIVE_METRICS)}"
                                          f" (expected one of: {', '.join(OBJECTIVE_METRICS)})")
        direction = {"minimize": "min", "maximize": "max"}.get(direction, direction)
        if direction not in ("min", "max"):
            raise loc.error(path, direction, "expected min or max")
        if any(o.metric == metric for o in out):
            raise loc.error(path, metric, "objective listed twice")
        out.append(Objective(str(metric), str(direction)))
    return tuple(out)


# ---------------------------------------------------------------- parameters

PARAM_KEYS = ("choices", "low", "high", "step", "log", "value", "when", "default")


def encode(value: Any) -> Any:
    """A parameter value as Optuna stores it: lists become ``'4,8,4'``."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return value


def plain(value: Any) -> Any:
    """Tuples → lists (JSON/YAML-friendly form of a value)."""
    return list(value) if isinstance(value, tuple) else value


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b or (
        isinstance(a, (int, float)) and isinstance(b, (int, float))
        and not isinstance(a, bool) and not isinstance(b, bool) and a == b)


@dataclass(frozen=True)
class Param:
    """A searched design choice: categorical ``choices``, or an ``int``/``float`` range.

    ``when`` is a conjunction of (earlier parameter, allowed values): the parameter is
    sampled only when all hold. ``default`` is used where a baseline omits it.
    """

    name: str
    kind: str  # "choices" | "int" | "float"
    choices: tuple[ParamValue, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    when: tuple[tuple[str, tuple[ParamValue, ...]], ...] = ()
    default: ParamValue = None
    declared_default: bool = False

    @property
    def list_valued(self) -> bool:
        return self.kind == "choices" and any(isinstance(c, tuple) for c in self.choices)

    def values(self) -> list[ParamValue] | None:
        """Every value, or None for a continuous range."""
        if self.kind == "choices":
            return list(self.choices)
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            return None
        n = int(round((self.high - self.low) / self.step))
        return [on_grid(self.low + i * self.step) for i in range(n + 1)]

    def count(self) -> int | None:
        """Number of values (None when continuous)."""
        if self.kind == "int":
            assert self.low is not None and self.high is not None
            return (int(self.high) - int(self.low)) // int(self.step or 1) + 1
        vals = self.values()
        return None if vals is None else len(vals)

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one this parameter can take."""
        if self.kind == "choices":
            v = tuple(value) if isinstance(value, list) else value
            return any(_same(v, c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        assert self.low is not None and self.high is not None
        if self.kind == "int" and not isinstance(value, int):
            return False
        if not self.low - 1e-9 <= value <= self.high + 1e-9:
            return False
        if self.step:
            k = (value - self.low) / self.step
            return abs(k - round(k)) < 1e-6
        return True

    def active(self, assigned: Mapping[str, Any]) -> bool:
        """Whether the ``when`` conditions hold for the values assigned so far."""
        for ref, allowed in self.when:
            if ref not in assigned:
                return False
            v = assigned[ref]
            v = tuple(v) if isinstance(v, list) else v
            if not any(_same(v, a) for a in allowed):
                return False
        return True

    def suggest(self, trial: Any) -> ParamValue:
        """Ask an Optuna trial (define-by-run) for this parameter → decoded value."""
        if self.kind == "choices":
            if self.list_valued:
                enc = trial.suggest_categorical(self.name, [encode(c) for c in self.choices])
                return list(next(c for c in self.choices if encode(c) == enc))
            return trial.suggest_categorical(self.name, list(self.choices))
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high),
                                     step=int(self.step or 1), log=self.log)
        v = trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)
        if self.step:
            v = on_grid(self.low + round((v - self.low) / self.step) * self.step)
        return v

    def decode(self, stored: Any) -> ParamValue:
        """Optuna's stored value → the parameter value (``'4,8,4'`` → ``[4, 8, 4]``)."""
        if self.list_valued:
            for c in self.choices:
                if encode(c) == stored:
                    return list(c)
        return stored

    def describe(self) -> str:
        """``'choices: 1, 2, 3'``, ``'int 2..6'``, ``'float 0.25..2 step 0.125'``."""
        if self.kind == "choices":
            return "choices: " + ", ".join(fmt_value(c) for c in self.choices)
        text = f"{self.kind} {self.low:g}..{self.high:g}"
        if self.step:
            text += f" step {self.step:g}"
        return text + (" (log)" if self.log else "")

    def when_text(self) -> str:
        return " and ".join(
            f"{ref} = {fmt_value(a[0])}" if len(a) == 1
            else f"{ref} in {', '.join(fmt_value(x) for x in a)}" for ref, a in self.when)

    def to_yaml(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.kind == "choices":
            d["choices"] = [plain(c) for c in self.choices]
        else:
            d.update(low=self.low, high=self.high)
            if self.step is not None:
                d["step"] = self.step
            if self.log:
                d["log"] = True
        if self.when:
            d["when"] = {ref: [plain(a) for a in allowed] for ref, allowed in self.when}
        if self.declared_default:
            d["default"] = plain(self.default)
        return d
