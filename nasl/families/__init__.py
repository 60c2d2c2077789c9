"""Generators: the papers' design choices → ArchConfig; presets are generator calls.

In: a family name and a dict of design choices (canonical names, see DESIGN.md).
Out: an :class:`~nasl.network.arch.ArchConfig` at the target input size and class count.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nasl.families import hybrid, mobilenet, shufflenet, squeezenet, xception
from nasl.network.arch import ArchConfig, freeze_choices

Generator = Callable[..., ArchConfig]

# Arguments every generator takes that are not design choices of the family.
IO_ARGS = ("input_size", "num_classes")


@dataclass(frozen=True)
class Family:
    """A generator and its design choices with their defaults (from its signature)."""

    name: str
    generate_fn: Generator
    default_input: int
    description: str

    @property
    def defaults(self) -> dict[str, Any]:
        sig = inspect.signature(self.generate_fn)
        return {k: p.default for k, p in sig.parameters.items() if k not in IO_ARGS}

    def generate(self, choices: Mapping[str, Any] | None = None, *,
                 input_size: int | None = None, num_classes: int = 1000) -> ArchConfig:
        """Build the ArchConfig for ``choices`` (missing ones take the paper's defaults).

        ``input_size`` is the size at ρ = 1 (default: the family's, 224 or 299); the
        network's actual input is ``round(input_size * resolution_mult)``.
        Raises ``ValueError`` for unknown names or impossible values.
        """
        choices = dict(choices or {})
        unknown = [k for k in choices if k not in self.defaults]
        if unknown:
            k = unknown[0]
            close = difflib.get_close_matches(k, list(self.defaults), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown design choice {k!r} for family {self.name!r}{hint} "
                             f"(expected one of: {', '.join(self.defaults)})")
        full = {**self.defaults, **choices}
        size = self.default_input if input_size is None else input_size
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        cfg = self.generate_fn(**full, input_size=size, num_classes=num_classes)
        cfg = ArchConfig(**{**cfg.__dict__, "choices": freeze_choices(full)})
        cfg.validate()
        return cfg


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> None:
    """Add a family to :data:`FAMILIES` (duplicates raise)."""
    if family.name in FAMILIES:
        raise ValueError(f"family {family.name!r} registered twice")
    FAMILIES[family.name] = family


for _mod, _size in ((squeezenet, 224), (mobilenet, 224), (shufflenet, 224), (xception, 299),
                    (hybrid, 224)):
    register_family(Family(_mod.NAME, _mod.generate, _size, (_mod.__doc__ or "").splitlines()[0]))


# name -> (family, the paper's values)
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "squeezenet1_0": ("squeezenet", {"version": "1.0"}),
    "squeezenet1_1": ("squeezenet", {"version": "1.1"}),
    "mobilenet_v1": ("mobilenet", {}),
    "shufflenet_v1": ("shufflenet", {"groups": 3}),
    "xception": ("xception", {}),
}


def get_family(name: str) -> Family:
    """The registered family ``name`` (``ValueError`` listing the known ones otherwise)."""
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; expected one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def preset_choices(name: str) -> tuple[Family, dict[str, Any]]:
    """The family and design choices of preset ``name`` (``ValueError`` if unknown)."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, list(PRESETS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown preset {name!r}{hint} (expected one of: {', '.join(PRESETS)})")
    fam, choices = PRESETS[name]
    return FAMILIES[fam], dict(choices)


def preset(name: str, *, input_size: int | None = None, num_classes: int = 1000,
           **overrides: Any) -> ArchConfig:
    """A paper network, optionally with some design choices overridden.

    >>> preset("mobilenet_v1", width_mult=0.5, input_size=160).macs()  # ≈ 76 M
    """
    fam, choices = preset_choices(name)
    return fam.generate({**choices, **overrides}, input_size=input_size, num_classes=num_classes)
