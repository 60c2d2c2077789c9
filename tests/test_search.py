"""`nasl search` end to end on tiny settings: outputs, budgets, baselines, failures, resume."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import COMPLETE_SQL, STUDY_SQL, TRAINED_SQL, wait_for_count

from nasl.cli import main
from nasl.search.early_stop import EarlyStopper
from nasl.search.objective import Evaluator

REQUIRED = ["number", "state", "baseline", "macs", "params", "size_mb", "latency_ms",
            "latency_p90_ms", "accuracy", "epochs", "seconds", "feasible", "pareto", "reason"]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_cli(*args: str) -> int:
    return main(list(args))


@pytest.mark.slow
def test_end_to_end_outputs_budget_and_baseline(tiny_space: Path, tmp_path: Path, capsys):
    runs = tmp_path / "runs"
    rc = run_cli("search", str(tiny_space), "--budget", "2.1MFLOPs", "--trials", "3",
                 "--runs-dir", str(runs), "--name", "e2e", "--quiet")
    assert rc == 0
    out = capsys.readouterr().out
    assert "Pareto front" in out and "small_g3" in out
    run = runs / "e2e"
    for f in ("space.yaml", "study.db", "trials.csv", "pareto.csv", "pareto.json",
              "report.html", "pareto.png", "env.json"):
        assert (run / f).is_file(), f
    rows = read_csv(run / "trials.csv")
    assert set(REQUIRED) <= set(rows[0])
    assert {"groups", "shuffle", "width_mult"} <= set(rows[0])
    trained = [r for r in rows if r["state"] in ("COMPLETE", "PRUNED", "FAIL")
               and r["feasible"] == "True"]
    assert len(trained) == 3
    # the budget is never violated by a trained trial; rejected ones are labelled
    for r in rows:
        if r["feasible"] == "True":
            assert int(r["macs"]) <= 2.1e6
        else:
            assert r["reason"].startswith("over budget") and r["accuracy"] == ""
    # the baseline went first and is labelled
    assert rows[0]["baseline"] == "small_g3" and rows[0]["state"] == "COMPLETE"
    front = read_csv(run / "pareto.csv")
    assert front and all(r["pareto"] == "True" for r in front)
    pj = json.loads((run / "pareto.json").read_text())
    assert [o["metric"] for o in pj["objectives"]] == ["accuracy", "macs", "latency_ms"]
    assert len(pj["trials"]) == len(front)
    env = json.loads((run / "env.json").read_text())
    assert env["seed"] == 0 and env["budgets"] == {"macs": 2.1e6} and "torch" in env["versions"]
    assert (run / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (run / "report.html").read_text()
    assert "small_g3" in html
    # the study is a real Optuna storage that optuna-dashboard can open
    study = optuna.load_study(study_name="e2e", storage=f"sqlite:///{run / 'study.db'}")
    assert len(study.directions) == 3
    # front latencies were re-measured with more repeats
    assert study.user_attrs["final_latency"]
    # an existing name without --resume is an error
    assert run_cli("search", str(tiny_space), "--runs-dir", str(runs), "--name", "e2e") == 2
    assert "already exists" in capsys.readouterr().err
    # nasl report rebuilds the outputs
    (run / "trials.csv").unlink()
    (run / "report.html").unlink()
    assert run_cli("report", str(run)) == 0
    assert (run / "trials.csv").is_file() and (run / "report.html").is_file()
    assert read_csv(run / "trials.csv") == rows


def test_unsatisfiable_budget_stops_before_training(tiny_space: Path, tmp_path: Path, capsys):
    runs = tmp_path / "runs"
    rc = run_cli("search", str(tiny_space), "--budget", "1k", "--runs-dir", str(runs))
    assert rc == 2
    err = capsys.readouterr().err
    assert "needs" in err and "1k" in err.replace("1.0k", "1k") and "Traceback" not in err
    assert not runs.exists()


@pytest.mark.parametrize("args,msg", [
    (["--budget", "40MFLOPz"], "unknown unit"),
    (["--budget=-3M"], "budget"),
    (["--trials", "many"], "invalid int"),
    (["--trials", "0"], "--trials"),
    (["--timeout", "soon"], "--timeout"),
    (["--sampler", "cmaes"], "--sampler"),
])
def test_bad_search_flags_are_one_clear_line(tiny_space: Path, tmp_path: Path, capsys, args, msg):
    rc = run_cli("search", str(tiny_space), "--runs-dir", str(tmp_path), *args)
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.slow
def test_failures_are_recorded_and_the_search_goes_on(tiny_space: Path, tmp_path: Path,
                                                      monkeypatch):
    real = Evaluator.train
    calls = {"n": 0}

    def flaky(self, params, seed, on_epoch=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(self, params, seed, on_epoch)

    monkeypatch.setattr(Evaluator, "train", flaky)
    rc = run_cli("search", str(tiny_space), "--trials", "3", "--runs-dir", str(tmp_path),
                 "--name", "f", "--quiet", "--no-early-stop")
    assert rc == 0
    rows = read_csv(tmp_path / "f" / "trials.csv")
    states = [r["state"] for r in rows if r["feasible"] == "True"]
    assert states.count("FAIL") == 1 and states.count("COMPLETE") == 2
    failed = next(r for r in rows if r["state"] == "FAIL")
    assert "out of memory" in failed["reason"]


@pytest.mark.slow
def test_resume_after_kill_9_loses_nothing(tiny_space: Path, tmp_path: Path):
    db = tmp_path / "k" / "study.db"
    cmd = [sys.executable, "-m", "nasl.cli", "search", str(tiny_space), "--trials", "4",
           "--runs-dir", str(tmp_path), "--name", "k", "--quiet", "--no-early-stop"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if not wait_for_count(db, COMPLETE_SQL, alive=lambda: proc.poll() is None):
        proc.kill()
        pytest.fail(f"no trial completed: {proc.communicate()[1][-3000:]}")
    st = optuna.load_study(study_name="k", storage=f"sqlite:///{db}")
    done = st.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {t.number: t.values for t in done}
    rc = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=600)
    assert rc.returncode == 0, rc.stderr
    st = optuna.load_study(study_name="k", storage=f"sqlite:///{db}")
    trained = [t for t in st.trials if t.user_attrs.get("trained")
               and t.state != optuna.trial.TrialState.RUNNING]
    complete = {t.number: t.values for t in st.trials
                if t.state == optuna.trial.TrialState.COMPLETE}
    assert all(complete[n] == v for n, v in first.items())  # nothing completed was lost
    assert len(trained) >= 4
    assert sum(1 for t in trained if t.state == optuna.trial.TrialState.COMPLETE) >= 4 - sum(
        1 for t in trained if "interrupted" in t.user_attrs.get("reason", ""))
    assert not st.get_trials(states=(optuna.trial.TrialState.RUNNING,))


def test_early_stopper_stops_only_what_cannot_reach_the_front():
    s = EarlyStopper(("macs",), epochs=9, margin=0.05)
    s.add(0, [10.0], [0.5, 0.7, 0.8, 0.85, 0.9, 0.9, 0.92, 0.93, 0.95])
    s.add(1, [30.0], [0.4, 0.6, 0.8, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97])
    # before min_epochs (9 // 3 = 3) nothing is stopped
    assert s.check([20.0], 2, 0.1) is None
    # costlier than trial 0 and far behind it at the same epoch: stopped, naming trial 0
    why = s.check([20.0], 3, 0.6)
    assert why and "front trial 0" in why and "epoch 3" in why
    # cheaper than every front member: nothing to compare with, never stopped
    assert s.check([5.0], 3, 0.1) is None
    # within the margin: goes on
    assert s.check([20.0], 3, 0.76) is None
    # the last epoch is never cut (the trial has paid for everything already)
    assert s.check([40.0], 9, 0.1) is None


def test_early_stopper_ignores_dominated_members():
    s = EarlyStopper(("macs",), epochs=6, margin=0.05, min_epochs=1)
    s.add(0, [10.0], [0.9, 0.95])
    s.add(1, [20.0], [0.5, 0.6])  # dominated by trial 0: not a front member
    assert [f.number for f in s.front()] == [0]


@pytest.mark.slow
def test_early_stop_prunes_and_records_the_epoch(tiny_space: Path, tmp_path: Path,
                                                 monkeypatch):
    """A candidate far behind a cheaper front member at epoch k is stopped at epoch k."""
    text = tiny_space.read_text().replace("epochs: 2", "epochs: 3")
    # MACs only: a measured latency under load can rank a wider design faster, and then no
    # front member "costs no more" (this test failed once that way on a busy machine)
    text = text.replace(", {latency_ms: min}]", "]")
    tiny_space.write_text(text)
    real = Evaluator.train

    def slow_learner(self, params, seed, on_epoch=None):
        if params["width_mult"] == 0.5:  # costlier designs: simulate a failing learner
            def sabotage(ep):
                from dataclasses import replace

                on_epoch(replace(ep, val_accuracy=0.0))
            return real(self, params, seed, sabotage)
        return real(self, params, seed, on_epoch)

    monkeypatch.setattr(Evaluator, "train", slow_learner)
    rc = run_cli("search", str(tiny_space), "--trials", "4", "--runs-dir", str(tmp_path),
                 "--name", "p", "--quiet", "--sampler", "random", "--seed", "3",
                 "--confirm-seeds", "0")  # (the fake learner needs an epoch callback)
    assert rc == 0
    rows = read_csv(tmp_path / "p" / "trials.csv")
    pruned = [r for r in rows if r["state"] == "PRUNED"]
    assert any(r["width_mult"] == "0.5" and r["epochs"] == "1" for r in pruned), rows
    for r in pruned:
        assert int(r["epochs"]) < 3 and r["baseline"] == ""
        assert r["reason"].startswith(f"early stop at epoch {r['epochs']}")


def _cmd(space: Path, runs: Path, name: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "nasl.cli", "search", str(space), "--runs-dir", str(runs),
            "--name", name, "--quiet", *extra]


@pytest.mark.slow
def test_timeout_stops_starting_trials(tiny_space: Path, tmp_path: Path, monkeypatch):
    real = Evaluator.train

    def slow(self, params, seed, on_epoch=None):  # every trial outlasts the timeout
        time.sleep(1.2)
        return real(self, params, seed, on_epoch)

    monkeypatch.setattr(Evaluator, "train", slow)
    rc = run_cli("search", str(tiny_space), "--trials", "5", "--timeout", "1s",
                 "--runs-dir", str(tmp_path), "--name", "t", "--quiet")
    assert rc == 0
    rows = read_csv(tmp_path / "t" / "trials.csv")
    trained = [r for r in rows if r["state"] in ("COMPLETE", "PRUNED", "FAIL")
               and r["feasible"] == "True"]
    assert len(trained) == 1 and (tmp_path / "t" / "report.html").is_file()


@pytest.mark.slow
def test_ctrl_c_finishes_the_bookkeeping(tiny_space: Path, tmp_path: Path):
    text = tiny_space.read_text().replace("epochs: 2", "epochs: 30")
    tiny_space.write_text(text)
    proc = subprocess.Popen(_cmd(tiny_space, tmp_path, "c", "--no-early-stop"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = wait_for_count(tmp_path / "c" / "study.db", TRAINED_SQL, timeout=120,
                             alive=lambda: proc.poll() is None)
    if not started:
        proc.kill()
        pytest.fail(f"no epoch finished: {proc.communicate()[1][-3000:]}")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "--resume" in err and "Traceback" not in err
    rows = read_csv(tmp_path / "c" / "trials.csv")
    assert rows[0]["state"] == "FAIL" and "interrupted" in rows[0]["reason"]
    assert (tmp_path / "c" / "report.html").is_file()


@pytest.mark.slow
def test_two_processes_share_one_study(tiny_space: Path, tmp_path: Path):
    db = tmp_path / "shared.db"
    url = f"sqlite:///{db}"
    a = subprocess.Popen(_cmd(tiny_space, tmp_path / "a", "s", "--storage", url, "--trials", "4"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if not wait_for_count(db, STUDY_SQL, "s", timeout=120, alive=lambda: a.poll() is None):
        a.kill()
        pytest.fail(f"the first process did not start: {a.communicate()[1][-3000:]}")
    b = subprocess.run(_cmd(tiny_space, tmp_path / "b", "s", "--storage", url, "--trials", "4",
                            "--resume"), capture_output=True, text=True, timeout=600)
    _, err = a.communicate(timeout=600)
    assert a.returncode == 0, err[-2000:]
    assert b.returncode == 0, b.stderr[-2000:]
    st = optuna.load_study(study_name="s", storage=url)
    numbers = sorted(t.number for t in st.trials)
    assert numbers == list(range(len(numbers)))
    assert not st.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert not any("interrupted" in t.user_attrs.get("reason", "") for t in st.trials)
    trained = [t for t in st.trials if t.user_attrs.get("trained")]
    assert 4 <= len(trained) <= 5


@pytest.mark.slow
def test_resume_keeps_the_runs_budget_and_settings(tiny_space: Path, tmp_path: Path, capsys):
    runs = tmp_path / "runs"
    assert run_cli("search", str(tiny_space), "--budget", "2.1M", "--trials", "2",
                   "--runs-dir", str(runs), "--name", "r", "--quiet", "--no-early-stop") == 0
    # continue without repeating the budget: the run's own space.yaml (with it) is used
    assert run_cli("search", str(tiny_space), "--trials", "3", "--runs-dir", str(runs),
                   "--name", "r", "--resume", "--quiet", "--no-early-stop") == 0
    rows = read_csv(runs / "r" / "trials.csv")
    trained = [r for r in rows if r["feasible"] == "True"]
    assert len(trained) == 3 and all(int(r["macs"]) <= 2.1e6 for r in trained)
    assert json.loads((runs / "r" / "env.json").read_text())["budgets"] == {"macs": 2.1e6}
    capsys.readouterr()
    assert run_cli("search", str(tiny_space), "--resume", "--runs-dir", str(runs)) == 2
    assert "--resume needs --name" in capsys.readouterr().err


@pytest.mark.slow
def test_timeout_bounds_a_running_trial(tiny_space: Path, tmp_path: Path):
    """--timeout also stops the trial that is training: at its next epoch, with the reason."""
    tiny_space.write_text(tiny_space.read_text().replace("epochs: 2", "epochs: 200"))
    t0 = time.perf_counter()
    rc = run_cli("search", str(tiny_space), "--trials", "3", "--timeout", "3s",
                 "--runs-dir", str(tmp_path), "--name", "tb", "--quiet", "--confirm-seeds", "0")
    assert rc == 0 and time.perf_counter() - t0 < 120  # 200 epochs would take minutes
    rows = read_csv(tmp_path / "tb" / "trials.csv")
    stopped = [r for r in rows if r["reason"].startswith("stopped by --timeout")]
    assert len(stopped) == 1 and stopped[0]["state"] == "PRUNED"
    assert 1 <= int(stopped[0]["epochs"]) < 200


def test_training_threads_adapt_by_default_and_can_be_fixed(tiny_space: Path, tmp_path: Path,
                                                           monkeypatch):
    """Default: a trial whose threads wait for cores goes on at 1 thread (recorded per trial);
    ``--no-adapt-threads`` keeps the count fixed (bit-reproducible under load)."""
    from nasl.training import train as train_mod

    if train_mod.sched_times() is None:
        pytest.skip("no /proc schedstat on this system")
    monkeypatch.setattr(train_mod, "CONTENDED_WAIT", -1.0)  # every second counts as busy
    monkeypatch.setattr(train_mod, "ADAPT_WINDOW", 0.0)
    base = ["search", str(tiny_space), "--trials", "1", "--runs-dir", str(tmp_path), "--quiet",
            "--threads", "2", "--confirm-seeds", "0", "--no-baselines"]
    assert run_cli(*base, "--name", "a") == 0
    assert run_cli(*base, "--name", "f", "--no-adapt-threads") == 0
    env_a = json.loads((tmp_path / "a" / "env.json").read_text())
    env_f = json.loads((tmp_path / "f" / "env.json").read_text())
    assert (env_a["adapt_threads"], env_f["adapt_threads"]) == (True, False)
    assert env_a["threads"] == env_f["threads"] == 2
    done = {n: [r for r in read_csv(tmp_path / n / "trials.csv") if r["state"] == "COMPLETE"]
            for n in ("a", "f")}
    assert [r["threads"] for r in done["a"]] == ["1"]
    assert [r["threads"] for r in done["f"]] == ["2"]
    assert all(r["contended"] == "True" for n in done for r in done[n])
