"""--trials-per-device K with the Optuna backend: worker processes on the run's study (CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import COMPLETE_SQL, db_count

from nasl.cli import main
from nasl.common.errors import NaslError
from nasl.search.workers import slots

TrialState = optuna.trial.TrialState
OWNERS_SQL = "SELECT count(DISTINCT value_json) FROM trial_user_attributes WHERE key = 'owner'"


def test_slots_per_device(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    assert slots(None, "cpu", 2) == ["cpu", "cpu"]
    assert slots("cpu", "auto", 1) == ["cpu"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert slots("0,1", "auto", 2) == ["cuda:0", "cuda:0", "cuda:1", "cuda:1"]
    with pytest.raises(NaslError, match="only 2 CUDA"):
        slots("0,2", "auto", 1)
    with pytest.raises(NaslError, match="--trials-per-device 0"):
        slots(None, "cpu", 0)


def test_devices_with_ray_is_one_line(tiny_space: Path, tmp_path: Path, capsys) -> None:
    rc = main(["search", str(tiny_space), "--backend", "ray", "--trials-per-device", "2",
               "--runs-dir", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "are for --backend optuna" in err and len(err.strip().splitlines()) == 1


def _owner_pid(owner: str) -> int:
    return int(owner.split(":")[-2])


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
def test_two_per_device_kill_9_then_resume_loses_nothing(tiny_space: Path, tmp_path: Path) -> None:
    db = tmp_path / "k2" / "study.db"
    n = 16  # tiny trials take ~0.5 s and a worker ~5 s to start: enough for both slots to take one
    cmd = [sys.executable, "-m", "nasl.cli", "search", str(tiny_space), "--trials", str(n),
           "--epochs", "6", "--runs-dir", str(tmp_path), "--name", "k2", "--quiet",
           "--no-early-stop", "--confirm-seeds", "0", "--threads", "1",
           "--trials-per-device", "2", "--devices", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # kill only once a trial completed and both slots (two processes) have taken a trial
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline and not (
            db_count(db, COMPLETE_SQL) >= 1 and db_count(db, OWNERS_SQL) >= 2):
        time.sleep(0.2)
    if proc.poll() is not None or db_count(db, OWNERS_SQL) < 2:
        proc.kill()
        pytest.fail(f"the second slot took no trial: {proc.communicate()[1][-3000:]}")
    study = optuna.load_study(study_name="k2", storage=f"sqlite:///{db}")
    first = {t.number: t.values for t in study.get_trials(states=(TrialState.COMPLETE,))}
    owners = {t.user_attrs["owner"] for t in study.trials if t.user_attrs.get("owner")}
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30  # the worker dies with the search process
    while not all(_gone(_owner_pid(o)) for o in owners) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(_gone(_owner_pid(o)) for o in owners), owners
    done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    study = optuna.load_study(study_name="k2", storage=f"sqlite:///{db}")
    complete = {t.number: t.values for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert all(complete.get(n) == v for n, v in first.items())  # nothing completed was lost
    assert not study.get_trials(states=(TrialState.RUNNING,))
    trained = [t for t in study.trials if t.user_attrs.get("trained")]
    assert n <= len(trained) <= n + 2  # each run's second slot may start one more
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in trained)
    # both slots of the killed run took trials from the one study (its two processes)
    assert len(owners) >= 2 and owners <= {t.user_attrs.get("owner") for t in study.trials}
