"""The search-space model: a validated space → Optuna define-by-run sampling → ArchConfig.

In: the parts of a validated space (built by :mod:`nasl.space.build`; the public class is
:class:`nasl.space.model.SearchSpace`, a subclass). Out: ``sample(trial)`` returns a params
dict and ``to_arch(params)`` builds the network at the target (or proxy) size.

Parameter names are the family's design choices, plus two space-level forms:

- ``resolution``: the input side in pixels at the target; the space turns it into
  ``resolution_mult = resolution / target.input_size`` (the proxy then runs at
  ``round(proxy.resolution * resolution_mult)``). Papers' sizes stay exact (128, 160 ...).
- ``name[i]``: entry ``i`` (0-based) of a list-valued design choice, e.g. ``stage_repeats[1]``
  or the hybrid family's per-stage ``stage_blocks[2]``, ``groups[2]``. Entries not given keep
  the family default (a single default such as hybrid's ``groups: 4`` is repeated per stage).

List-valued choices (``[4, 8, 4]``) may also be written ``"4,8,4"``; Optuna sees them as
such strings, ``sample`` returns lists.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml

from nasl.common.errors import NaslError
from nasl.common.units import Budgets
from nasl.families import FAMILIES
from nasl.network.arch import ArchConfig
from nasl.space.choices import (
    INDEXED,
    RESOLUTION,
    family_default,
    list_typed,
    same_value,
    split_list,
    stage_count,
)
from nasl.space.schema import (
    Objective,
    Param,
    Proxy,
    SearchDefaults,
    Target,
    encode,
    plain,
    unknown_key,
)
from nasl.space.yamlsafe import KeyPath, Locator, show
from nasl.training.recipes import RECIPE_KEYS

S = TypeVar("S", bound="SpaceCore")

SOURCE_KINDS = ("user file", "shipped", "text")
"""Where a space came from: a file the user named, a shipped space, or YAML text."""


@dataclass(frozen=True)
class SpaceCore:
    """A validated search space (base of :class:`nasl.space.model.SearchSpace`; build one
    with :func:`nasl.space.load_space`).

    ``params`` are the searched parameters in declared order, ``fixed`` the fixed design
    choices, ``baselines`` the papers' networks as complete params dicts. ``source`` names
    the space in error messages; ``source_path`` is the file it was read from (absolute,
    ``""`` for text) and ``source_kind`` one of :data:`SOURCE_KINDS`.
    """

    name: str
    family: str
    description: str
    target: Target
    proxy: Proxy
    objectives: tuple[Objective, ...]
    budget: Budgets
    params: tuple[Param, ...]
    fixed: dict[str, Any]
    baselines: dict[str, dict[str, Any]]
    search: SearchDefaults
    order: tuple[str, ...]
    source: str = field(default="<string>", compare=False)
    tracking: Any = None  # schema.Tracking: optional W&B settings
    source_path: str = field(default="", compare=False)
    source_kind: str = field(default="text", compare=False)

    @property
    def origin(self) -> str:
        """Where the space came from, for people: ``shipped file /…/shufflenet.yaml``,
        ``user file /abs/mine.yaml`` or ``YAML text (<source>)``."""
        if self.source_kind == "text" or not self.source_path:
            return f"YAML text ({self.source})"
        what = "shipped file" if self.source_kind == "shipped" else self.source_kind
        return f"{what} {self.source_path}"

    # ------------------------------------------------------------------ sampling
    @functools.cached_property
    def by_name(self) -> dict[str, Param]:
        """Searched parameters by name."""
        return {p.name: p for p in self.params}

    def sample(self, trial: Any) -> dict[str, Any]:
        """Suggest every active parameter on an Optuna trial → params (fixed ones included).

        Same sampler seed → same params. List values come back as lists.
        """
        out: dict[str, Any] = {}
        for name in self.order:
            if name in self.fixed:
                out[name] = plain(self.fixed[name])
            elif self.by_name[name].active(out):
                out[name] = self.by_name[name].suggest(trial)
        return out

    def encode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Params → what Optuna stores (for ``study.enqueue_trial``): searched ones only,
        list values as ``'4,8,4'``."""
        return {k: encode(v) for k, v in params.items() if k in self.by_name}

    def decode(self, trial_params: Mapping[str, Any]) -> dict[str, Any]:
        """Optuna's ``trial.params`` → complete params (fixed ones added, lists decoded)."""
        out: dict[str, Any] = {}
        for name in self.order:
            if name in self.fixed:
                out[name] = plain(self.fixed[name])
            elif name in trial_params:
                out[name] = self.by_name[name].decode(trial_params[name])
        return out

    # ------------------------------------------------------------------ checking
    def complete(self, params: Mapping[str, Any], *, where: KeyPath = ("params",),
                 loc: Locator | None = None) -> dict[str, Any]:
        """Check ``params`` against the space and fill omitted ones with defaults.

        Raises NaslError naming ``where.<key>`` for unknown names, values outside the
        space, values for inactive parameters, or a fixed parameter given another value.
        """
        loc = loc or Locator(self.source)
        fam = FAMILIES[self.family]
        params = self.expand_lists(params, where, loc)
        for k in params:
            if k not in self.order:
                raise unknown_key(loc, where, k, list(self.order))
        out: dict[str, Any] = {}
        for name in self.order:
            given = name in params
            v = params.get(name)
            if given and isinstance(v, str) and list_typed(fam, name):
                v = split_list(v)
            if name in self.fixed:
                if given and not same_value(plain(self.fixed[name]), plain(v)) and not (
                        isinstance(v, (list, tuple)) and list(v) == plain(self.fixed[name])):
                    raise loc.error((*where, name), v,
                                    f"fixed to {show(plain(self.fixed[name]))} in this space")
                out[name] = plain(self.fixed[name])
                continue
            p = self.by_name[name]
            if not p.active(out):
                if given:
                    raise loc.error((*where, name), v,
                                    f"not used here: active only when {p.when_text()}")
                continue
            v = v if given else p.default
            if not p.contains(v):
                raise loc.error((*where, name), v, f"outside the space; expected {p.describe()}")
            out[name] = plain(v)
        return out

    def expand_lists(self, params: Mapping[str, Any], where: KeyPath, loc: Locator
                     ) -> dict[str, Any]:
        """``stage_repeats: [4, 8, 4]`` → ``stage_repeats[0]: 4, ...`` where the space
        declares entries; an entry that is not a parameter must keep its family default."""
        fam = FAMILIES[self.family]
        out = dict(params)
        for base in [k for k in params if k not in self.order]:
            if not any(n.startswith(f"{base}[") for n in self.order):
                continue
            value = out.pop(base)
            value = split_list(value) if isinstance(value, str) else value
            if not isinstance(value, (list, tuple)):
                raise loc.error((*where, base), value, "expected a list with one entry per "
                                                       f"{base}[i]")
            for i, v in enumerate(value):
                name = f"{base}[{i}]"
                if name in self.order:
                    out.setdefault(name, v)
                elif not same_value(v, family_default(fam, name, self.target.input_size)):
                    raise loc.error((*where, base, i), v, f"{name} is not a parameter of this "
                                    f"space; expected its default "
                                    f"{show(family_default(fam, name, self.target.input_size))}")
        return out

    # ------------------------------------------------------------------ building
    def design_choices(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Complete params → the family generator's keyword arguments."""
        fam = FAMILIES[self.family]
        choices: dict[str, Any] = {}
        entries: dict[str, dict[int, Any]] = {}
        for k, v in params.items():
            m = INDEXED.match(k)
            if k == RESOLUTION:
                choices["resolution_mult"] = v / self.target.input_size
            elif m:
                entries.setdefault(m[1], {})[int(m[2])] = v
            else:
                choices[k] = list(v) if isinstance(v, tuple) else v
        # list defaults first: a per-stage single default repeats once per stage
        for base in sorted(entries, key=lambda b: not isinstance(fam.defaults[b], (list, tuple))):
            d = fam.defaults[base]
            arr = list(d) if isinstance(d, (list, tuple)) else [d] * stage_count(fam, choices)
            for i, v in entries[base].items():
                if i >= len(arr):
                    raise ValueError(f"{base}[{i}]: {base} has only {len(arr)} entries")
                arr[i] = v
            choices[base] = arr
        return choices

    def generate_arch(self, params: Mapping[str, Any], input_size: int, num_classes: int,
                      in_channels: int = 3) -> ArchConfig:
        """Complete params → ArchConfig at ``input_size`` with ``num_classes`` outputs and
        ``in_channels`` inputs, unchecked against the space; ValueError if it does not build
        (:meth:`to_arch` is the checked, user-facing form)."""
        cfg = FAMILIES[self.family].generate(self.design_choices(params),
                                             input_size=input_size, num_classes=num_classes)
        if in_channels != cfg.in_channels:
            cfg = cfg.with_io(in_channels=in_channels)
            cfg.validate()
        return cfg

    def _build(self, params: Mapping[str, Any], input_size: int, num_classes: int,
               in_channels: int, what: str) -> ArchConfig:
        full = self.complete(params)
        try:
            return self.generate_arch(full, input_size, num_classes, in_channels)
        except ValueError as e:
            raise NaslError(f"{self.source}: params {show(full, 200)} do not build at the "
                            f"{what}: {e}") from None

    def to_arch(self, params: Mapping[str, Any], *, target: bool = True) -> ArchConfig:
        """Params → ArchConfig at the target (``target.input_size`` × ρ, its classes).

        ``target=False`` gives the proxy network at ``proxy.resolution`` × ρ with the
        target's class count (use :meth:`proxy_arch` for the data set's). NaslError if
        the params are outside the space or do not build.
        """
        if not target:
            return self.proxy_arch(params, self.target.num_classes)
        return self._build(params, self.target.input_size, self.target.num_classes, 3,
                           f"target size ({self.target.input_size} px at ρ = 1)")

    def proxy_arch(self, params: Mapping[str, Any], num_classes: int,
                   in_channels: int = 3) -> ArchConfig:
        """Params → the proxy network: ``proxy.resolution`` × ρ, the data set's classes and
        input channels."""
        return self._build(params, self.proxy.resolution, num_classes, in_channels,
                           f"proxy resolution ({self.proxy.resolution} px at ρ = 1)")

    # ------------------------------------------------------------------ variants
    def with_budget(self: S, budgets: Mapping[str, float]) -> S:
        """The space with ``budgets`` replacing its limits metric by metric."""
        return dataclasses.replace(self, budget=self.budget.merged(budgets))

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        """The resolved space as plain data (every section, defaults filled in)."""
        params: dict[str, Any] = {}
        for name in self.order:
            params[name] = plain(self.fixed[name]) if name in self.fixed \
                else self.by_name[name].to_yaml()
        return {
            "name": self.name,
            "family": self.family,
            "description": self.description,
            "target": {k: v for k, v in self.target.model_dump().items()  # remote keys when set
                       if v not in (None, False) or k in ("input_size", "num_classes")},
            # a recipe key is written only when set: the named recipe supplies the rest
            "proxy": {k: v for k, v in self.proxy.model_dump().items()
                      if k not in RECIPE_KEYS or k in self.proxy.model_fields_set},
            "objectives": [o.to_yaml() for o in self.objectives],
            "budget": self.budget.to_texts(),
            "params": params,
            "baselines": {n: {k: plain(v) for k, v in b.items()}
                          for n, b in self.baselines.items()},
            "search": self.search.model_dump(),
            **({"tracking": self.tracking.model_dump(exclude_none=True)}
               if self.tracking is not None and self.tracking.wandb is not None else {}),
        }

    def to_yaml(self) -> str:
        """The resolved space as YAML; loading it gives an equal space."""
        head = (f"# nasl search space {self.name!r}, resolved (defaults and overrides "
                f"applied)\n")
        return head + yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True,
                                     default_flow_style=None, width=100)


class RandomTrial:
    """The part of Optuna's trial API that ``SearchSpace.sample`` uses, from ``random``."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return self.rng.choice(choices)

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False
                    ) -> int:
        return low + step * self.rng.randrange((high - low) // step + 1)

    def suggest_float(self, name: str, low: float, high: float, step: float | None = None,
                      log: bool = False) -> float:
        if step:
            return low + step * self.rng.randrange(int(round((high - low) / step)) + 1)
        if log:
            return math.exp(self.rng.uniform(math.log(low), math.log(high)))
        return self.rng.uniform(low, high)


def require_network(space: Any, command: str) -> None:
    """NaslError (one line) when ``space`` is tabular: ``command`` builds or trains networks,
    and a tabular space's designs are only rows of a table."""
    if getattr(space, "family", None) == "table":
        raise NaslError(f"{command}: {space.name!r} is a tabular space (family: table): its designs "
                        "are looked up in a table, there is no network to build; expected a CNN space")
