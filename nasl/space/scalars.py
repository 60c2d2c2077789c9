"""Scalar values of a space file: how they print and what a choice value may be.

In: values read from YAML and their key path. Out: YAML-like text (:func:`fmt_value`), a
checked choice value (:func:`check_scalar`, ``NaslError`` through the locator otherwise).
"""

from __future__ import annotations

import math
from typing import Any

from nasl.space.yamlsafe import KeyPath, Locator

ParamValue = Any  # None, bool, int, float, str, or a tuple of ints/str (list-valued choice)


def fmt_value(value: Any) -> str:
    """A value as written in YAML, unquoted: ``shuffle``, ``true``, ``[4, 8, 4]``, ``0.5``."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt_value(v) for v in value) + "]"
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return str(value)


def on_grid(x: float) -> float:
    """``x`` rounded to 12 significant digits (a range's grid points compare equal)."""
    return float(f"{x:.12g}")


def is_number(v: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_scalar(value: Any, path: KeyPath, loc: Locator, *, list_ok: bool) -> ParamValue:
    """A choice value: None/bool/int/float/str, or (``list_ok``) a flat list of those."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise loc.error(path, value, "expected a finite number")
        return value
    if isinstance(value, list) and list_ok:
        for i, v in enumerate(value):
            if isinstance(v, (list, dict)) or v is None:
                raise loc.error((*path, i), v, "expected a number or text inside a list value")
            check_scalar(v, (*path, i), loc, list_ok=False)
        return tuple(value)
    raise loc.error(path, value, "expected a number, text, true/false, null"
                    + (" or a flat list" if list_ok else ""))
