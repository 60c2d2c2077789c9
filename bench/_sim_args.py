"""The command line shared by the benchmarks that decide synthetic runs (nasl.decide.simulate)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path


def sim_parser(doc: str, sizes: list[str], scenarios: list[str]) -> argparse.ArgumentParser:
    """A parser with ``--runs``, ``--budgets``, ``--sizes`` (DESIGNSxBASELINES), ``--scenarios``,
    ``--margin`` (δ, points) and ``--out``; ``doc``'s first line is its description."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--runs", type=int, default=400)
    p.add_argument("--budgets", type=int, nargs="+", default=[8, 24])
    p.add_argument("--sizes", nargs="+", default=sizes, help="DESIGNSxBASELINES")
    p.add_argument("--scenarios", nargs="+", default=scenarios)
    p.add_argument("--margin", type=float, default=1.0, help="δ, points")
    p.add_argument("--out", type=Path)
    return p


def cells(a: argparse.Namespace) -> Iterator[tuple[str, int, int, str]]:
    """(size, designs, baselines, scenario) for every ``--sizes`` × ``--scenarios``."""
    for size in a.sizes:
        nd, nb = (int(x) for x in size.split("x"))
        for scen in a.scenarios:
            yield size, nd, nb, scen
