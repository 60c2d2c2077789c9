"""Value checks shared by the generators (clear ``ValueError`` messages)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


def positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def fraction(name: str, value: Any, *, inclusive_high: bool = True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and (
        value <= 1 if inclusive_high else value < 1)
    if not ok:
        high = "1]" if inclusive_high else "1)"
        raise ValueError(f"{name} must be in (0, {high}, got {value!r}")
    return float(value)


def int_list(name: str, value: Any, length: int | None = None, minimum: int = 1) -> tuple[int, ...]:
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
        try:
            value = [int(v) for v in value]
        except ValueError:
            raise ValueError(f"{name} must be a list of integers, got {value!r}") from None
    if not isinstance(value, Sequence) or any(
            isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in value):
        raise ValueError(f"{name} must be a list of integers >= {minimum}, got {value!r}")
    if length is not None and len(value) != length:
        raise ValueError(f"{name} must have {length} entries, got {len(value)}")
    return tuple(value)


def scaled_size(input_size: Any, resolution_mult: Any) -> int:
    """Input side at ρ: ``round(input_size * resolution_mult)``."""
    positive_int("input_size", input_size)
    rho = positive("resolution_mult", resolution_mult)
    if rho > 4:
        raise ValueError(f"resolution_mult must be in (0, 4], got {resolution_mult!r}")
    return max(1, round(input_size * rho))
