"""Helpers shared by the command modules: value parsing, the console, human numbers."""

from __future__ import annotations

import sys
from typing import Any

from nasl.common.errors import NaslError
from nasl.common.units import parse_assignments

MACS_NOTE = ("MACs are multiply-accumulates of conv and linear layers (BN, activations, pooling "
             "count zero); 'FLOPs' means the same, as in the ShuffleNet paper: 40MFLOPs = 40e6 "
             "multiply-adds.")


parse_set = parse_assignments  # (the CLI's name)


def console() -> Any:
    """A rich console; wide when the output is not a terminal (files, pipes, CI logs)."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160)


def human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


def parse_duration(text: str) -> float:
    """``30m``, ``90s``, ``2h``, ``1h30m`` or plain seconds → seconds (``NaslError`` if bad)."""
    import re

    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        value = float(t)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)\s*(h|m|min|s|sec)", t)
        if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*(h|min|m|sec|s)", "", t).strip():
            raise NaslError(f"--timeout {text!r}: expected a duration like 30m, 90s, 2h or 1h30m")
        scale = {"h": 3600, "m": 60, "min": 60, "s": 1, "sec": 1}
        value = sum(float(n) * scale[u] for n, u in parts)
    if value <= 0:
        raise NaslError(f"--timeout {text!r}: expected a positive duration")
    return value


