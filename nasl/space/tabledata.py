"""Reading a table of known designs (CSV, optionally gzipped) and the NAS-Bench-201 cell string.

In: a CSV path (``.csv`` or ``.csv.gz``) with a header row. Out: :class:`Table`, its columns
as lists of text (numbers are parsed by the caller, which knows which columns are numeric).
:func:`parse_nb201_cell` turns ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` into the six edge
operations; :func:`nb201_costs` gives a cell network's analytic MACs and parameters.
Shipped tables live in ``nasl/tables`` (package data). No torch here.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

#: The operations of a NAS-Bench-201 edge.
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: The six edges of a NAS-Bench-201 cell as ``edge_<node>_<input>`` (node ``i`` sums its inputs).
NB201_EDGES = ("edge_1_0", "edge_2_0", "edge_2_1", "edge_3_0", "edge_3_1", "edge_3_2")
#: Cell-string formats a table's ``cell.format`` may name.
CELL_FORMATS = ("nb201",)


def tables_dir() -> Path:
    """The folder holding the shipped tables (``nasl/tables``)."""
    return Path(str(resources.files("nasl").joinpath("tables")))


def shipped_tables() -> list[str]:
    """File names of the shipped tables, sorted."""
    d = tables_dir()
    return sorted(p.name for p in d.iterdir() if p.name.endswith((".csv", ".csv.gz"))) \
        if d.is_dir() else []


@dataclass(frozen=True)
class Table:
    """A table read from ``path``: column name → the column's cells as text, in row order."""

    path: str
    columns: dict[str, list[str]]

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


def read_table(path: str | os.PathLike[str]) -> Table:
    """Read a CSV (``.gz``: gzipped) with a header row → :class:`Table` (cached per file and
    modification time). ``OSError``/``ValueError`` for an unreadable or empty file."""
    p = Path(path).absolute()
    return _read_cached(str(p), p.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read_cached(path: str, mtime_ns: int) -> Table:
    raw = Path(path).read_bytes()
    if path.endswith(".gz"):
        raw = gzip.decompress(raw)
    reader = csv.reader(io.StringIO(raw.decode("utf-8-sig")))
    header = next(reader, None)
    if not header:
        raise ValueError("empty file; expected a CSV with a header row")
    cols: list[list[str]] = [[] for _ in header]
    for i, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise ValueError(f"line {i} has {len(row)} cells, the header {len(header)}")
        for c, v in zip(cols, row, strict=True):
            c.append(v)
    return Table(path, {h.strip(): c for h, c in zip(header, cols, strict=True)})


def parse_nb201_cell(text: str) -> tuple[str, ...]:
    """``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` → the six ops in :data:`NB201_EDGES` order.

    ``ValueError`` naming the part that is wrong (shape, input index or unknown op)."""
    nodes = text.strip().strip("|").split("|+|")
    if len(nodes) != 3:
        raise ValueError(f"expected 3 nodes separated by '|+|', got {len(nodes)}")
    ops: list[str] = []
    for i, node in enumerate(nodes, start=1):
        edges = node.split("|")
        if len(edges) != i:
            raise ValueError(f"node {i} has {len(edges)} edges; expected {i}")
        for j, edge in enumerate(edges):
            op, _, src = edge.partition("~")
            if src != str(j):
                raise ValueError(f"edge {edge!r} of node {i}: expected input ~{j}")
            if op not in NB201_OPS:
                raise ValueError(f"unknown op {op!r} (expected one of: {', '.join(NB201_OPS)})")
            ops.append(op)
    return tuple(ops)


def nb201_cell_string(ops: tuple[str, ...] | list[str]) -> str:
    """The inverse of :func:`parse_nb201_cell`."""
    o = list(ops)
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


def nb201_costs(ops: tuple[str, ...] | list[str]) -> dict[str, float]:
    """Analytic MACs and parameters of the CIFAR-10 NAS-Bench-201 network with cell ``ops``.

    The network: a 3x3 stem (3 → 16), three stages of five cells (16, 32, 64 channels at 32,
    16, 8 px) joined by two residual reduction blocks, global pooling and a 10-way classifier.
    Counted: convolutions and the classifier (batch norm, pooling and additions are not),
    which gives the benchmark's 7.8 M to 220 M range of FLOPs (multiply-adds).
    """
    macs = 3 * 16 * 9 * 32 * 32.0
    params = 3 * 16 * 9.0
    for c, hw in ((16, 32 * 32), (32, 16 * 16), (64, 8 * 8)):
        per = {"nor_conv_3x3": c * c * 9, "nor_conv_1x1": c * c}
        weights = sum(per.get(op, 0) for op in ops)
        macs += 5 * weights * hw
        params += 5 * weights
    for cin, hw in ((16, 16 * 16), (32, 8 * 8)):  # reduction: 3x3/2, 3x3, 1x1 shortcut
        w = cin * 2 * cin * 9 + 2 * cin * 2 * cin * 9 + cin * 2 * cin
        macs += w * hw
        params += w
    macs += 64 * 10
    params += 64 * 10 + 10
    return {"macs": macs, "params": params}
