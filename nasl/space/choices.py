"""Design-choice names and values, shared by the space model and its validation.

In: a family (:class:`nasl.families.Family`), a parameter name as written in a space
(``groups``, ``stage_repeats[1]``, ``resolution``) and its values. Out: what the name
refers to (indexed entry, list-valued choice, the family's default) and value equality
that treats ``3`` and ``3.0`` alike but never ``True`` and ``1``.

This module imports nothing else from ``nasl.space``: it is the bottom layer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from nasl.families import IO_ARGS, Family

RESOLUTION = "resolution"
"""The space-level parameter: input side in pixels at the target (→ ``resolution_mult``)."""

INDEXED = re.compile(r"^([A-Za-z_]\w*)\[(\d+)\]$")
"""``name[i]``: entry ``i`` of a list-valued design choice (groups 1 and 2 of the match)."""

LIST_CHOICES = ("pool_after", "stage_repeats", "downsample_at", "stage_blocks", "base_widths")
"""Design choices whose value is a list even where a family's default is not."""


def list_typed(fam: Family, name: str) -> bool:
    """Whether design choice ``name`` of ``fam`` takes a list (``[4, 8, 4]`` or ``'4,8,4'``)."""
    return name in LIST_CHOICES or isinstance(fam.defaults.get(name), (list, tuple))


def split_list(text: str) -> list[Any]:
    """``'4,8,4'`` → ``[4, 8, 4]``; ``'dws,fire'`` → ``['dws', 'fire']`` (numbers parsed,
    empty items dropped)."""
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


def stage_count(fam: Family, choices: Mapping[str, Any]) -> int:
    """Entries of a per-stage list whose default is a single value (hybrid's ``groups``):
    the length of the family's first list-valued choice as given in ``choices`` (else its
    default); 1 if the family has none."""
    for k, d in fam.defaults.items():
        if isinstance(d, (list, tuple)):
            v = choices.get(k, d)
            return len(v) if isinstance(v, (list, tuple)) else len(split_list(str(v)))
    return 1


def family_default(fam: Family, name: str, target_input_size: int) -> Any:
    """The value parameter ``name`` has when a space does not search it: the family's
    default (one entry of it for ``name[i]``; lists as tuples), or the target input size
    for ``resolution``."""
    if name == RESOLUTION:
        return target_input_size
    m = INDEXED.match(name)
    if m:
        d = fam.defaults[m[1]]
        return d[int(m[2])] if isinstance(d, (list, tuple)) and int(m[2]) < len(d) else d
    d = fam.defaults[name]
    return tuple(d) if isinstance(d, list) else d


def param_name_ok(fam: Family, name: str) -> bool:
    """Whether ``name`` (``resolution``, a design choice or ``choice[i]``) can be a
    parameter of a space of family ``fam``."""
    m = INDEXED.match(name)
    base = m[1] if m else name
    return name == RESOLUTION or (base in fam.defaults and base not in IO_ARGS)


def same_value(a: Any, b: Any) -> bool:
    """Equal values of the same kind: ``3 == 3.0`` counts, ``True == 1`` does not."""
    return type(a) is type(b) and a == b or (
        isinstance(a, (int, float)) and isinstance(b, (int, float))
        and not isinstance(a, bool) and not isinstance(b, bool) and a == b)


def is_number(v: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
