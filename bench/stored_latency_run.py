"""Shared by the offline latency studies (``eval_*.py``): a stored run of
``bench_latency_predictor.py`` and its designs, re-derived without timing anything.

In: the run's JSON (``--out`` of the benchmark) and its stored predictor(s). Out: the
argument parser every study starts from, and per space the run's designs in the order the
run sampled them (calibration, kernel-sweep-only, held-out) with their measured times.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any


def parser(doc: str) -> argparse.ArgumentParser:
    """``results``, ``predictor`` ({space} replaced), ``--spaces``, ``--seed``, ``--key``."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("results", help="the JSON written by bench_latency_predictor.py --out")
    p.add_argument("predictor", help="its stored predictor ({space} is replaced by the space)")
    p.add_argument("--spaces", nargs="+", default=["shufflenet", "mobilenet"])
    p.add_argument("--seed", type=int, default=0, help="the run's --seed")
    p.add_argument("--key", default="{space}", help="the results key ({space} is replaced)")
    return p


@dataclass
class StoredRun:
    """One space of a stored run: ``result`` (its JSON entry), ``predictor`` (stored),
    ``calib``/``extra``/``held`` (ArchConfigs: calibration, kernel sweep only, held out) and
    ``measured`` (arch id → measured ms)."""

    result: dict[str, Any]
    predictor: Any
    calib: list[Any]
    extra: list[Any]
    held: list[Any]
    measured: dict[str, float]


def load(a: argparse.Namespace, name: str) -> StoredRun | None:
    """The stored run of space ``name`` (None when the results have no such key)."""
    from nasl.latency.calibrate import sample_designs
    from nasl.latency.predictor import Predictor
    from nasl.space import load_space

    with open(a.results, encoding="utf-8") as f:
        res = json.load(f)
    r = res.get(a.key.format(space=name))
    if r is None:
        return None
    d = r["details"]
    nc, nk = d["designs"], d["kernel_designs"]
    sampled = [x for _, x in sample_designs(load_space(name), nc + nk + d["holdout"], a.seed)]
    return StoredRun(r, Predictor.load(a.predictor.format(space=name)), sampled[:nc],
                     sampled[nc:nc + nk], sampled[nc + nk:],
                     {row["arch_id"]: row["measured_ms"] for row in d["rows"]})
