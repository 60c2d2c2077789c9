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
    PARAM_KEYS,
    Objective,
    Param,
    Proxy,
    SearchDefaults,
    Target,
    _is_number,
    _same,
    check_scalar,
    did_you_mean,
    encode,
    parse_objectives,
    parse_section,
    plain,
    unknown_key,
)
from nasl.space.yamlsafe import NOVALUE, KeyPath, Locator, read_yaml, show
from nasl.units import METRICS, Budgets, parse_budget

TOP_KEYS = ("name", "family", "description", "target", "proxy", "objectives", "budget",
            "params", "baselines", "search")
RESOLUTION = "resolution"
_INDEXED = re.compile(r"^([A-Za-z_]\w*)\[(\d+)\]$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
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


# ====================================================================== building


def build_space(data: Any, loc: Locator, *, default_name: str = "space") -> SearchSpace:
    """Validate a plain document (as read from YAML) → SearchSpace; NaslError otherwise."""
    if data is None:
        raise loc.problem("empty file; expected a mapping with family, params, ... "
                          "(see nasl/spaces/*.yaml)")
    if not isinstance(data, Mapping):
        raise loc.error((), data, "expected a mapping with family, params, ... at the top "
                                  f"level, got {type(data).__name__}")
    for k in data:
        if k not in TOP_KEYS:
            raise unknown_key(loc, (), k, TOP_KEYS)
    name = data.get("name", default_name)
    if not isinstance(name, str) or not _NAME.match(name):
        raise loc.error(("name",), name, "expected a name of letters, digits, '_', '.', '-'")
    description = data.get("description", "") or ""
    if not isinstance(description, str):
        raise loc.error(("description",), description, "expected text")
    if "family" not in data:
        raise loc.error((), NOVALUE, f"missing key 'family' (one of: {', '.join(FAMILIES)})")
    family = data["family"]
    if not isinstance(family, str) or family not in FAMILIES:
        raise loc.error(("family",), family, f"unknown family{did_you_mean(str(family), list(FAMILIES))}"
                                             f" (expected one of: {', '.join(FAMILIES)})")
    fam = FAMILIES[family]
    target = parse_section(Target, data.get("target"), ("target",), loc)
    proxy = parse_section(Proxy, data.get("proxy"), ("proxy",), loc)
    search = parse_section(SearchDefaults, data.get("search"), ("search",), loc)
    objectives = parse_objectives(data.get("objectives"), loc)
    budget = _parse_budget(data.get("budget"), loc)
    if "params" not in data:
        raise loc.error((), NOVALUE, "missing key 'params' (the design choices to search)")
    params, fixed, order = _parse_params(data["params"], fam, target, loc)
    space = SearchSpace(name, family, description, target, proxy, objectives, budget,
                        tuple(params), fixed, {}, search, tuple(order), loc.source)
    _check_values(space, loc)
    _check_combinations(space, loc)
    baselines = _parse_baselines(space, data.get("baselines"), loc)
    return dataclasses.replace(space, baselines=baselines)


def _parse_budget(value: Any, loc: Locator) -> Budgets:
    if value is None:
        return Budgets()
    if not isinstance(value, Mapping):
        raise loc.error(("budget",), value, "expected a mapping such as {macs: 40M, "
                                            "latency_ms: 5ms}")
    limits: dict[str, float] = {}
    for k, v in value.items():
        if k not in METRICS:
            raise unknown_key(loc, ("budget",), k, METRICS)
        try:
            limits[k] = parse_budget(f"{k}<={v}", what="budget")[1]
        except NaslError as e:
            reason = str(e).split(": ", 1)[-1]
            raise loc.error(("budget", k), v, reason) from None
    return Budgets(limits)


def _norm_value(fam: Family, name: str, value: Any, path: KeyPath, loc: Locator) -> Any:
    if isinstance(value, str) and _list_typed(fam, name):
        value = _split(value)
    return check_scalar(value, path, loc, list_ok=True)


def _family_default(fam: Family, name: str, target: Target) -> Any:
    if name == RESOLUTION:
        return target.input_size
    m = _INDEXED.match(name)
    if m:
        d = fam.defaults[m[1]]
        return d[int(m[2])] if isinstance(d, (list, tuple)) and int(m[2]) < len(d) else d
    d = fam.defaults[name]
    return tuple(d) if isinstance(d, list) else d


def _check_name(fam: Family, name: Any, declared: set[str], loc: Locator) -> None:
    path: KeyPath = ("params", str(name))
    allowed = [k for k in fam.defaults if k not in IO_ARGS] + [RESOLUTION]
    if name in IO_ARGS:
        raise loc.error(path, NOVALUE, f"{name} is not a design choice; set target.{name} "
                                       "(and proxy.resolution) instead")
    m = _INDEXED.match(name)
    if m:
        base, i = m[1], int(m[2])
        if base not in fam.defaults or base in IO_ARGS:
            raise loc.error(path, NOVALUE, f"unknown design choice {base!r} for family "
                            f"{fam.name!r}{did_you_mean(base, allowed)}")
        d = fam.defaults[base]
        n = len(d) if isinstance(d, (list, tuple)) else _stage_count(fam, {})
        if i >= n:
            raise loc.error(path, NOVALUE, f"index {i} is out of range: {base} has {n} "
                                           f"entries (0..{n - 1})")
        if base in declared:
            raise loc.error(path, NOVALUE, f"{base} is already declared as a whole")
        return
    if name not in allowed:
        raise loc.error(path, NOVALUE, f"unknown design choice for family {fam.name!r}"
                        f"{did_you_mean(name, allowed)} (expected one of: {', '.join(allowed)}"
                        f", or name[i] for one entry of a list)")
    if any(d.startswith(f"{name}[") for d in declared):
        raise loc.error(path, NOVALUE, f"entries {name}[i] are already declared")
    other = {RESOLUTION: "resolution_mult", "resolution_mult": RESOLUTION}.get(name)
    if other in declared:
        raise loc.error(path, NOVALUE, "give either resolution (pixels) or resolution_mult, "
                                       "not both")


def _parse_params(value: Any, fam: Family, target: Target, loc: Locator
                  ) -> tuple[list[Param], dict[str, Any], list[str]]:
    if not isinstance(value, Mapping):
        raise loc.error(("params",), value, "expected a mapping: design choice → choices, "
                                            "low/high range, or a fixed value")
    params: dict[str, Param] = {}
    fixed: dict[str, Any] = {}
    order: list[str] = []
    for name, spec in value.items():
        path: KeyPath = ("params", name)
        _check_name(fam, name, set(order), loc)
        if isinstance(spec, Mapping):
            for k in spec:
                if k not in PARAM_KEYS:
                    raise unknown_key(loc, path, k, PARAM_KEYS)
        if not isinstance(spec, Mapping) or "value" in spec:
            if isinstance(spec, Mapping) and len(spec) > 1:
                other = next(k for k in spec if k != "value")
                raise loc.error((*path, other), NOVALUE, "a fixed 'value' takes no other keys")
            raw = spec["value"] if isinstance(spec, Mapping) else spec
            vpath = (*path, "value") if isinstance(spec, Mapping) else path
            fixed[name] = plain(_norm_value(fam, name, raw, vpath, loc))
            if name == RESOLUTION and not (isinstance(fixed[name], int)
                                           and not isinstance(fixed[name], bool)):
                raise loc.error(vpath, raw, "resolution is in pixels: expected an integer")
        else:
            params[name] = _parse_param(fam, name, spec, params, fixed, target, loc)
        order.append(name)
    return list(params.values()), fixed, order


def _parse_param(fam: Family, name: str, spec: Mapping[str, Any], earlier: dict[str, Param],
                 fixed: dict[str, Any], target: Target, loc: Locator) -> Param:
    path: KeyPath = ("params", name)
    if "choices" in spec:
        for k in ("low", "high", "step", "log"):
            if k in spec:
                raise loc.error((*path, k), spec[k], "choices and a low/high range exclude "
                                                     "each other")
        raw = spec["choices"]
        if not isinstance(raw, list) or not raw:
            raise loc.error((*path, "choices"), raw, "expected a non-empty list of values")
        choices: list[Any] = []
        for i, c in enumerate(raw):
            c = _norm_value(fam, name, c, (*path, "choices", i), loc)
            if any(_same(c, o) for o in choices):
                raise loc.error((*path, "choices", i), plain(c), "repeated value")
            choices.append(c)
        if 0 < sum(isinstance(c, tuple) for c in choices) < len(choices):
            raise loc.error((*path, "choices"), raw, "mixes lists and single values")
        if name == RESOLUTION and not all(isinstance(c, int) and not isinstance(c, bool)
                                          for c in choices):
            raise loc.error((*path, "choices"), raw, "resolution is in pixels: expected "
                                                     "integers")
        p = Param(name, "choices", tuple(choices))
    elif "low" in spec or "high" in spec:
        p = _parse_range(name, spec, path, loc)
    else:
        raise loc.error(path, dict(spec), "expected choices: [...], a low/high range, or "
                                          "value: (a fixed value)")
    when = _parse_when(spec.get("when"), (*path, "when"), name, earlier, fixed, loc) \
        if "when" in spec else ()
    if "default" in spec:
        d = _norm_value(fam, name, spec["default"], (*path, "default"), loc)
        if not p.contains(d):
            raise loc.error((*path, "default"), spec["default"],
                            f"outside the parameter's values ({p.describe()})")
        return dataclasses.replace(p, when=when, default=d, declared_default=True)
    d = _family_default(fam, name, target)
    if not p.contains(d):
        vals = p.values()
        d = vals[0] if vals else p.low
    return dataclasses.replace(p, when=when, default=d)


def _parse_range(name: str, spec: Mapping[str, Any], path: KeyPath, loc: Locator) -> Param:
    for k in ("low", "high"):
        if k not in spec:
            raise loc.error(path, NOVALUE, f"a range needs both low and high (missing {k})")
        if not _is_number(spec[k]):
            raise loc.error((*path, k), spec[k], "expected a finite number")
    low, high = spec["low"], spec["high"]
    if low > high:
        raise loc.error((*path, "low"), low, f"must not exceed high ({high})")
    step, log = spec.get("step"), spec.get("log", False)
    if not isinstance(log, bool):
        raise loc.error((*path, "log"), log, "expected true or false")
    if step is not None and (not _is_number(step) or step <= 0):
        raise loc.error((*path, "step"), step, "expected a number > 0")
    if step is not None and log:
        raise loc.error((*path, "step"), step, "step and log: true exclude each other")
    if log and low <= 0:
        raise loc.error((*path, "low"), low, "a log range needs low > 0")
    is_int = all(isinstance(v, int) for v in (low, high)) and (step is None or isinstance(step, int))
    if name == RESOLUTION and not is_int:
        raise loc.error(path, dict(spec), "resolution is in pixels: expected integer low, "
                                          "high and step")
    if step is not None:
        k = (high - low) / step
        if abs(k - round(k)) > 1e-9:
            raise loc.error((*path, "step"), step, f"high - low ({high - low:g}) must be a "
                                                   "multiple of step")
    if is_int:
        return Param(name, "int", low=low, high=high, step=step, log=log)
    return Param(name, "float", low=float(low), high=float(high),
                 step=None if step is None else float(step), log=log)


def _parse_when(value: Any, path: KeyPath, name: str, earlier: dict[str, Param],
                fixed: dict[str, Any], loc: Locator) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if not isinstance(value, Mapping) or not value:
        raise loc.error(path, value, "expected a mapping {parameter: value or [values]}, "
                                     "e.g. {stage_blocks[1]: shuffle}")
    out = []
    for ref, allowed in value.items():
        rpath = (*path, ref)
        if ref not in earlier and ref not in fixed:
            before = ", ".join([*earlier, *fixed]) or "none"
            raise loc.error(rpath, NOVALUE, f"{name} can only depend on a parameter declared "
                            f"before it{did_you_mean(ref, [*earlier, *fixed])} (declared "
                            f"before: {before})")
        p = earlier.get(ref)
        list_ref = p.list_valued if p else isinstance(fixed[ref], list)
        if isinstance(allowed, list) and (not list_ref or all(isinstance(a, list) for a in allowed)):
            alts = allowed
        else:
            alts = [allowed]
        if not alts:
            raise loc.error(rpath, allowed, "expected at least one value")
        vals = []
        for a in alts:
            a = tuple(a) if isinstance(a, list) else a
            ok = p.contains(a) if p else _same(plain(a), fixed[ref]) or plain(a) == fixed[ref]
            if not ok:
                expected = p.describe() if p else f"the fixed value {show(fixed[ref])}"
                raise loc.error(rpath, plain(a), f"{ref} never takes this value ({expected})")
            vals.append(a)
        out.append((ref, tuple(vals)))
    return tuple(out)


def _reference(space: SearchSpace, force: Mapping[str, Any], skip: frozenset[str] = frozenset()
               ) -> dict[str, Any]:
    """A complete assignment: forced values, else each active parameter's default
    (fixed values in ``skip`` are left to the family's defaults)."""
    out: dict[str, Any] = {}
    for name in space.order:
        if name in skip:
            continue
        if name in space.fixed:
            out[name] = space.fixed[name]
        elif space.by_name[name].active(out):
            p = space.by_name[name]
            out[name] = force.get(name, p.default)
    return out


def _activate(space: SearchSpace, p: Param) -> dict[str, Any]:
    """Forced values that make ``p`` active (first allowed value of each condition)."""
    force: dict[str, Any] = {}
    todo = list(p.when)
    while todo:
        ref, allowed = todo.pop()
        if ref in space.by_name and ref not in force:
            force[ref] = allowed[0]
            todo.extend(space.by_name[ref].when)
    return force


def _check_values(space: SearchSpace, loc: Locator) -> None:
    """Build the reference config with each value of each parameter (at target and proxy
    size) so that impossible values fail at load time, naming their key path."""
    sizes = ((space.target.input_size, space.target.num_classes, "target size"),
             (space.proxy.resolution, 10, "proxy resolution"))

    def attempt(assigned: dict[str, Any], path: KeyPath, value: Any) -> None:
        for size, classes, what in sizes:
            try:
                space._generate({k: plain(v) for k, v in assigned.items()}, size, classes)
            except ValueError as e:
                raise loc.error(path, plain(value), f"does not build at the {what} "
                                f"({size} px at ρ = 1) with the other choices at their "
                                f"defaults: {e}") from None

    later = list(space.fixed)
    for name, value in space.fixed.items():  # each fixed value with the earlier ones only
        later.remove(name)
        attempt(_reference(space, {}, frozenset(later)), ("params", name), value)
    for p in space.params:
        force = _activate(space, p)
        if not p.active(_reference(space, force)):
            raise loc.error(("params", p.name, "when"), NOVALUE,
                            "the conditions can never all hold")
        if p.kind == "choices":
            trials = [(("params", p.name, "choices", i), c) for i, c in enumerate(p.choices)]
        else:
            trials = [(("params", p.name, "low"), p.low), (("params", p.name, "high"), p.high)]
            if p.kind == "int":
                trials = [(path, int(v)) for path, v in trials]
        for path, v in trials:
            attempt(_reference(space, {**force, p.name: v}), path, v)


COMBINATION_CHECKS = 24


def _check_combinations(space: SearchSpace, loc: Locator) -> None:
    """Build a few seeded random combinations at target and proxy size: a combination that
    fails although each value builds on its own is reported at load time."""
    rng = random.Random(0)
    for _ in range(COMBINATION_CHECKS):
        params = space.sample(RandomTrial(rng))
        for size, classes, what in ((space.target.input_size, space.target.num_classes,
                                     "target size"), (space.proxy.resolution, 10, "proxy "
                                                                                  "resolution")):
            try:
                space._generate(params, size, classes)
            except ValueError as e:
                raise loc.error(("params",), params, f"this combination does not build at the "
                                f"{what} ({size} px at ρ = 1): {e}; narrow the choices "
                                "(every combination must build)") from None


def _parse_baselines(space: SearchSpace, value: Any, loc: Locator) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise loc.error(("baselines",), value, "expected a mapping: name → params")
    out: dict[str, dict[str, Any]] = {}
    for bname, params in value.items():
        path: KeyPath = ("baselines", bname)
        if not isinstance(params, Mapping):
            raise loc.error(path, params, "expected a mapping of the space's parameters")
        full = space.complete(params, where=path, loc=loc)
        for size, classes, what in ((space.target.input_size, space.target.num_classes,
                                     "target size"), (space.proxy.resolution, 10, "proxy "
                                                                                  "resolution")):
            try:
                space._generate(full, size, classes)
            except ValueError as e:
                raise loc.error(path, NOVALUE, f"does not build at the {what}: {e}") from None
        out[bname] = full
    return out
