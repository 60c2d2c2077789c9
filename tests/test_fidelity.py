"""nasl fidelity: statistics on constructed data, user errors, and a small real run end to end
(including kill -9 and resume)."""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nasl.common.errors import NaslError
from nasl.fidelity import FidelityOptions, add_parser, fidelity_html, run_fidelity
from nasl.fidelity.command import main
from nasl.fidelity.core import select, stratified_sample
from nasl.fidelity.output import summary_lines
from nasl.fidelity.stats import claims, rank_agreement, summarise, top_k_recall


def _d(number: int, proxy: float, high: float, seeds: list[float] | None = None) -> dict:
    return {"number": number, "proxy_accuracy": proxy, "high_accuracy": high,
            "high_seeds": seeds or [high]}


# ------------------------------------------------------------------ statistics
def test_top_k_recall_counts_overlap_of_the_two_top_sets():
    same = [_d(i, 0.5 + i / 100, 0.6 + i / 100) for i in range(6)]
    assert top_k_recall(same, 3)["recall"] == 1.0
    reverse = [_d(i, 0.5 + i / 100, 0.6 - i / 100) for i in range(6)]
    r = top_k_recall(reverse, 3)
    assert r["recall"] == 0.0 and r["proxy_top"] == [5, 4, 3] and r["high_top"] == [0, 1, 2]
    assert r["chance"] == 0.5
    # one swap across the boundary: 2 of 3 kept
    swap = [_d(0, 0.1, 0.1), _d(1, 0.2, 0.2), _d(2, 0.3, 0.4), _d(3, 0.4, 0.3), _d(4, 0.5, 0.9),
            _d(5, 0.45, 0.35)]
    assert top_k_recall(swap, 3)["hits"] == 2
    assert top_k_recall(same[:2], 5)["k"] == 2  # capped at n
    assert top_k_recall([], 3)["recall"] is None


def test_rank_agreement_perfect_reversed_and_undefined():
    up = [_d(i, i / 10, i / 5) for i in range(8)]
    c = rank_agreement(up, n_boot=200)
    assert c["spearman"] == 1.0 and c["kendall"] == 1.0 and c["n"] == 8
    lo, hi = c["kendall_ci"]
    assert lo <= 1.0 <= hi + 1e-9
    down = [_d(i, i / 10, 1 - i / 5) for i in range(8)]
    assert rank_agreement(down, n_boot=200)["kendall"] == -1.0
    assert rank_agreement(up[:2], n_boot=50)["spearman"] is None


def test_claims_hold_fail_undecided_and_unmeasured():
    base = [{"name": "b", "trial": 0, "beaten_by": ["1", "2", "9"]}]
    # one seed per design: the noise is unknown, nothing is decided
    designs = [_d(0, 0.60, 0.70), _d(1, 0.70, 0.75), _d(2, 0.72, 0.65)]
    st = {c["trial"]: c["status"] for c in claims(designs, base)}
    assert st == {1: "undecided", 2: "undecided", 9: "not measured"}
    # two seeds each: a clear win holds, a clear loss fails, a gap inside the noise is undecided
    seeded = [_d(0, 0.6, 0.70, [0.699, 0.701]), _d(1, 0.7, 0.71, [0.68, 0.74]),
              _d(2, 0.7, 0.90, [0.899, 0.901]), _d(3, 0.7, 0.60, [0.599, 0.601])]
    cl = claims(seeded, [{"name": "b", "trial": 0, "beaten_by": ["1", "2", "3"]}])
    assert {c["trial"]: c["status"] for c in cl} == {1: "undecided", 2: "holds", 3: "fails"}
    assert all(0 <= c["p_adjusted"] <= 1 for c in cl)
    s = summarise(designs, base, n_boot=50)
    assert s["claims_summary"] == {"holds": 0, "undecided": 2, "fails": 0, "not measured": 1}
    assert s["mean_gain"] == pytest.approx((0.10 + 0.05 - 0.07) / 3, abs=1e-4)


