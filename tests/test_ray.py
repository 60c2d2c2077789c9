"""Ray Tune backend on a local Ray with 2 CPUs: same outputs, budgets, failures, resume."""

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

pytest.importorskip("ray")

pytestmark = pytest.mark.slow


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def nasl(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    return subprocess.run([sys.executable, "-m", "nasl.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_ray_search_matches_the_optuna_outputs(tiny_space: Path, tmp_path: Path):
    r = nasl("search", str(tiny_space), "--backend", "ray", "--workers", "2", "--trials", "4",
             "--budget", "2.1M", "--runs-dir", str(tmp_path), "--name", "r", "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "r"
    for f in ("trials.csv", "pareto.csv", "pareto.json", "report.html", "pareto.png", "env.json",
              "study.db"):
        assert (run / f).is_file(), f
    rows = read_csv(run / "trials.csv")
    trained = [x for x in rows if x["feasible"] == "True"]
    assert len(trained) == 4
    assert all(x["state"] in ("COMPLETE", "PRUNED") for x in trained)
    # over-budget designs were rejected on the driver, never trained, never sent to workers
    for x in rows:
        if x["feasible"] == "False":
            assert float(x["macs"]) > 2.1e6 and x["accuracy"] == "" and x["node"] == ""
    # latency measured on the worker, with its node and device recorded
    for x in trained:
        assert x["node"] and x["device"] == "cpu" and float(x["latency_ms"]) > 0
    assert rows[0]["baseline"] == "small_g3"
    study = optuna.load_study(study_name="r", storage=f"sqlite:///{run / 'study.db'}")
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) >= 4


def test_ray_worker_errors_are_recorded(tiny_space: Path, tmp_path: Path):
    text = tiny_space.read_text().replace("batch_size: 64,", "batch_size: 64, lr: 1.0e+12,")
    tiny_space.write_text(text)
    r = nasl("search", str(tiny_space), "--backend", "ray", "--workers", "2", "--trials", "2",
             "--runs-dir", str(tmp_path), "--name", "e", "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [x for x in read_csv(tmp_path / "e" / "trials.csv") if x["feasible"] == "True"]
    assert len(rows) == 2 and all(x["state"] == "FAIL" for x in rows)
    assert all("diverged" in x["reason"] for x in rows)


def test_ray_resume_after_the_driver_is_killed(tiny_space: Path, tmp_path: Path):
    db = tmp_path / "k" / "study.db"
    args = ["search", str(tiny_space), "--backend", "ray", "--workers", "1", "--trials", "4",
            "--runs-dir", str(tmp_path), "--name", "k", "--quiet", "--no-early-stop"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    log = open(tmp_path / "driver.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "nasl.cli", *args], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    ok = wait_for_count(db, COMPLETE_SQL, timeout=300, alive=lambda: proc.poll() is None)
    st = optuna.load_study(study_name="k", storage=f"sqlite:///{db}") if ok else None
    done = st.get_trials(states=(optuna.trial.TrialState.COMPLETE,)) if st else []
    assert done, (tmp_path / "driver.log").read_text()[-3000:]
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its local Ray processes
    proc.wait()
    log.close()
    first = {t.number: t.values for t in done}
    r = nasl(*args, "--resume")
    assert r.returncode == 0, r.stderr[-3000:]
    st = optuna.load_study(study_name="k", storage=f"sqlite:///{db}")
    complete = {t.number: t.values for t in st.trials
                if t.state == optuna.trial.TrialState.COMPLETE}
    assert all(complete[n] == v for n, v in first.items())
    assert not st.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    trained = [t for t in st.trials if t.user_attrs.get("trained")]
    assert len([t for t in trained if "interrupted" not in t.user_attrs.get("reason", "")]) >= 4
