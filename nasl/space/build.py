"""Validating a plain space document (as read from YAML) into a space.

In: the document, a :class:`~nasl.space.yamlsafe.Locator` and the class to build (a
:class:`~nasl.space.core.SpaceCore`; :func:`nasl.space.model.build_space` passes
``SearchSpace``). Out: a space whose every value was checked: names against the family's
design choices, ranges, conditions, each value (and a few seeded combinations) built at the
target and proxy sizes, the baselines completed and built. Any problem is one NaslError line
(file:line: key: value — expected).
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from nasl.common.errors import NaslError
from nasl.common.units import METRICS, Budgets, parse_budget
from nasl.families import FAMILIES, IO_ARGS, Family
from nasl.space.choices import (
    INDEXED,
    RESOLUTION,
    family_default,
    is_number,
    list_typed,
    same_value,
    split_list,
    stage_count,
)
from nasl.space.core import RandomTrial, SpaceCore
from nasl.space.scalars import check_scalar
from nasl.space.schema import (
    PARAM_KEYS,
    Param,
    Proxy,
    SearchDefaults,
    Target,
    Tracking,
    did_you_mean,
    parse_objectives,
    parse_section,
    plain,
    unknown_key,
)
from nasl.space.yamlsafe import NOVALUE, KeyPath, Locator, show

TOP_KEYS = ("name", "family", "description", "target", "proxy", "objectives", "budget",
            "params", "baselines", "search", "tracking")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
S = TypeVar("S", bound=SpaceCore)


def validate_space(data: Any, loc: Locator, cls: type[S], *, default_name: str = "space") -> S:
    """Validate a plain document (as read from YAML) → a ``cls`` instance; NaslError naming
    ``loc``'s file, line, key path and value otherwise. ``default_name`` is the space's name
    when the document gives none."""
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
    tracking = parse_section(Tracking, data.get("tracking"), ("tracking",), loc)
    objectives = parse_objectives(data.get("objectives"), loc)
    budget = parse_budget_section(data.get("budget"), loc)
    if "params" not in data:
        raise loc.error((), NOVALUE, "missing key 'params' (the design choices to search)")
    params, fixed, order = _parse_params(data["params"], fam, target, loc)
    space = cls(name, family, description, target, proxy, objectives, budget,
                        tuple(params), fixed, {}, search, tuple(order), loc.source)
    _check_values(space, loc)
    _check_combinations(space, loc)
    baselines = _parse_baselines(space, data.get("baselines"), loc)
    return dataclasses.replace(space, baselines=baselines, tracking=tracking)


def parse_budget_section(value: Any, loc: Locator) -> Budgets:
    """The ``budget`` section → Budgets (NaslError naming the key otherwise)."""
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
    if isinstance(value, str) and list_typed(fam, name):
        value = split_list(value)
    return check_scalar(value, path, loc, list_ok=True)


def _check_name(fam: Family, name: Any, declared: set[str], loc: Locator) -> None:
    path: KeyPath = ("params", str(name))
    allowed = [k for k in fam.defaults if k not in IO_ARGS] + [RESOLUTION]
    if name in IO_ARGS:
        raise loc.error(path, NOVALUE, f"{name} is not a design choice; set target.{name} "
                                       "(and proxy.resolution) instead")
    m = INDEXED.match(name)
    if m:
        base, i = m[1], int(m[2])
        if base not in fam.defaults or base in IO_ARGS:
            raise loc.error(path, NOVALUE, f"unknown design choice {base!r} for family "
                            f"{fam.name!r}{did_you_mean(base, allowed)}")
        d = fam.defaults[base]
        n = len(d) if isinstance(d, (list, tuple)) else stage_count(fam, {})
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
            if any(same_value(c, o) for o in choices):
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
    d = family_default(fam, name, target.input_size)
    if not p.contains(d):
        vals = p.values()
        d = vals[0] if vals else p.low
    return dataclasses.replace(p, when=when, default=d)


def _parse_range(name: str, spec: Mapping[str, Any], path: KeyPath, loc: Locator) -> Param:
    for k in ("low", "high"):
        if k not in spec:
            raise loc.error(path, NOVALUE, f"a range needs both low and high (missing {k})")
        if not is_number(spec[k]):
            raise loc.error((*path, k), spec[k], "expected a finite number")
    low, high = spec["low"], spec["high"]
    if low > high:
        raise loc.error((*path, "low"), low, f"must not exceed high ({high})")
    step, log = spec.get("step"), spec.get("log", False)
    if not isinstance(log, bool):
        raise loc.error((*path, "log"), log, "expected true or false")
    if step is not None and (not is_number(step) or step <= 0):
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
            ok = p.contains(a) if p else same_value(plain(a), fixed[ref]) or plain(a) == fixed[ref]
            if not ok:
                expected = p.describe() if p else f"the fixed value {show(fixed[ref])}"
                raise loc.error(rpath, plain(a), f"{ref} never takes this value ({expected})")
            vals.append(a)
        out.append((ref, tuple(vals)))
    return tuple(out)


def _reference(space: SpaceCore, force: Mapping[str, Any], skip: frozenset[str] = frozenset()
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


def _activate(space: SpaceCore, p: Param) -> dict[str, Any]:
    """Forced values that make ``p`` active (first allowed value of each condition)."""
    force: dict[str, Any] = {}
    todo = list(p.when)
    while todo:
        ref, allowed = todo.pop()
        if ref in space.by_name and ref not in force:
            force[ref] = allowed[0]
            todo.extend(space.by_name[ref].when)
    return force


def _check_values(space: SpaceCore, loc: Locator) -> None:
    """Build the reference config with each value of each parameter (at target and proxy
    size) so that impossible values fail at load time, naming their key path."""
    sizes = ((space.target.input_size, space.target.num_classes, "target size"),
             (space.proxy.resolution, 10, "proxy resolution"))

    def attempt(assigned: dict[str, Any], path: KeyPath, value: Any) -> None:
        for size, classes, what in sizes:
            try:
                space.generate_arch({k: plain(v) for k, v in assigned.items()}, size, classes)
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


def _build_error(space: SpaceCore, params: Mapping[str, Any]) -> tuple[str, int, str] | None:
    """(where, size, why) if ``params`` does not build at the target size or the proxy
    resolution, else None."""
    for size, classes, what in ((space.target.input_size, space.target.num_classes,
                                 "target size"), (space.proxy.resolution, 10, "proxy resolution")):
        try:
            space.generate_arch(params, size, classes)
        except ValueError as e:
            return what, size, str(e)
    return None


def _check_combinations(space: SpaceCore, loc: Locator) -> None:
    """Build a few seeded random combinations at target and proxy size: a combination that
    fails although each value builds on its own is reported at load time."""
    rng = random.Random(0)
    for _ in range(COMBINATION_CHECKS):
        params = space.sample(RandomTrial(rng))
        if (err := _build_error(space, params)) is not None:
            what, size, e = err
            raise loc.error(("params",), params, f"this combination does not build at the "
                            f"{what} ({size} px at ρ = 1): {e}; narrow the choices "
                            "(every combination must build)")


def _parse_baselines(space: SpaceCore, value: Any, loc: Locator) -> dict[str, dict[str, Any]]:
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
        if (err := _build_error(space, full)) is not None:
            raise loc.error(path, NOVALUE, f"does not build at the {err[0]}: {err[2]}")
        out[bname] = full
    return out
