"""Tests for nasl.stats.confidence on constructed data: seed intervals, ties, latency, the front."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as sps

from nasl.stats.confidence import (
    Candidate,
    front_confidence,
    latency_summary,
    latency_tied,
    latency_ties,
    pick_confident,
    pooled_df,
    pooled_std,
    run_seed_stats,
    seed_summary,
    tied,
)

# ---------------------------------------------------------------- seed statistics


def test_seed_summary_matches_t_interval() -> None:
    s = seed_summary([85.0, 86.0, 87.0])
    assert (s.n, s.mean, s.std, s.df, s.pooled) == (3, 86.0, 1.0, 2, False)
    half = sps.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert s.low == pytest.approx(86.0 - half) and s.high == pytest.approx(86.0 + half)
    assert s.to_dict()["values"] == [85.0, 86.0, 87.0]


def test_one_seed_uses_pool_and_unknown_without() -> None:
    lone = seed_summary([80.0])
    assert math.isnan(lone.std) and math.isnan(lone.se) and math.isnan(lone.low)
    s = seed_summary([80.0], pooled_sd=0.5, pooled_dof=10)
    assert s.pooled and s.sd_used == 0.5 and s.se == 0.5 and s.df == 10
    assert s.high - s.mean == pytest.approx(sps.t.ppf(0.975, 10) * 0.5)


def test_pool_is_a_floor_for_lucky_seeds() -> None:
    lucky = seed_summary([85.0, 85.0], pooled_sd=0.8, pooled_dof=20)
    assert lucky.std == 0.0 and lucky.sd_used == 0.8 and lucky.pooled
    noisy = seed_summary([84.0, 86.0], pooled_sd=0.8, pooled_dof=20)
    assert not noisy.pooled and noisy.sd_used == pytest.approx(math.sqrt(2))


def test_pooled_std_weights_by_degrees_of_freedom() -> None:
    groups = [[1.0, 2.0, 3.0], [4.0, 6.0], [9.0]]  # ss 2 (df 2), ss 2 (df 1); lone ignored
    assert pooled_std(groups) == pytest.approx(math.sqrt(4 / 3))
    assert pooled_df(groups) == 3
    assert math.isnan(pooled_std([[1.0], [2.0]])) and pooled_df([[1.0]]) == 0


def test_run_seed_stats_lends_the_pool_to_single_seed_trials() -> None:
    run = run_seed_stats({"a": [80.0, 81.0], "b": [85.0, 85.0, 86.0], "c": [70.0]})
    assert run.pooled_df == 3 and run.pooled_sd == pytest.approx(math.sqrt((0.5 + 2 / 3) / 3))
    assert run.trials["c"].pooled and run.trials["c"].se == pytest.approx(run.pooled_sd)
    assert not run.trials["a"].pooled and run.to_dict()["trials"]["c"]["n"] == 1


def test_interval_coverage_is_about_95_percent() -> None:
    rng = np.random.default_rng(0)
    hits = sum(s.low <= 80.0 <= s.high for s in
               (seed_summary(rng.normal(80.0, 1.0, 3)) for _ in range(2000)))
    assert 0.93 <= hits / 2000 <= 0.97


def test_tied_rule_twice_the_combined_se() -> None:
    a, b = (85.0, 0.3), (85.0 + 2 * math.hypot(0.3, 0.4), 0.4)
    assert tied(a, b)  # exactly on the boundary: tied
    assert not tied(a, (b[0] + 0.01, 0.4))
    assert tied((80.0, float("nan")), (90.0, 0.1))  # unknown noise never separates
    assert tied(seed_summary([85, 86, 85.5]), seed_summary([85.8, 86.2, 86.0]))
    assert not tied(seed_summary([80, 80.5, 80.2]), seed_summary([86, 86.5, 86.2]))


# ---------------------------------------------------------------- latency


def test_latency_interval_brackets_median_with_coverage() -> None:
    rng = np.random.default_rng(1)
    rounds = rng.lognormal(np.log(5.0), 0.05, 25)
    s = latency_summary(rounds)
    assert s.low <= s.median <= s.high and s.coverage >= 0.95
    assert s.low > rounds.min() and s.high < rounds.max()  # a real order statistic
    tiny = latency_summary([5.0, 5.2, 5.1])
    assert (tiny.low, tiny.high) == (5.0, 5.2) and tiny.coverage == pytest.approx(0.75)
    hits = 0
    for _ in range(500):  # true median of lognormal(log 5, .1) is 5
        s = latency_summary(rng.lognormal(np.log(5.0), 0.1, 15))
        hits += s.low <= 5.0 <= s.high
    assert hits / 500 >= 0.93


def test_latency_ties_paired_and_unpaired() -> None:
    rng = np.random.default_rng(2)
    drift = np.linspace(0, 2.0, 20)  # machine drift hits both alike when interleaved
    a = latency_summary(5.0 + drift + rng.normal(0, 0.01, 20))
    b = latency_summary(5.1 + drift + rng.normal(0, 0.01, 20))
    c = latency_summary(5.0 + drift + rng.normal(0, 0.01, 20))
    assert not latency_tied(a, b)  # intervals overlap, but paired rounds tell them apart
    assert a.low <= b.high and b.low <= a.high
    assert latency_tied(a, c)
    far = latency_summary([9.0, 9.1, 9.2])
    assert not latency_tied(a, far) and latency_ties({"a": a, "b": b, "c": c}) == [("a", "c")]


# ---------------------------------------------------------------- the front


def _front_rows() -> list[Candidate]:
    return [
        Candidate("s_small", 80.0, 0.3, 5e6),
        Candidate("s_mid_tied", 80.5, 0.3, 10e6),        # +0.5 < 2*0.42: tied with s_small
        Candidate("s_mid_real", 83.0, 0.3, 20e6),        # beyond noise above s_small
        Candidate("s_big_tied", 83.4, 0.3, 35e6),        # tied with s_mid_real
        Candidate("s_dominated", 79.0, 0.3, 30e6),
        Candidate("base_a", 81.0, 0.3, 37e6, baseline=True),   # beaten by s_mid_real, s_big
        Candidate("base_b", 83.3, 0.3, 38e6, baseline=True),   # only matched (tied, cheaper)
        Candidate("base_c", 90.0, 0.3, 140e6, baseline=True),  # beaten by nobody
    ]


def test_front_ties_with_cheaper_members() -> None:
    fc = front_confidence(_front_rows())
    assert fc.front == ("s_small", "s_mid_tied", "s_mid_real", "s_big_tied", "base_c")
    assert fc.confident == ("s_small", "s_mid_real", "base_c")
    assert fc.member("s_mid_tied").tied_to == "s_small"
    assert fc.member("s_big_tied").tied_to == "s_mid_real"
    assert fc.member("s_big_tied").tied_cheaper == ("s_mid_real",)
    assert fc.member("s_mid_real").tied_cheaper == () and fc.member("s_mid_real").confident
    assert "2 x the combined standard error" in fc.rule
    d = fc.to_dict()
    assert d["confident"] == list(fc.confident) and len(d["members"]) == 5


def test_baseline_verdicts() -> None:
    v = {b.name: b for b in front_confidence(_front_rows()).baselines}
    assert v["base_a"].beaten_by == ("s_mid_real", "s_big_tied")
    assert v["base_b"].beaten_by == () and not v["base_b"].beaten
    assert v["base_b"].matched_cheaper_by == ("s_mid_real", "s_big_tied")
    assert v["base_c"].beaten_by == () and v["base_c"].matched_cheaper_by == ()


def test_chain_member_tied_only_with_an_unconfident_one_stays_confident() -> None:
    rows = [Candidate("a", 80.0, 0.3, 1e6), Candidate("b", 80.5, 0.3, 2e6),
            Candidate("c", 81.0, 0.3, 3e6)]  # b ~ a, c ~ b, but c beyond noise above a
    fc = front_confidence(rows)
    assert fc.confident == ("a", "c")
    assert fc.member("b").tied_to == "a" and fc.member("c").tied_cheaper == ("b",)


def test_knee_is_picked_among_confident_members() -> None:
    rows = _front_rows()
    fc = front_confidence(rows)
    assert fc.knee in fc.confident
    assert fc.knee == "s_mid_real"
    assert pick_confident(fc, rows, "accuracy") == "base_c"
    assert pick_confident(fc, rows, "macs") == "s_small"
    tight = [Candidate(r.name, r.accuracy, 0.01, r.macs, baseline=r.baseline) for r in rows]
    assert set(front_confidence(tight).confident) == set(front_confidence(tight).front)


def test_latency_objective_and_ties() -> None:
    lat = {n: latency_summary(np.full(9, v) + np.arange(9) * 0.01)
           for n, v in {"fast": 3.0, "slow": 6.0, "slow2": 6.0}.items()}
    rows = [Candidate("fast", 80.0, 0.2, 30e6, lat["fast"]),
            Candidate("slow", 80.2, 0.2, 10e6, lat["slow"]),   # cheaper MACs, slower
            Candidate("slow2", 85.0, 0.2, 12e6, lat["slow2"]),
            Candidate("base", 79.0, 0.2, 30e6, lat["fast"], baseline=True)]
    fc = front_confidence(rows, ("accuracy", "macs", "latency_ms"))
    assert set(fc.front) == {"fast", "slow", "slow2"}
    assert fc.confident == ("slow", "slow2", "fast")  # fast is not tied with a *cheaper* one
    assert ("slow", "slow2") in fc.latency_ties and ("fast", "slow") not in fc.latency_ties
    assert {b.name: b.beaten_by for b in fc.baselines}["base"] == ("fast",)  # others slower
    with pytest.raises(ValueError):
        front_confidence([Candidate("x", 1, 0.1, 1)], ("accuracy", "macs", "latency_ms"))


def test_empty_and_errors() -> None:
    fc = front_confidence([])
    assert fc.front == () and fc.knee is None
    with pytest.raises(ValueError):
        front_confidence([Candidate("a", 1, 0, 1), Candidate("a", 2, 0, 2)])
    with pytest.raises(ValueError):
        seed_summary([])


def test_module_does_not_import_torch_or_optuna() -> None:
    code = ("import sys, nasl.stats.confidence as c; c.front_confidence([c.Candidate('a', 1, 0.1, 1)]);"
            "print('torch' in sys.modules, 'optuna' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
