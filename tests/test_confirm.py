"""Fronts with their noise, end to end: --seeds, the confirmation stage, interleaved latency
re-timing, ties and baseline verdicts in the outputs; and the row statistics on constructed
data (nasl.run.verdict)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import optuna
import pytest

from nasl.cli import main
from nasl.common import record
from nasl.run import verdict
from nasl.search import SearchOptions, run_search
from nasl.space import load_space


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ----------------------------------------------------------------------------- constructed rows
def row(n: int, acc: list[float], macs: float, lat: float, baseline: str = "") -> dict:
    return {"number": n, "state": "COMPLETE", "feasible": True, "baseline": baseline,
            "accuracy": sum(acc) / len(acc), "accuracy_seeds": acc, "macs": macs,
            "latency_ms": lat, "pareto": False}


OBJ = [("accuracy", "maximize"), ("macs", "minimize")]


def test_seed_stats_pool_and_intervals():
    rows = [row(0, [0.80, 0.82], 1e6, 1.0), row(1, [0.90, 0.86], 2e6, 2.0), row(2, [0.5], 3e6, 3.0)]
    sd, df = verdict.add_seed_stats(rows)
    assert df == 2 and sd == pytest.approx(math.sqrt((0.0002 + 0.0008) / 2))
    assert rows[0]["accuracy"] == pytest.approx(0.81) and rows[0]["n_seeds"] == 2
    assert rows[0]["accuracy_low"] < 0.81 < rows[0]["accuracy_high"]
    # one seed borrows the pooled std: an interval all the same
    assert rows[2]["n_seeds"] == 1 and rows[2]["accuracy_std"] == pytest.approx(sd)
    assert rows[2]["accuracy_low"] < 0.5 < rows[2]["accuracy_high"]


def test_front_verdict_ties_and_baseline_beaten_beyond_noise():
    rows = [row(0, [0.700, 0.702, 0.698], 10e6, 1.0, "paper"),   # the baseline
            row(1, [0.800, 0.802, 0.798], 9e6, 1.0),             # beats it clearly, cheaper
            row(2, [0.801, 0.803, 0.799], 20e6, 2.0),            # tied with #1, dearer
            row(3, [0.600, 0.602, 0.598], 5e6, 0.5)]             # cheapest, clearly worse
    verdict.add_seed_stats(rows)
    from nasl.run.results import mark_front

    mark_front(rows, OBJ)
    conf = verdict.front_verdict(rows, OBJ)
    assert conf is not None
    assert rows[1]["confident"] is True and rows[3]["confident"] is True
    assert rows[2]["confident"] is False and rows[2]["tied_with"] == 1
    (base,) = conf["baselines"]
    assert base["name"] == "paper" and base["trial"] == 0 and base["beaten_by"] == ["1"]  # #2 costs more MACs
    assert conf["knee"] in ("1", "3")
    # a front member within noise of a cheaper one is not the knee's pick
    assert conf["knee"] != "2"


def test_near_front_keeps_only_designs_within_noise():
    rows = [row(0, [0.80, 0.81], 1e6, 1.0), row(1, [0.795, 0.805], 2e6, 1.0),
            row(2, [0.50, 0.51], 3e6, 1.0)]
    verdict.add_seed_stats(rows)
    from nasl.run.results import mark_front

    mark_front(rows, OBJ)
    near = [r["number"] for r in verdict.near_front(rows, OBJ)]
    assert near == [1]  # #1 is within noise of the cheaper #0; #2 is beaten beyond noise


def test_confidence_is_skipped_for_objectives_it_does_not_cover():
    rows = [row(0, [0.8], 1e6, 1.0)]
    assert verdict.front_verdict(rows, [("accuracy", "maximize"), ("params", "minimize")]) is None


# ----------------------------------------------------------------------------- real searches
@pytest.mark.slow
def test_confirmation_at_higher_fidelity_and_interleaved_retiming(tiny_space: Path, tmp_path: Path,
                                                                  capsys):
    rc = main(["search", str(tiny_space), "--trials", "3", "--epochs", "1", "--seeds", "2",
               "--confirm-budget", "12", "--confirm-recipe", "crop", "--runs-dir", str(tmp_path),
               "--name", "c", "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    # the answer comes first, with its recipe, fidelity and rule
    assert out.startswith("Answer under plain: sgd lr 0.1"), out[:200]
    assert "3 epochs" in out and "most accurate within budget" in out and "Holm" in out
    run = tmp_path / "c"
    study = optuna.load_study(study_name="c", storage=f"sqlite:///{run / 'study.db'}")
    assert study.metric_names == ["accuracy", "macs", "latency_ms"]  # optuna-dashboard's axes
    store = study.user_attrs[record.DECIDE]
    assert list(store) == ["plain", "crop"]  # the run's recipe, then --confirm-recipe
    assert store["plain"]["epochs"] == 3  # 3 x the search's epochs
    assert "crop" in store["crop"]["describe"]
    designs = store["plain"]["designs"]
    for lab in store:  # the budget is shared by the recipes
        assert sum(len(d["accuracies"]) for d in store[lab]["designs"].values()) <= 6
    trials = {t.number: t for t in study.get_trials()}
    for n, d in designs.items():
        assert len(d["accuracies"]) >= 1  # one fresh seed first: it chooses the claims
        search_seeds = {int(trials[int(n)].user_attrs["seed"])}
        assert not search_seeds & set(d["seeds"]) and len(set(d["seeds"])) == len(d["seeds"])
        assert d["images"] == 288  # 20 % of digits' 1437 training images, before the subset
        assert all(len(bytes.fromhex(h)) == (d["images"] + 7) // 8 for h in d["correct"])
    final = study.user_attrs[record.FINAL_LATENCY]
    rows = read_csv(run / "trials.csv")
    confirmed = [r for r in rows if r["confirmed_accuracy"]]
    assert {r["number"] for r in confirmed} == set(designs)
    for r in confirmed:
        assert int(r["confirmed_seeds"]) == len(designs[r["number"]]["accuracies"])
        assert r["confirmed_epochs"] == "3"
        assert float(r["confirmed_low"]) <= float(r["confirmed_accuracy"]) <= float(r["confirmed_high"])
        rounds = final[r["number"]]["latency_rounds_ms"]  # confirmed designs are re-timed
        assert len(rounds) == 5
        assert float(r["latency_low_ms"]) <= float(r["latency_ms"]) <= float(r["latency_high_ms"])
    pareto = json.loads((run / "pareto.json").read_text())
    assert next(iter(pareto)) == "answer"  # the answer first
    ans = pareto["answer"]
    assert [p["tradeoff"] for p in ans["recommendation"]] == ["accurate", "fast", "knee"]
    acc, fast, _ = ans["recommendation"]
    assert isinstance(fast["shown"], bool)  # shown within δ, or the most accurate itself
    assert fast["shown"] or fast["design"] == acc["design"]
    assert ans["correction"] == "holm" and ans["alpha"] == 0.05 and "Holm" in ans["rule"]
    assert [r["recipe"] for r in ans["recipes"]] == ["plain", "crop"]
    assert "split over 2 recipes" in ans["rule"] and "left out of their tests" in ans["rule"]
    # per-image results stored for every seed: chosen on half the holdout, tested on the other
    assert all(r["images_split"] for r in ans["recipes"]) and "the other half" in ans["rule"]
    from nasl.decide import Plan, images_split
    from nasl.search.confirm import samples_of

    stored = samples_of(store["plain"])
    assert all(s.bits.shape == (s.n, 288) for s in stored.values()) and images_split(stored, Plan())
    for c in (c for r in ans["recipes"] for c in r["claims"]):  # tested without the first seed
        lab = next(r["recipe"] for r in ans["recipes"] if c in r["claims"])
        assert c["n_design"] == len(store[lab]["designs"][c["design"]]["accuracies"]) - 1
    best = ans["recommendation"][0]
    mean = sum(designs[best["design"]]["accuracies"]) / len(designs[best["design"]]["accuracies"])
    assert best["accuracy"] == pytest.approx(mean)
    assert all(best["accuracy"] >= sum(d["accuracies"]) / len(d["accuracies"]) - 1e-9
               for d in designs.values())
    html = (run / "report.html").read_text()
    top = html[html.index('class="answer"'):]
    assert "Answer under plain: sgd" in top[:3000] and "--pick knee" in top[:4000]
    env = json.loads((run / "env.json").read_text())
    assert env["proxy_recipe"]["name"] == "plain" and env["confirm_budget"] == 12
    assert env["holdout_fraction"] == 0.2 and env["recipe_describe"].startswith("plain: sgd")
    # a second look (nasl report) gives the same rows and answer: stored, not recomputed
    assert main(["report", str(run), "--quiet"]) == 0
    assert read_csv(run / "trials.csv") == rows
    capsys.readouterr()
    assert main(["report", str(run)]) == 0  # the closing hints name the run's folder
    assert f"nasl fidelity {run} (fresh seeds" in " ".join(capsys.readouterr().out.split())
    assert json.loads((run / "pareto.json").read_text())["answer"] == ans


@pytest.mark.slow
def test_seeds_per_trial_and_options_recorded(tiny_space: Path, tmp_path: Path):
    space = load_space(tiny_space)
    opts = SearchOptions(name="s", runs_dir=tmp_path, trials=2, epochs=1, seeds=2,
                         confirm_seeds=0, scheduler="asha", runtime="onnxruntime", prescreen=3,
                         reduction_factor=2.5, grace_period=1, show_progress=False)
    out = run_search(space, opts)
    assert out.trained == 2
    rows = [r for r in read_csv(tmp_path / "s" / "trials.csv") if r["state"] == "COMPLETE"
            and r["feasible"] == "True"]
    assert rows and all(r["n_seeds"] == "2" for r in rows)
    env = json.loads((tmp_path / "s" / "env.json").read_text())
    assert env["seeds"] == 2 and env["runtime"] == "onnxruntime"
    assert env["scheduler"]["scheduler"] == "asha" and env["confirm_seeds"] == 0
    assert env["scheduler"]["eta"] == 2.5 and env["scheduler"]["r_min"] == 1
    assert env["prescreen"]["on"] is False and "needs at least 10" in env["prescreen"]["reason"]
    assert all(float(r["latency_ms"]) > 0 for r in rows)


@pytest.mark.parametrize("args, msg", [
    (["--seeds", "0"], "--seeds 0: expected an integer >= 1"),
    (["--confirm-seeds", "-1"], "--confirm-seeds -1"),
    (["--prescreen", "-2"], "--prescreen -2"),
    (["--scheduler", "hyperband"], "--scheduler"),
    (["--runtime", "tensorrt"], "--runtime"),
    (["--prescreen-proxy", "bogus"], "--prescreen-proxy 'bogus': expected one of auto, synflow"),
    (["--reduction-factor", "1"], "reduction factor eta=1.0: expected a finite number > 1"),
    (["--reduction-factor", "inf"], "eta=inf"),
    (["--grace-period", "0"], "first rung r_min=0"),
    (["--scheduler", "front", "--grace-period", "2"], "apply to --scheduler asha or asha-strict"),
])
def test_bad_noise_and_schedule_flags(tiny_space: Path, tmp_path: Path, capsys, args, msg):
    rc = main(["search", str(tiny_space), "--runs-dir", str(tmp_path / "runs"), "--quiet", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and msg in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()  # nothing written


@pytest.mark.slow
def test_latency_budget_screened_by_the_predictor_first(tiny_space: Path, tmp_path: Path,
                                                        monkeypatch):
    """A design the calibrated predictor puts clearly over the latency budget is rejected
    without being timed or trained; the others are timed as before."""
    from types import SimpleNamespace

    import nasl.latency.predictor as lp
    from nasl.search import run_session
    from nasl.search.backends import OptunaBackend
    from nasl.search.objective import Evaluator
    from nasl.search.session import Session

    timed: list[str] = []
    real_latency = Evaluator.latency

    def counting(self, arch, **kw):
        timed.append(arch.id)
        return real_latency(self, arch, **kw)

    def screen(predictor, arch, budget):  # width 0.5 is "clearly over", the rest is not
        w = dict(arch.choices).get("width_mult")
        return (99.0, True) if w == 0.5 else (0.1, False)

    monkeypatch.setattr(Evaluator, "latency", counting)
    monkeypatch.setattr(lp, "screen", screen)
    opts = SearchOptions(name="p", runs_dir=tmp_path, trials=2, epochs=1, confirm_seeds=0,
                         budgets={"latency_ms": 1000.0}, show_progress=False)
    session = Session(load_space(tiny_space), opts)
    session.log.predictor = SimpleNamespace(margin=0.1)
    timed.clear()
    run_session(session, OptunaBackend())
    rows = read_csv(tmp_path / "p" / "trials.csv")
    screened = [r for r in rows if "calibrated predictor" in r["reason"]]
    assert screened and all(r["width_mult"] == "0.5" and r["feasible"] == "False"
                            and r["latency_ms"] == "" and r["accuracy"] == "" for r in screened)
    assert not [r for r in rows if r["width_mult"] == "0.5" and r["feasible"] == "True"]


@pytest.mark.slow
def test_prescreen_switched_on_trains_the_proxys_pick(tiny_space: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch):
    """Once the rule says on (here forced from the first decision on; the rule itself is
    tested in test_zerocost.py), every later trial is the best of N by the chosen proxy,
    queued in the study, and env.json counts the picks."""
    import dataclasses

    import nasl.zerocost.prescreen as zp

    real = zp.decide_auto
    seen: list[tuple[str, ...]] = []

    def forced(scores, accuracies, proxies, *a, **kw):
        seen.append(tuple(proxies))
        d = real(scores, accuracies, proxies, *a, min_trials=1, **kw)
        return dataclasses.replace(d, on=True, proxy="naswot", reason="on: forced by the test")

    monkeypatch.setattr(zp, "decide_auto", forced)
    chosen: list[str] = []
    real_choose = zp.choose
    monkeypatch.setattr(zp, "choose", lambda *a, **kw: (chosen.append(a[3]), real_choose(*a, **kw))[1])
    opts = SearchOptions(name="p", runs_dir=tmp_path, trials=3, epochs=1, confirm_seeds=0,
                         prescreen=4, show_progress=False, baselines=False)
    out = run_search(load_space(tiny_space), opts)
    assert out.trained == 3
    assert seen and set(seen[0]) == {"synflow", "naswot", "grad_norm", "snip"}  # auto: all four
    env = json.loads((tmp_path / "p" / "env.json").read_text())
    assert env["prescreen"]["on"] is True and env["prescreen"]["proxy"] == "naswot"
    assert env["prescreen"]["picked"] >= 2 and chosen and set(chosen) == {"naswot"}
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'p' / 'study.db'}")
    trials = optuna.load_study(study_name="p", storage=storage).get_trials()
    assert sum(bool(t.user_attrs.get("prescreened")) for t in trials) == env["prescreen"]["picked"]
