"""Schedulers (nasl.search.schedulers) on constructed curves: promotion rule, rungs, options."""

from __future__ import annotations

import math
import random

import pytest

from nasl.common.errors import NaslError
from nasl.search.early_stop import EarlyStopper
from nasl.search.schedulers import (
    SCHEDULERS,
    FrontScheduler,
    NoScheduler,
    Scheduler,
    StrictSuccessiveHalving,
    SuccessiveHalving,
    crowding_distance,
    make_scheduler,
    mo_order,
)
from nasl.stats.pareto import hypervolume


def asha(epochs: int = 9, **kw) -> SuccessiveHalving:
    return SuccessiveHalving(("macs",), epochs, **kw)


def test_rungs_are_r_min_times_eta_powers_below_the_last_epoch():
    assert asha(9).rungs == (1, 3)
    assert asha(10).rungs == (1, 3, 9)
    assert asha(28).rungs == (1, 3, 9, 27)
    assert asha(30, eta=2, r_min=2).rungs == (2, 4, 8, 16)
    assert asha(1).rungs == ()
    assert asha(9).rung_of(3) == 2 and asha(9).rung_of(2) is None


def test_dominated_trial_is_stopped_and_the_reason_names_the_rung():
    s = asha(9)
    for n, (acc, macs) in enumerate([(0.9, 10), (0.8, 11), (0.85, 12), (0.7, 13), (0.75, 14),
                                      (0.6, 15)]):
        s.add_partial(n, [macs], [0.5, 0.6, acc])  # recorded at rungs 1 and 3
    # fronts at epoch 3: {0} {1, 2} {3, 4} {5}, then the candidate
    why = s.check([20], 3, 0.5)  # worse and dearer than every one of them
    assert why == ("stopped at rung 2 (epoch 3): rank 7 of 7 at this rung "
                   "(non-dominated front 5), top 2 continue")
    assert s.check([9], 3, 0.95) is None  # dominates them all


def test_cheaper_but_less_accurate_trial_continues_because_non_dominated():
    s = asha(9)
    for n, (acc, macs) in enumerate([(0.9, 10), (0.8, 11), (0.7, 12), (0.6, 13), (0.5, 14)]):
        s.add(n, [macs], [acc] * 9)
    # The least accurate of six at rung 1, but the cheapest: front 0 with trial 0, rank 2 of 6.
    assert s.check([5], 1, 0.3) is None
    # A single-objective ASHA would have stopped it: it is last by accuracy.
    assert sorted([0.9, 0.8, 0.7, 0.6, 0.5, 0.3], reverse=True).index(0.3) + 1 > 6 // 3
    # The same accuracy at a cost nobody beats is dominated: stopped.
    assert "rank 6 of 6" in (s.check([15], 1, 0.3) or "")


def test_a_wide_front_continues_in_asha_and_is_cut_by_crowding_in_asha_strict():
    history = [(0.9, 40), (0.8, 30), (0.6, 10), (0.5, 45), (0.4, 50)]
    # front 0 with the candidate (0.7, 20): (0.9, 40), (0.8, 30), (0.7, 20), (0.6, 10)
    kept, strict = asha(9), StrictSuccessiveHalving(("macs",), 9)
    for s in (kept, strict):
        for n, (acc, macs) in enumerate(history):
            s.add(n, [macs], [acc] * 9)
    assert kept.check([20], 1, 0.7) is None  # non-dominated at the rung: continues
    # Strict: the two extremes go first; (0.8, 30) has the same crowding distance
    # (2/3 + 2/3) and is more accurate, so the candidate is 4th of 6 and 2 continue.
    why = strict.check([20], 1, 0.7)
    assert why is not None and "rank 4 of 6" in why and "non-dominated front 1" in why
    assert strict.check([5], 1, 0.55) is None  # a new extreme (cheapest) of the front
    why = kept.check([35], 1, 0.55)  # dominated by (0.8, 30): front 2, rank 4 of 6
    assert why is not None and "rank 4 of 6" in why and "front 2" in why


def test_grace_before_the_first_rung():
    s = asha(27, r_min=3)
    for n in range(10):
        s.add(n, [10 + n], [0.9] * 27)
    assert s.check([100], 1, 0.01) is None
    assert s.check([100], 2, 0.01) is None
    assert s.check([100], 3, 0.01) is not None


