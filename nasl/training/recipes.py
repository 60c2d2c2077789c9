"""Named proxy-training recipes: the training half of the question a search answers.

Which designs win depends on how they are trained (augmentation, regularisation, length), so
a recipe is named, recorded with every run and stated in every claim. In: a recipe name and
optional explicit overrides (the space's ``proxy:`` keys). Out: :class:`Recipe`, whose
``train_kwargs()`` feed :class:`nasl.training.train.TrainConfig` and whose ``describe()`` is the one
line claims quote. Torch-free (layer 0).

Recipes (defaults of every key not named keep :class:`nasl.training.train.TrainConfig`'s values):

- ``plain``: SGD (nesterov, momentum 0.9, lr 0.1), linear warm-up then cosine to 0, label
  smoothing 0.1, weight decay 4e-5 (none on BN/biases), no augmentation. Fast to rank at 2-3
  epochs, but on a few thousand images it overfits and keeps designs close.
- ``augmented``: the same optimiser with random crop (zero padding of side/8) and horizontal
  flip, weight decay 5e-4: how small vision models are trained to be shipped.
- ``crop``: ``augmented`` without the flip, for data whose meaning a mirror changes
  (digits, text).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

AUGMENTATIONS = ("crop", "flip")
#: Keys a recipe sets (the optimiser and regularisation of the proxy training).
RECIPE_KEYS = ("optimizer", "lr", "momentum", "weight_decay", "label_smoothing", "warmup_epochs",
               "augment")
_BASE: dict[str, Any] = {"optimizer": "sgd", "lr": None, "momentum": 0.9, "weight_decay": 4e-5,
                         "label_smoothing": 0.1, "warmup_epochs": 0.3, "augment": ()}
RECIPES: dict[str, dict[str, Any]] = {
    "plain": dict(_BASE),
    "augmented": {**_BASE, "weight_decay": 5e-4, "augment": ("crop", "flip")},
    "crop": {**_BASE, "weight_decay": 5e-4, "augment": ("crop",)},
}
#: The default recipe of a space that names none (chosen by measurement: docs/benchmarks.md,
#: "Which recipe ranks like long augmented training").
DEFAULT_RECIPE = "plain"


def parse_augment(value: Any) -> tuple[str, ...]:
    """``none``/``[]``/``None`` → (); ``"crop+flip"``, ``"crop,flip"`` or a list → a tuple in
    canonical order. ValueError naming the expected values otherwise."""
    if value is None or value == "none" or value == () or value == []:
        return ()
    parts = ([p.strip() for p in value.replace("+", ",").split(",") if p.strip()]
             if isinstance(value, str) else list(value))
    bad = [p for p in parts if p not in AUGMENTATIONS]
    if bad or not all(isinstance(p, str) for p in parts):
        raise ValueError(f"augment {value!r}: expected none, or a list of {', '.join(AUGMENTATIONS)}"
                         " (e.g. crop+flip)")
    return tuple(a for a in AUGMENTATIONS if a in parts)


@dataclass(frozen=True)
class Recipe:
    """A resolved recipe: its name, the values it trains with, which keys were overridden."""

    name: str
    values: Mapping[str, Any]
    overrides: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        """``augmented`` or ``plain+weight_decay=0.0005`` (what claims are made under)."""
        extra = ",".join(f"{k}={_fmt(self.values[k])}" for k in self.overrides)
        return f"{self.name}+{extra}" if extra else self.name

    def train_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``nasl.training.train.TrainConfig`` (epochs excluded)."""
        return {k: (tuple(v) if k == "augment" else v) for k, v in self.values.items()}

    def describe(self, epochs: int | None = None) -> str:
        """One line: name, optimiser, lr, weight decay, smoothing, augmentation (, epochs)."""
        v = self.values
        lr = v["lr"] if v["lr"] is not None else (0.1 if v["optimizer"] == "sgd" else 1e-3)
        aug = "+".join(v["augment"]) or "no augmentation"
        ep = f", {epochs} epochs" if epochs else ""
        return (f"{self.label}: {v['optimizer']} lr {_fmt(lr)} wd {_fmt(v['weight_decay'])} "
                f"label smoothing {_fmt(v['label_smoothing'])}, {aug}{ep}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "overrides": list(self.overrides),
                **{k: (list(v) if k == "augment" else v) for k, v in self.values.items()}}


def _fmt(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return "+".join(v) or "none"
    return f"{v:g}" if isinstance(v, float) else str(v)


def resolve(name: str | None, overrides: Mapping[str, Any] | None = None) -> Recipe:
    """The recipe ``name`` (None: DEFAULT_RECIPE) with ``overrides`` applied → Recipe.

    ValueError for an unknown name or key, or a bad ``augment``."""
    name = name or DEFAULT_RECIPE
    if name not in RECIPES:
        raise ValueError(f"recipe {name!r}: expected one of {', '.join(RECIPES)}")
    values = dict(RECIPES[name])
    changed = []
    for k, v in (overrides or {}).items():
        if k not in RECIPE_KEYS:
            raise ValueError(f"recipe key {k!r}: expected one of {', '.join(RECIPE_KEYS)}")
        v = parse_augment(v) if k == "augment" else v
        if values[k] != v:
            changed.append(k)
        values[k] = v
    return Recipe(name, values, tuple(changed))