def _row(n: int, acc: float, **kw) -> dict:
    return {"number": n, "state": "COMPLETE", "feasible": True, "accuracy": acc, "pareto": False,
            "baseline": "", **kw}


def test_stratified_sample_takes_one_per_quantile_bin():
    rows = [_row(n, n / 100) for n in range(12)]
    picked = stratified_sample(rows, 3, seed=0)
    assert len(picked) == 3
    assert [p // 4 for p in picked] == [0, 1, 2]  # one from each third of the accuracy order
    assert stratified_sample(rows[:2], 5, seed=0) == [0, 1]
    assert stratified_sample(rows, 3, seed=0) == picked  # seeded


def test_select_includes_front_baselines_claims_and_sample():
    rows = [_row(0, 0.5, baseline="b0"), _row(1, 0.9, pareto=True), _row(2, 0.7),
            _row(3, 0.2), _row(4, 0.3), _row(5, 0.4), {**_row(6, 0.8), "state": "PRUNED"},
            {**_row(7, 0.95), "feasible": False}]
    roles = select(rows, [{"name": "b0", "trial": 0, "beaten_by": ["2"]}], sample=2, seed=0)
    assert roles[0] == "baseline" and roles[1] == "front" and roles[2] == "claim"
    assert sorted(n for n, r in roles.items() if r == "sample") and \
        sum(r == "sample" for r in roles.values()) == 2
    assert 6 not in roles and 7 not in roles


# ------------------------------------------------------------------ user errors
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture):
    assert main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no run folder" in err and "\n" not in err
    for argv, text in ((["--sample", "0"], "--sample 0: expected an integer >= 1"),
                       (["--epochs", "0"], "--epochs 0: expected an integer >= 1"),
                       (["--recipe", "fancy"],
                        "--recipe 'fancy': expected one of plain, augmented, crop")):
        assert main([str(tmp_path), *argv]) == 2
        assert text in capsys.readouterr().err


def test_run_without_completed_trials(tmp_path: Path):
    import optuna

    run = tmp_path / "empty"
    run.mkdir()
    storage = f"sqlite:///{run / 'study.db'}"
    optuna.create_study(study_name="empty", storage=storage, directions=["maximize", "minimize"])
    (run / "env.json").write_text(json.dumps({"study": "empty", "storage": storage, "seed": 0,
                                              "objectives": [["accuracy", "maximize"],
                                                             ["macs", "minimize"]]}))
    (run / "space.yaml").write_text("name: x\n")
    with pytest.raises(NaslError, match="no completed feasible trials"):
        run_fidelity(run, FidelityOptions(epochs=1))


def test_add_parser_registers_the_command():
    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers(dest="command"))
    a = p.parse_args(["fidelity", "runs/x", "--epochs", "4", "--full", "--sample", "3", "--json"])
    assert (a.run, a.epochs, a.full, a.sample, a.json, a.seeds) == ("runs/x", 4, True, 3, True, 2)
    assert callable(a.func)


# ------------------------------------------------------------------ a small real run
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import TINY_SPACE

    root = tmp_path_factory.mktemp("fid")
    (root / "tiny.yaml").write_text(TINY_SPACE)
    subprocess.run([sys.executable, "-m", "nasl.cli", "search", str(root / "tiny.yaml"), "--trials", "4",
                    "--epochs", "1", "--confirm-seeds", "1", "--runs-dir", str(root / "runs"),
                    "--name", "r", "--quiet"], check=True, capture_output=True, timeout=900)
    return root / "runs" / "r"


