"""Small value helpers of the W&B tracker: numbers, names, table cells, error lines, event
snapshots (no wandb import)."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from nasl.common.events import Event, FrontWritten, TrialEnded
from nasl.stats.pareto import finite


def as_number(value: Any) -> float | None:
    """Finite float of ``value`` or None (bools and blanks are not numbers)."""
    return finite(value)


def safe_name(text: str) -> str:
    """An artifact-safe name (letters, digits, ``-``, ``_``, ``.``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "nasl"


def table_cell(value: Any) -> Any:
    """A table cell: lists/tuples as ``"a,b"`` (as in trials.csv), other values as they are."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(x) for x in value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def one_line(exc: BaseException) -> str:
    """An error as one line: its type and the first 200 characters of its first line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def snapshot(event: Event) -> Event:
    """Snapshot of an event (its rows copied) so later changes of the rows do not leak in."""
    if isinstance(event, FrontWritten):
        return dataclasses.replace(event, rows=[dict(r) for r in event.rows])
    if isinstance(event, TrialEnded):
        return dataclasses.replace(event, row=dict(event.row))
    return event
