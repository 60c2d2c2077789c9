"""Budgets and their units: ``'40MFLOPs'`` → ``('macs', 40e6)``; limits per metric.

Metrics and the unit each value is stored in:

- ``macs``: multiply-accumulates, a plain count. ``FLOPs`` means multiply-adds here (the
  ShuffleNet paper's convention), so ``40MFLOPs`` = ``40MMACs`` = ``40M`` = 40e6.
- ``params``: trainable parameters, a plain count (``1.5Mparams`` = 1.5e6).
- ``latency_ms``: milliseconds (``5ms``, ``300us``, ``0.1s``).
- ``size_mb``: MiB of fp32 weights, 4 bytes × params / 2**20, the "MB" of the SqueezeNet
  paper (``2MB``, ``500KB``, ``1GB``; KB/MB/GB are KiB/MiB/GiB).

Magnitude prefixes ``k``/``K``, ``M``/``m``, ``G``/``g``, ``T`` are powers of 1000 for
counts (a lower-case ``m`` is mega: milli-FLOPs make no sense). Forms: ``40MFLOPs``,
``140 MFLOPs``, ``0.04GFLOPs``, ``40M`` (a bare count is MACs), ``1.5Mparams``, ``5ms``,
``2MB`` and the explicit ``macs<=40M``, ``latency_ms<=5``, ``params<=1.5M``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from nasl.common.errors import NaslError

METRICS = ("macs", "params", "size_mb", "latency_ms")
# metrics known from the architecture alone (no measurement)
ANALYTIC = ("macs", "params", "size_mb")
EXAMPLES = "40MFLOPs, 1.5Mparams, 5ms, 2MB or macs<=40M"

_METRIC_ALIASES = {
    "macs": "macs", "mac": "macs", "flops": "macs", "flop": "macs", "madds": "macs",
    "mult-adds": "macs", "multadds": "macs",
    "params": "params", "param": "params", "parameters": "params",
    "latency_ms": "latency_ms", "latency": "latency_ms",
    "size_mb": "size_mb", "size": "size_mb",
}
_PREFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_COUNT_BASE = {"": "macs", "flops": "macs", "flop": "macs", "macs": "macs", "mac": "macs",
               "madds": "macs", "mult-adds": "macs", "params": "params", "param": "params",
               "p": "params"}
_TIME = {"ms": Decimal(1), "us": Decimal("0.001"), "µs": Decimal("0.001"),
         "μs": Decimal("0.001"), "ns": Decimal("0.000001"), "s": Decimal(1000)}
_SIZE = {"b": Decimal(1) / 2**20, "kb": Decimal(1) / 1024, "kib": Decimal(1) / 1024,
         "mb": Decimal(1), "mib": Decimal(1), "gb": Decimal(1024), "gib": Decimal(1024)}
_FORM = re.compile(
    r"^\s*(?:(?P<metric>[A-Za-z_-]+)\s*(?:<=|=|<)\s*)?"
    r"(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<unit>\S*)\s*$")


def size_mb(params: float) -> float:
    """fp32 model size in MiB (the SqueezeNet paper's "MB"): 4 bytes × params / 2**20."""
    return 4.0 * params / 2**20


def _unit(unit: str) -> tuple[str, Decimal] | None:
    """``'MFLOPs'`` → ``('macs', 1e6)``; None when the unit is unknown."""
    low = unit.lower()
    if low in _TIME or unit in _TIME:
        return "latency_ms", _TIME.get(low, _TIME.get(unit, Decimal(1)))
    if low in _SIZE:
        return "size_mb", _SIZE[low]
    for prefix in ("", *sorted(set(_PREFIX) - {""})):
        if low.startswith(prefix) and low[len(prefix):] in _COUNT_BASE:
            return _COUNT_BASE[low[len(prefix):]], Decimal(_PREFIX[prefix])
    return None


def parse_budget(text: Any, *, what: str = "--budget") -> tuple[str, float]:
    """``'40MFLOPs'`` → ``('macs', 40000000.0)``. Raises NaslError naming ``what``.

    The value must be a positive, finite number; see the module docstring for forms.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise NaslError(f"{what} {text!r}: expected a budget such as {EXAMPLES}")
    src = str(text)
    m = _FORM.match(src)
    if not m:
        raise NaslError(f"{what} {src!r}: cannot read a number; expected e.g. {EXAMPLES}")
    metric_word, unit = m["metric"], m["unit"]
    explicit = None
    if metric_word is not None:
        explicit = _METRIC_ALIASES.get(metric_word.lower())
        if explicit is None:
            raise NaslError(f"{what} {src!r}: unknown metric {metric_word!r}; expected one of "
                            f"{', '.join(METRICS)}")
    if unit == "" and explicit in ("latency_ms", "size_mb"):
        metric, scale = explicit, Decimal(1)
    else:
        found = _unit(unit)
        if found is None:
            raise NaslError(f"{what} {src!r}: unknown unit {unit!r}; expected e.g. {EXAMPLES}")
        metric, scale = found
        if explicit == "params" and metric == "macs" and unit.lower() in ("", *"kmgt"):
            metric = "params"  # params<=1.5M
        if explicit is not None and explicit != metric:
            raise NaslError(f"{what} {src!r}: unit {unit!r} does not measure {explicit}")
    try:
        value = float(Decimal(m["num"]) * scale)
    except InvalidOperation:  # pragma: no cover - the regex admits only numbers
        raise NaslError(f"{what} {src!r}: cannot read a number; expected e.g. {EXAMPLES}") from None
    if not math.isfinite(value) or value <= 0:
        raise NaslError(f"{what} {src!r}: a budget must be a positive number, got {value:g}")
    return metric, value


def parse_budgets(texts: Iterable[Any], *, what: str = "--budget") -> dict[str, float]:
    """Several budgets → ``{metric: limit}``; one metric given twice is an error."""
    out: dict[str, float] = {}
    for text in texts:
        metric, value = parse_budget(text, what=what)
        if metric in out:
            raise NaslError(f"{what} {text!r}: {metric} is limited twice "
                            f"({format_budget(metric, out[metric])} and "
                            f"{format_budget(metric, value)}); give it once")
        out[metric] = value
    return out


def _num(x: float) -> str:
    return f"{x:.10g}"


def _exact(x: float) -> str:
    """Short text for ``x`` when it reads back exactly, else Python's round-trip repr."""
    return _num(x) if float(_num(x)) == x else repr(x)


def format_budget(metric: str, value: float) -> str:
    """``('macs', 40e6)`` → ``'40M'``, ``'1.5Mparams'``, ``'5ms'``, ``'2MB'``.

    The text parses back to the same value with :func:`parse_budget`.
    """
    if metric == "latency_ms":
        return f"{_exact(value)}ms"
    if metric == "size_mb":
        return f"{_exact(value)}MB"
    if metric not in ("macs", "params"):
        raise ValueError(f"unknown metric {metric!r}")
    suffix = "" if metric == "macs" else "params"
    for prefix, mult in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= mult:
            text = f"{_num(value / mult)}{prefix}{suffix}"
            try:
                if parse_budget(text)[1] == value:
                    return text
            except NaslError:  # rounding pushed a huge value past the float range
                pass
    return f"{_exact(value)}{suffix}"


def format_cost(metric: str, value: float) -> str:
    """Human-readable cost: ``'37.59M MACs'``, ``'1.23M params'``, ``'4.7 MB'``, ``'5.1 ms'``."""
    if metric in ("macs", "params"):
        unit = " MACs" if metric == "macs" else " params"
        for prefix, mult in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if abs(value) >= mult:
                return f"{value / mult:.2f}{prefix}{unit}"
        return f"{value:g}{unit}"
    return f"{value:.3g} MB" if metric == "size_mb" else f"{value:.3g} ms"


class Budgets(Mapping[str, float]):
    """Hard limits per metric (``{'macs': 40e6, 'latency_ms': 5.0}``), immutable.

    Values are in the units of :data:`METRICS` (counts, ms, MiB). Iterates in
    :data:`METRICS` order.
    """

    def __init__(self, limits: Mapping[str, float] | None = None) -> None:
        limits = dict(limits or {})
        for k, v in limits.items():
            if k not in METRICS:
                raise ValueError(f"unknown budget metric {k!r}; expected one of {METRICS}")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ValueError(f"budget {k} must be a positive number, got {v!r}")
        self._limits = {k: float(limits[k]) for k in METRICS if k in limits}

    @classmethod
    def parse(cls, texts: Iterable[Any], *, what: str = "--budget") -> Budgets:
        """Budgets from texts such as ``['40MFLOPs', '5ms']``."""
        return cls(parse_budgets(texts, what=what))

    def __getitem__(self, key: str) -> float:
        return self._limits[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._limits)

    def __len__(self) -> int:
        return len(self._limits)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self._limits) == dict(other)

    def __hash__(self) -> int:
        return hash(tuple(self._limits.items()))

    def __repr__(self) -> str:
        return f"Budgets({self._limits!r})"

    def __str__(self) -> str:
        return ", ".join(f"{k}<={format_budget(k, v)}" for k, v in self.items()) or "none"

    def merged(self, other: Mapping[str, float]) -> Budgets:
        """These limits with ``other``'s replacing them metric by metric."""
        return Budgets({**self._limits, **dict(other)})

    def analytic(self) -> Budgets:
        """Only the limits checkable from the architecture (macs, params, size_mb)."""
        return Budgets({k: v for k, v in self.items() if k in ANALYTIC})

    def violations(self, costs: Mapping[str, float]) -> dict[str, tuple[float, float]]:
        """``{metric: (value, limit)}`` for each limited metric in ``costs`` over its limit.

        Metrics missing from ``costs`` are not checked.
        """
        return {k: (float(costs[k]), v) for k, v in self.items()
                if k in costs and costs[k] is not None and costs[k] > v}

    def fits(self, costs: Mapping[str, float]) -> bool:
        """True when no metric in ``costs`` exceeds its limit."""
        return not self.violations(costs)

    def to_texts(self) -> dict[str, str]:
        """``{metric: '40M'}``: the YAML form (parses back to the same values)."""
        return {k: format_budget(k, v) for k, v in self.items()}


def parse_assignments(items: Iterable[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` strings → dict; values are read as YAML scalars/lists (0.5, true, [4,8,4])."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise NaslError(f"--set {item!r}: expected KEY=VALUE, e.g. --set width_mult=0.5")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            raise NaslError(f"--set {item!r}: cannot read value {raw!r}; expected a number, "
                            "true/false, a word or a list like [4,8,4]") from None
    return out