def test_never_stopped_at_the_final_epoch_nor_between_rungs():
    s = asha(9)
    for n in range(10):
        s.add(n, [10], [0.9] * 9)
    assert s.check([100], 9, 0.01) is None  # the last epoch is never a rung
    assert s.check([100], 2, 0.01) is None  # no rung at epoch 2
    assert s.check([100], 3, 0.01) is not None
    short = asha(3)  # rungs (1,): epoch 3 is the end
    for n in range(10):
        short.add(n, [10], [0.9] * 3)
    assert short.check([100], 3, 0.01) is None


def test_first_arrivals_are_promoted_while_fewer_than_eta_have_reported():
    s = asha(9, eta=3)
    assert s.check([10], 1, 0.1) is None  # n = 1 < 3
    s.add_partial(0, [10], [0.9])
    assert s.check([10], 1, 0.1) is None  # n = 2 < 3, although worse than trial 0
    s.add_partial(1, [10], [0.1])
    why = s.check([10], 1, 0.05)  # n = 3: top 1 continues
    assert why is not None and "rank 3 of 3" in why and "top 1 continue" in why
    assert s.check([10], 1, 0.95) is None


def test_warmup_one_ranks_from_the_second_arrival_as_moasha_does():
    s = asha(9, eta=3, warmup=1)
    assert s.settings()["warmup"] == 1 and asha(9, eta=2.5).warmup == 2
    assert s.check([10], 1, 0.1) is None  # the very first arrival continues
    s.add_partial(0, [10], [0.9])
    why = s.check([10], 1, 0.1)  # n = 2: ranked, dominated by trial 0 (same MACs, worse)
    assert why is not None and "rank 2 of 2" in why and "top 1 continue" in why
    assert s.check([5], 1, 0.1) is None  # cheaper: on the first front, protected
    with pytest.raises(ValueError, match="warmup=0"):
        asha(9, warmup=0)


def test_partial_curves_count_at_the_rungs_they_reached():
    s = asha(9)
    s.add_partial(0, [10], [0.5])  # stopped at rung 1
    s.add_partial(1, [10], [0.5, 0.6, 0.7])  # stopped at rung 2
    s.add(2, [10], [0.5] * 9)
    assert set(s.records[1]) == {0, 1, 2} and set(s.records[3]) == {1, 2}


def test_running_trials_are_recorded_when_check_gets_their_number():
    s = asha(9)
    s.add(0, [10], [0.9] * 9)
    assert s.check([10], 1, 0.5, number=7) is None  # n = 2
    assert s.check([10], 1, 0.2, number=8) is not None  # n = 3: sees the running trial 7
    s.add_partial(7, [10], [0.6])  # replaces 7's entry, no double count
    assert len(s.records[1]) == 3 and s.records[1][7][0] == 0.6


def test_mo_order_and_crowding_distance():
    order = mo_order([0.9, 0.5, 0.7, 0.4], [[10], [5], [20], [30]])
    assert [i for i, _ in order] == [0, 1, 2, 3]
    assert [f for _, f in order] == [0, 0, 1, 2]
    d = crowding_distance([[0, 10], [1, 5], [3, 3], [10, 0]])
    assert d[0] == d[3] == math.inf
    assert d[1] == pytest.approx(3 / 10 + 7 / 10) and d[2] == pytest.approx(9 / 10 + 5 / 10)
    assert crowding_distance([[1, 2], [3, 4]]) == [math.inf, math.inf]


def _random_history(rng: random.Random, n: int, epochs: int):
    for number in range(n):
        macs = rng.uniform(5, 40)
        top = 0.6 + 0.3 * macs / 40 + rng.gauss(0, 0.05)
        curve = [top * (1 - math.exp(-(e + 1) / rng.uniform(1, 4))) for e in range(epochs)]
        yield number, [macs], curve


def test_front_option_decides_exactly_like_early_stopper():
    rng = random.Random(0)
    old = EarlyStopper(("macs",), 9, margin=0.03)
    new = make_scheduler("front", ("macs",), 9, margin=0.03)
    assert isinstance(new, FrontScheduler) and new.min_epochs == old.min_epochs == 3
    stops = 0
    for number, costs, curve in _random_history(rng, 60, 9):
        for e, acc in enumerate(curve, 1):
            a, b = old.check(costs, e, acc), new.check(costs, e, acc, number=number)
            assert a == b
            if a:
                stops += 1
                new.add_partial(number, costs, curve[:e])  # ignored by the front rule
                break
        else:
            old.add(number, costs, curve)
            new.add(number, costs, curve)
    assert stops > 5  # the comparison exercised the stopping branch


