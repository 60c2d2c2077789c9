"""Tests for nasl.stats.pareto: fronts, hypervolume, knee, pick, spearman."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from nasl.stats import pareto
from nasl.stats.pareto import (
    hypervolume,
    knee,
    non_dominated,
    non_dominated_sort,
    pick,
    reference_point,
    spearman,
)

MIN2 = ["minimize", "minimize"]


def test_does_not_import_torch() -> None:
    code = "import sys, nasl.stats.pareto; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_non_dominated_2d_minimize() -> None:
    pts = [(1, 5), (2, 3), (3, 4), (4, 1), (5, 5), (2, 3.5)]
    assert non_dominated(pts, MIN2) == [0, 1, 3]


def test_non_dominated_mixed_directions() -> None:
    # (accuracy max, macs min)
    pts = [(0.70, 10e6), (0.80, 30e6), (0.75, 40e6), (0.60, 5e6), (0.80, 35e6)]
    assert non_dominated(pts, ["maximize", "minimize"]) == [0, 1, 3]


def test_duplicates_of_front_points_are_all_kept() -> None:
    pts = [(1, 2), (1, 2), (2, 1), (3, 3), (3, 3)]
    assert non_dominated(pts, MIN2) == [0, 1, 2]
    assert non_dominated_sort(pts, MIN2) == [[0, 1, 2], [3, 4]]


def test_non_dominated_3d() -> None:
    pts = [(1, 1, 1), (0, 2, 2), (2, 0, 2), (2, 2, 0), (2, 2, 2), (1, 1, 3)]
    assert non_dominated(pts, ["minimize"] * 3) == [0, 1, 2, 3]
    assert non_dominated_sort(pts, ["minimize"] * 3) == [[0, 1, 2, 3], [4, 5]]


def test_non_dominated_sort_ranks_layers() -> None:
    pts = [(1, 1), (2, 2), (3, 3), (1, 3), (3, 1)]
    assert non_dominated_sort(pts, MIN2) == [[0], [1, 3, 4], [2]]
    assert non_dominated_sort([], MIN2) == []
    assert non_dominated([], MIN2) == []


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="direction"):
        non_dominated([(1, 2)], ["minimize", "smallest"])
    with pytest.raises(ValueError, match="finite"):
        non_dominated([(1, float("nan"))], MIN2)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        non_dominated([(1, 2, 3)], MIN2)


def test_optuna_study_direction_accepted() -> None:
    optuna = pytest.importorskip("optuna")
    dirs = [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert non_dominated([(1, 1), (0, 2)], dirs) == [0]


def test_hypervolume_unit_square_and_staircase() -> None:
    assert hypervolume([(0, 0)], MIN2, (1, 1)) == pytest.approx(1.0, abs=1e-12)
    # staircase (0,2),(1,1),(2,0) with ref (3,3): 3*1 + 2*1 + 1*1 + ... = 6
    hv = hypervolume([(0, 2), (1, 1), (2, 0), (2, 2)], MIN2, (3, 3))
    assert hv == pytest.approx(6.0, abs=1e-12)


def test_hypervolume_maximize_and_outside_reference() -> None:
    # accuracy max (ref 0), macs min (ref 1): one point at (1, 0) covers the unit square
    assert hypervolume([(1.0, 0.0)], ["maximize", "minimize"], (0, 1)) == pytest.approx(1.0)
    # a point worse than the reference in one objective adds nothing
    hv = hypervolume([(0.5, 0.5), (0.9, 2.0)], ["maximize", "minimize"], (0, 1))
    assert hv == pytest.approx(0.25, abs=1e-12)
    assert hypervolume([], MIN2, (1, 1)) == 0.0


def test_hypervolume_3d_unit_cubes() -> None:
    d3 = ["minimize"] * 3
    assert hypervolume([(0, 0, 0)], d3, (1, 1, 1)) == pytest.approx(1.0, abs=1e-12)
    # two unit cubes [0,2]x[0,1]x[0,1] and [0,1]x[0,2]x[0,1] overlap in one: union = 3
    assert hypervolume([(0, 1, 0), (1, 0, 0)], d3, (2, 2, 1)) == pytest.approx(3.0, abs=1e-12)
    # three 2x1x1 boxes whose pairwise (and triple) overlap is one unit cube: 6 - 3 + 1 = 4
    pts = [(0, 1, 1), (1, 0, 1), (1, 1, 0)]
    assert hypervolume(pts, d3, (2, 2, 2)) == pytest.approx(4.0, abs=1e-12)


def test_fallback_matches_optuna_on_random_sets() -> None:
    rng = np.random.default_rng(0)
    for m in (2, 3, 4):
        pts = rng.random((25, m))
        ref = np.ones(m) * 1.1
        ours = pareto._hv_exact(pts[pareto._non_dominated_mask(pts)], ref)
        assert hypervolume(pts, ["minimize"] * m, ref) == pytest.approx(ours, rel=1e-9)


def test_reference_point_rules() -> None:
    pts = [(0.7, 10e6, 2.0), (0.8, 30e6, 4.0)]
    dirs = ["maximize", "minimize", "minimize"]
    names = ["accuracy", "macs", "latency_ms"]
    ref = reference_point(pts, dirs, {"macs": 40e6}, names)
    assert ref == pytest.approx([0.0, 40e6, 4.4])
    assert reference_point(pts, dirs, [None, None, 5.0]) == pytest.approx([0.0, 33e6, 5.0])
    assert reference_point([(-1.0,)], ["maximize"]) == pytest.approx([-1.1])
    with pytest.raises(ValueError, match="names"):
        reference_point(pts, dirs, {"macs": 40e6})


def test_knee_picks_corner_of_l_shape() -> None:
    pts = [(0, 10), (0.5, 5), (1, 1), (5, 0.5), (10, 0), (6, 6)]
    assert knee(pts, MIN2) == 2
    # same front as (accuracy max, macs min)
    acc_macs = [(1 - y / 10, x * 1e6) for x, y in pts]
    assert knee(acc_macs, ["maximize", "minimize"]) == 2


def test_knee_3d_corner() -> None:
    pts = [(0, 10, 10), (10, 0, 10), (10, 10, 0), (1, 1, 1), (3, 3, 3)]
    assert knee(pts, ["minimize"] * 3) == 3


def test_knee_small_fronts() -> None:
    assert knee([(3, 3)], MIN2) == 0
    # two front points: the better on the first objective
    assert knee([(2, 1), (1, 2), (5, 5)], MIN2) == 1
    assert knee([(0.7, 1), (0.9, 2)], ["maximize", "minimize"]) == 1
    # linear front: every distance equal -> better on the first objective
    assert knee([(1, 1), (0, 2), (2, 0)], MIN2) == 1
    with pytest.raises(ValueError):
        knee([], MIN2)


def test_pick_options() -> None:
    names = ["accuracy", "macs", "latency_ms"]
    dirs = ["maximize", "minimize", "minimize"]
    pts = [
        (0.60, 5e6, 1.0),  # lowest macs and latency
        (0.75, 10e6, 1.5),  # knee-ish
        (0.80, 40e6, 6.0),  # highest accuracy
        (0.50, 50e6, 9.0),  # dominated
    ]
    assert pick(pts, dirs, "accuracy", names) == 2
    assert pick(pts, dirs, "macs", names) == 0
    assert pick(pts, dirs, "latency", names) == 0
    assert pick(pts, dirs, "latency_ms", names) == 0
    assert pick(pts, dirs, "knee", names) == 1
    with pytest.raises(ValueError, match="valid: knee, accuracy, macs, latency_ms, latency"):
        pick(pts, dirs, "params", names)


def test_pick_ties_use_other_objectives() -> None:
    pts = [(0.8, 20e6), (0.8, 10e6), (0.7, 5e6)]
    assert pick(pts, ["maximize", "minimize"], "accuracy", ["accuracy", "macs"]) == 1


def test_spearman_known_values() -> None:
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(0.8207826816681233)
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)
    assert math.isnan(spearman([1], [2]))
    assert math.isnan(spearman([1, 2, 3], [4, 4, 4]))
    with pytest.raises(ValueError):
        spearman([1, 2], [1, 2, 3])


def test_spearman_matches_scipy_with_ties() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, 40).astype(float)
    y = x + rng.integers(0, 3, 40)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
