"""SearchSpace: a validated YAML space → Optuna define-by-run sampling → ArchConfig.

In: the plain document read from YAML (see ``nasl/spaces/*.yaml`` and the README for the
schema). Out: a frozen :class:`SearchSpace` whose ``sample(trial)`` returns a params dict
and whose ``to_arch(params)`` builds the network at the target (or proxy) size.

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
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from nasl.arch import ArchConfig
from nasl.errors import NaslError
from nasl.families import FAMILIES, IO_ARGS, Family
from nasl.space.schema import (
    Objective,
    Param,
    Proxy,
    SearchDefaults,
    Target,
    _same,
    did_you_mean,
    encode,
    plain,
    unknown_key,
)
from nasl.space.yamlsafe import KeyPath, Locator, read_yaml, show
from nasl.units import Budgets

RESOLUTION = "resolution"
_INDEXED = re.compile(r"^([A-Za-z_]\w*)\[(\d+)\]$")
_LIST_CHOICES = ("pool_after", "stage_repeats", "downsample_at", "stage_blocks", "base_widths")


def _list_typed(fam: Family, name: str) -> bool:
    return name in _LIST_CHOICES or isinstance(fam.defaults.get(name), (list, tuple))


def _split(text: str) -> list[Any]:
    """``'4,8,4'`` → ``[4, 8, 4]``; ``'dws,fire'`` → ``['dws', 'fire']``."""
    out: list[Any] = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        try:
            out.append(int(item))
        except ValueError:
            try:
                out.append(float(item))
            except ValueError:
                out.append(item)
    return out


def _stage_count(fam: Family, choices: Mapping[str, Any]) -> int:
    """Entries of a per-stage list whose default is a single value (hybrid's ``groups``)."""
    for k, d in fam.defaults.items():
        if isinstance(d, (list, tuple)):
            v = choices.get(k, d)
            return len(v) if isinstance(v, (list, tuple)) else len(_split(str(v)))
    return 1


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space. Build with :func:`nasl.space.load_space`.

    ``params`` are the searched parameters in declared order, ``fixed`` the fixed design
    choices, ``baselines`` the papers' networks as complete params dicts.
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
        params = self._expand_lists(params, where, loc)
        for k in params:
            if k not in self.order:
                raise unknown_key(loc, where, k, list(self.order))
        out: dict[str, Any] = {}
        for name in self.order:
            given = name in params
            v = params.get(name)
            if given and isinstance(v, str) and _list_typed(fam, name):
                v = _split(v)
            if name in self.fixed:
                if given and not _same(plain(self.fixed[name]), plain(v)) and not (
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

    def _expand_lists(self, params: Mapping[str, Any], where: KeyPath, loc: Locator
                      ) -> dict[str, Any]:
        """``stage_repeats: [4, 8, 4]`` → ``stage_repeats[0]: 4, ...`` where the space
        declares entries; an entry that is not a parameter must keep its family default."""
        fam = FAMILIES[self.family]
        out = dict(params)
        for base in [k for k in params if k not in self.order]:
            if not any(n.startswith(f"{base}[") for n in self.order):
                continue
            value = out.pop(base)
            value = _split(value) if isinstance(value, str) else value
            if not isinstance(value, (list, tuple)):
                raise loc.error((*where, base), value, "expected a list with one entry per "
                                                       f"{base}[i]")
            for i, v in enumerate(value):
                name = f"{base}[{i}]"
                if name in self.order:
                    out.setdefault(name, v)
                elif not _same(v, _family_default(fam, name, self.target)):
                    raise loc.error((*where, base, i), v, f"{name} is not a parameter of this "
                                    f"space; expected its default "
                                    f"{show(_family_default(fam, name, self.target))}")
        return out

    # ------------------------------------------------------------------ building
    def design_choices(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Complete params → the family generator's keyword arguments."""
        fam = FAMILIES[self.family]
        choices: dict[str, Any] = {}
        entries: dict[str, dict[int, Any]] = {}
        for k, v in params.items():
            m = _INDEXED.match(k)
            if k == RESOLUTION:
                choices["resolution_mult"] = v / self.target.input_size
            elif m:
                entries.setdefault(m[1], {})[int(m[2])] = v
            else:
                choices[k] = list(v) if isinstance(v, tuple) else v
        # list defaults first: a per-stage single default repeats once per stage
        for base in sorted(entries, key=lambda b: not isinstance(fam.defaults[b], (list, tuple))):
            d = fam.defaults[base]
            arr = list(d) if isinstance(d, (list, tuple)) else [d] * _stage_count(fam, choices)
            for i, v in entries[base].items():
                if i >= len(arr):
                    raise ValueError(f"{base}[{i}]: {base} has only {len(arr)} entries")
                arr[i] = v
            choices[base] = arr
        return choices

    def _generate(self, params: Mapping[str, Any], input_size: int, num_classes: int,
                  in_channels: int = 3) -> ArchConfig:
        """Build without the user-facing wrapping (raises ValueError)."""
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
            return self._generate(full, input_size, num_classes, in_channels)
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
    def with_budget(self, budgets: Mapping[str, float]) -> SearchSpace:
        """The space with ``budgets`` replacing its limits metric by metric."""
        return dataclasses.replace(self, budget=self.budget.merged(budgets))

    def with_overrides(self, overrides: Mapping[str, Any], *, source: str = "--set"
                       ) -> SearchSpace:
        """The space with settings or design choices overridden, re-validated.

        Keys: ``target.<key>``, ``proxy.<key>``, ``search.<key>``, ``name``,
        ``description``, ``objectives``, or a parameter / design-choice name (which fixes
        it; baselines with another value for it are dropped). Text values are read as
        YAML scalars or flow lists (``'3'`` → 3, ``'[4,8,4]'`` or ``'4,8,4'``).
        """
        doc = self.to_dict()
        fam = FAMILIES[self.family]
        loc = Locator(source)
        fixed_now: dict[str, Any] = {}
        for key, raw in overrides.items():
            value = _cli_value(raw)
            section, dot, sub = key.partition(".")
            if dot and section in ("target", "proxy", "search"):
                doc[section] = {**(doc.get(section) or {}), sub: value}
            elif key in ("name", "description", "objectives"):
                doc[key] = value
            elif key in self.order or _param_name_ok(fam, key):
                if isinstance(value, str) and _list_typed(fam, key):
                    value = _split(value)
                if key not in self.order and any(n.startswith(f"{key}[") for n in self.order):
                    entries = self._expand_lists({key: value}, (key,), loc)
                else:
                    entries = {key: value}
                for k, v in entries.items():
                    doc["params"][k] = v
                    fixed_now[k] = v
            else:
                options = [*self.order, *fam.defaults, "target.*", "proxy.*", "search.*"]
                raise loc.error((key,), raw, "unknown setting or design choice"
                                             f"{did_you_mean(key, options)}")
        for name in list(doc["params"]):  # conditions on a now-fixed parameter: decided
            spec = doc["params"][name]
            when = spec.get("when") if isinstance(spec, dict) else None
            for ref in [r for r in (when or {}) if r in fixed_now]:
                v = fixed_now[ref]
                if any(_same(plain(a), plain(v)) or a == v for a in when.pop(ref)):
                    continue
                del doc["params"][name]  # can never be active
                break
            else:
                if isinstance(spec, dict) and "when" in spec and not spec["when"]:
                    del spec["when"]
        doc["baselines"] = {
            n: b for n, b in doc["baselines"].items()
            if all(k not in b or _same(plain(b[k]), plain(v)) or b[k] == v
                   for k, v in fixed_now.items())}
        from nasl.space.build import build_space

        space = build_space(doc, Locator(f"{self.source} (with {source})"))
        return dataclasses.replace(space, source=self.source)

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
            "target": self.target.model_dump(),
            "proxy": self.proxy.model_dump(),
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


def _cli_value(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return read_yaml(raw, Locator("--set"))
    except NaslError:
        return raw


def _param_name_ok(fam: Family, name: str) -> bool:
    m = _INDEXED.match(name)
    base = m[1] if m else name
    return name == RESOLUTION or (base in fam.defaults and base not in IO_ARGS)


def _family_default(fam: Family, name: str, target: Target) -> Any:
    if name == RESOLUTION:
        return target.input_size
    m = _INDEXED.match(name)
    if m:
        d = fam.defaults[m[1]]
        return d[int(m[2])] if isinstance(d, (list, tuple)) and int(m[2]) < len(d) else d
    d = fam.defaults[name]
    return tuple(d) if isinstance(d, list) else d