def test_asha_on_a_simulated_search_halves_the_epochs_and_keeps_most_of_the_front():
    history = list(_random_history(random.Random(1), 60, 9))
    s = make_scheduler("asha", ("macs",), 9)
    trained, complete = 0, []
    for number, costs, curve in history:
        for e, acc in enumerate(curve, 1):
            trained += 1
            if s.check(costs, e, acc, number=number):
                s.add_partial(number, costs, curve[:e])
                break
        else:
            s.add(number, costs, curve)
            complete.append(number)
    assert 60 < trained <= 0.5 * 60 * 9  # some went past rung 1; at most half the epochs

    def hv(numbers):
        pts = [[history[n][2][-1], history[n][1][0]] for n in numbers]
        return hypervolume(pts, ["maximize", "minimize"], [0.0, 40.0])

    # These curves cross (time constants 1-4 epochs), so early ranks are noisy: 0.93 here
    # (asha-strict: 0.81 with 104 epochs).
    assert hv(complete) >= 0.85 * hv(range(60))


def test_none_never_stops_and_all_implement_the_protocol():
    s = make_scheduler("none", ("macs",), 9)
    assert isinstance(s, NoScheduler) and s.check([1e12], 3, 0.0) is None
    for name in SCHEDULERS:
        sch = make_scheduler(name, ("macs",), 9)
        shown = "asha" if name == "auto" else name  # auto names what it chose (9 epochs)
        assert isinstance(sch, Scheduler) and sch.settings()["scheduler"] == shown


def test_make_scheduler_errors_are_one_line_naslerrors():
    with pytest.raises(NaslError, match="expected one of auto, none, front, asha, asha-strict"):
        make_scheduler("hyperband", ("macs",), 9)
    with pytest.raises(NaslError, match="eta=1: expected a finite number > 1"):
        make_scheduler("asha", ("macs",), 9, eta=1)
    with pytest.raises(NaslError, match="r_min=0"):
        make_scheduler("asha", ("macs",), 9, r_min=0)
    with pytest.raises(NaslError, match="eta=inf: expected a finite number > 1"):
        make_scheduler("asha", ("macs",), 9, eta=math.inf)
    with pytest.raises(NaslError, match="eta=nan"):
        make_scheduler("asha-strict", ("macs",), 9, eta=math.nan)
    for name in ("none", "front"):
        with pytest.raises(NaslError, match=f"apply to --scheduler asha or asha-strict, not {name}"):
            make_scheduler(name, ("macs",), 9, r_min=2)
    with pytest.raises(NaslError, match="margin 2"):
        make_scheduler("front", ("macs",), 9, margin=2)
    assert make_scheduler("ASHA", ("macs",), 27, eta=2, margin=0.5).rungs == (1, 2, 4, 8, 16)


def test_auto_is_successive_halving_from_nine_epochs_else_the_front_rule():
    """The default follows the scheduler benchmark (docs/benchmarks.md): asha at 9 epochs."""
    from nasl.common.vocab import AUTO_ASHA_EPOCHS, DEFAULT_SCHEDULER
    from nasl.search.schedulers import SuccessiveHalving, make_scheduler

    assert DEFAULT_SCHEDULER == "auto" and AUTO_ASHA_EPOCHS == 9
    long = make_scheduler("auto", ("macs",), 9)
    assert type(long) is SuccessiveHalving and long.rungs == (1, 3)
    assert long.settings()["scheduler"] == "asha"  # env.json records what ran
    for epochs in (1, 2, 8):
        assert make_scheduler("auto", ("macs",), epochs).settings()["scheduler"] == "front"


def test_auto_with_a_reduction_factor_or_grace_period_is_successive_halving():
    """Asking for asha's options asks for asha, even below nine epochs per trial."""
    short = make_scheduler("auto", ("macs",), 4, eta=2)
    assert short.settings() == {"scheduler": "asha", "eta": 2, "r_min": 1, "rungs": [1, 2],
                                "warmup": 1, "protect_front": True}
    assert make_scheduler("auto", ("macs",), 6, r_min=2).rungs == (2,)
