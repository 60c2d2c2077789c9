"""One contract, both backends: reject, complete, prune, fail, interrupt (kill -9) and resume
end the same way in the Optuna loop and the Ray driver, and both write the same run layout."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from conftest import COMPLETE_SQL, wait_for_count

from nasl.common import record
from nasl.search import SearchOptions, run_search
from nasl.search.early_stop import EarlyStopper
from nasl.search.options import choice_names
from nasl.space import load_space

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_down")]  # Ray shut down after (conftest)

BACKENDS = ["optuna", "ray"]
FILES = {"trials.csv", "pareto.csv", "pareto.json", "report.html", "pareto.png", "env.json",
         "space.yaml", "study.db"}


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def search(space_file: Path, backend: str, runs: Path, name: str, **opts) -> Path:
    space = load_space(space_file)
    options = SearchOptions(name=name, runs_dir=runs, show_progress=False, **opts)
    run_search(space, options, backend=backend,
               workers=2 if backend == "ray" else None)
    return runs / name


@pytest.mark.parametrize("backend", BACKENDS)
def test_reject_complete_prune(backend: str, tiny_space: Path, tmp_path: Path, monkeypatch):
    calls = {"n": 0}

    def first_call_stops(self, costs, epoch, accuracy):
        calls["n"] += 1
        return "forced stop (test)" if calls["n"] == 1 else None

    monkeypatch.setattr(EarlyStopper, "check", first_call_stops)
    run = search(tiny_space, backend, tmp_path, "c", trials=4, epochs=2,
                 budgets={"macs": 2.1e6})
    assert {p.name for p in run.iterdir()} >= FILES
    header, rows = read_csv(run / "trials.csv")
    # the same columns whichever backend: number, state, baseline, choices, then the record
    assert header == [*record.BEFORE, *choice_names(load_space(tiny_space)), *record.AFTER]
    rejected = [r for r in rows if r["feasible"] == "False"]
    trained = [r for r in rows if r["feasible"] == "True"]
    assert rejected and all("over budget" in r["reason"] and r["accuracy"] == "" for r in rejected)
    assert all(r["state"] == "INFEASIBLE" for r in rejected)  # not COMPLETE, in trials.csv
    assert len(trained) == 4
    pruned = [r for r in trained if r["state"] == "PRUNED"]
    assert len(pruned) == 1 and pruned[0]["reason"] == "forced stop (test)"
    assert pruned[0]["epochs"] == "1" and pruned[0]["baseline"] == ""
    complete = [r for r in trained if r["state"] == "COMPLETE"]
    assert len(complete) == 3 and all(0 <= float(r["accuracy"]) <= 1 for r in complete)
    assert all(r["epochs"] == "2" and float(r["latency_ms"]) > 0 for r in complete)
    assert any(r["pareto"] == "True" for r in complete)


def test_both_backends_write_the_same_layout(tiny_space: Path, tmp_path: Path):
    runs = {b: search(tiny_space, b, tmp_path / b, "same", trials=2, epochs=1) for b in BACKENDS}
    files = {b: sorted(p.name for p in r.iterdir() if p.is_file()) for b, r in runs.items()}
    assert files["optuna"] == files["ray"]
    for name in ("trials.csv", "pareto.csv"):
        headers = {b: read_csv(r / name)[0] for b, r in runs.items()}
        assert headers["optuna"] == headers["ray"], name
    import json

    keys = {b: sorted(json.loads((r / "env.json").read_text())) for b, r in runs.items()}
    assert keys["optuna"] == keys["ray"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_failed_trials_are_recorded_and_the_search_goes_on(backend: str, tiny_space: Path,
                                                           tmp_path: Path):
    text = tiny_space.read_text().replace("batch_size: 64,", "batch_size: 64, lr: 1.0e+12,")
    tiny_space.write_text(text)
    run = search(tiny_space, backend, tmp_path, "f", trials=2, epochs=2)
    _, rows = read_csv(run / "trials.csv")
    trained = [r for r in rows if r["feasible"] == "True"]
    assert len(trained) == 2 and all(r["state"] == "FAIL" for r in trained)
    assert all("diverged" in r["reason"] for r in trained)


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_then_resume_loses_nothing(backend: str, tiny_space: Path, tmp_path: Path):
    db = tmp_path / "k" / "study.db"
    args = ["search", str(tiny_space), "--backend", backend, "--trials", "4", "--epochs", "2",
            "--runs-dir", str(tmp_path), "--name", "k", "--quiet", "--no-early-stop"]
    if backend == "ray":
        args += ["--workers", "1"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "nasl.cli", *args], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        ok = wait_for_count(db, COMPLETE_SQL, timeout=300, alive=lambda: proc.poll() is None)
        study = optuna.load_study(study_name="k", storage=f"sqlite:///{db}") if ok else None
        done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)) if study else []
        os.killpg(proc.pid, signal.SIGKILL)  # the search and (Ray) its local workers
        proc.wait()
    assert done, (tmp_path / "first.log").read_text()[-3000:]
    first = {t.number: t.values for t in done}
    r = subprocess.run([sys.executable, "-m", "nasl.cli", *args, "--resume"], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    study = optuna.load_study(study_name="k", storage=f"sqlite:///{db}")
    complete = {t.number: t.values for t in study.trials
                if t.state == optuna.trial.TrialState.COMPLETE}
    assert all(complete[n] == v for n, v in first.items())  # nothing completed was lost
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    trained = [t for t in study.trials if t.user_attrs.get("trained")]
    assert len(trained) == 4  # interrupted trials do not count; their designs ran again
    _, rows = read_csv(tmp_path / "k" / "trials.csv")
    assert len([x for x in rows if x["feasible"] == "True" and x["state"] == "COMPLETE"]) >= 4