@pytest.mark.slow
def test_fidelity_end_to_end(finished_run: Path, tmp_path: Path):
    run = tmp_path / "r"
    shutil.copytree(finished_run, run)
    res = run_fidelity(run, FidelityOptions(epochs=2, sample=2, n_boot=200, seeds=1))
    saved = json.loads((run / "fidelity.json").read_text())
    assert saved["status"] == res["status"] == "complete"
    assert saved["settings"]["epochs"] == 2 and saved["settings"]["full"] is False
    assert saved["proxy"]["epochs"] == 1
    trials = list(csv.DictReader((run / "trials.csv").open()))
    front = {int(t["number"]) for t in trials if t["pareto"] == "True"}
    base = {int(t["number"]) for t in trials if t["baseline"] and t["state"] == "COMPLETE"}
    done = {d["number"] for d in saved["designs"]}
    assert front | base <= done and done == set(saved["planned"])
    for d in saved["designs"]:
        assert 0 <= d["high_accuracy"] <= 1 and len(d["high_seeds"]) == 1
        assert d["gain"] == pytest.approx(d["high_accuracy"] - d["proxy_accuracy"], abs=1e-5)
    assert saved["correlation"]["n"] == len(done)
    assert saved["top_k"]["k"] == min(3, len(done))
    assert {"claims", "claims_summary", "claim_rule"} <= set(saved)
    rows = list(csv.DictReader((run / "fidelity.csv").open()))
    assert [int(r["number"]) for r in rows] == sorted(done)
    frag = fidelity_html(run)
    assert frag and "Proxy fidelity" in frag and "Kendall" in frag


@pytest.mark.slow
def test_fidelity_trains_under_the_recipe_asked_for_else_the_runs(finished_run: Path, tmp_path: Path):
    from nasl.fidelity.core import _prepare
    from nasl.run.results import RunDir

    run = tmp_path / "r"
    shutil.copytree(finished_run, run)
    _, plain, _, _, rec = _prepare(RunDir(run), FidelityOptions(epochs=2))
    assert rec["recipe"].startswith("plain:") and rec["recipe"].endswith("2 epochs")
    assert plain.train.augment == ()
    _, aug, _, _, rec = _prepare(RunDir(run), FidelityOptions(epochs=2, recipe="augmented"))
    assert rec["recipe"].startswith("augmented:") and aug.train.augment
    assert aug.train.weight_decay > plain.train.weight_decay
    env = json.loads((run / "env.json").read_text())
    (run / "env.json").write_text(json.dumps({**env, "recipe": "crop"}))  # searched with --recipe crop
    _, crop, _, _, rec = _prepare(RunDir(run), FidelityOptions(epochs=2))
    assert rec["recipe"].startswith("crop:") and crop.train.augment == ("crop",)
    # a check made under one recipe is not resumed under another
    res = run_fidelity(run, FidelityOptions(epochs=1, sample=1, seeds=1, n_boot=50))
    assert res["settings"]["recipe"].startswith("crop:")
    assert any("recipe crop:" in line for line in summary_lines(res))
    with pytest.raises(NaslError, match="recipe"):
        run_fidelity(run, FidelityOptions(epochs=1, sample=1, seeds=1, n_boot=50, recipe="plain"))


def _designs(path: Path) -> list[dict]:
    try:
        return json.loads(path.read_text())["designs"]
    except (OSError, ValueError, KeyError):
        return []


@pytest.mark.slow
def test_fidelity_survives_kill_9_and_resumes(finished_run: Path, tmp_path: Path):
    run = tmp_path / "r"
    shutil.copytree(finished_run, run)
    argv = [sys.executable, "-m", "nasl.fidelity", str(run), "--epochs", "3", "--seeds", "2",
            "--sample", "2", "--quiet"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not _designs(run / "fidelity.json"):
        time.sleep(0.05)
    assert proc.poll() is None, "the check ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = json.loads((run / "fidelity.json").read_text())
    assert before["status"] == "partial" and before["designs"]
    finished = {d["number"]: d["finished_at"] for d in before["designs"]}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    after = json.loads((run / "fidelity.json").read_text())
    assert after["status"] == "complete" and {d["number"] for d in after["designs"]} == set(after["planned"])
    kept = {d["number"]: d["finished_at"] for d in after["designs"] if d["number"] in finished}
    assert kept == finished  # the finished designs were not trained again
