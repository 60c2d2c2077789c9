"""Progress that reads well in a log: per-trial lines with n/N, the design, MACs and time left;
the confirmation and re-timing stages say what they do; a heartbeat fills silences; no boxes
and no source-file suffix when the output is not a terminal."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from nasl.common.events import EpochEnded, StageProgress, TrialEnded, TrialStarted
from nasl.search.progress import SearchProgress, design_text, duration

CHOICES = {"groups": 3, "shuffle": True, "width_mult": 0.5, "resolution": 192,
           "stage_repeats[0]": 4, "stage_repeats[1]": 8, "stage_repeats[2]": 4}


def _plain(total: int = 20, **kw) -> tuple[SearchProgress, io.StringIO]:
    buf = io.StringIO()
    console = Console(file=buf, width=200, force_terminal=False)
    return SearchProgress(total, console=console, **kw), buf


def test_units() -> None:
    assert duration(6.2) == "6 s" and duration(100) == "1 min 40 s" and duration(120) == "2 min"
    assert duration(3900) == "1 h 5 min"
    assert design_text(CHOICES) == "g=3 shuffle w=0.5 r=192 rep=4/8/4"
    assert design_text({"shuffle": False, "resolution_mult": 0.857}) == "no-shuffle ρ=0.857"


def test_trial_lines_say_n_of_total_design_macs_and_time_left() -> None:
    progress, buf = _plain(total=3, heartbeat=None)
    with progress:
        for n in range(2):
            TrialStarted(n + 10, CHOICES, "", 2, {"macs": 31_234_567, "params": 700_000}).deliver(progress)
            EpochEnded(n + 10, 1, 0.8).deliver(progress)
            TrialEnded(n + 10, "complete", accuracy=0.831, seconds=6.2).deliver(progress)
    lines = buf.getvalue().splitlines()
    assert lines[0] == "search: 3 trials to train"
    assert lines[1].startswith("trial 1/3 · #10 g=3 shuffle w=0.5 r=192 rep=4/8/4 · 31.2 M MACs · "
                               "83.1 % in 6 s · ~"), lines[1]
    assert lines[1].endswith(" left")
    assert lines[2].startswith("trial 2/3 · #11") and "left" in lines[2]
    assert ".py:" not in buf.getvalue() and "━" not in buf.getvalue()


def test_confirm_and_retime_lines_show_steps_and_time_left() -> None:
    progress, buf = _plain(total=1, heartbeat=None)
    with progress:
        StageProgress("confirm", number=12, seed=5).deliver(progress)  # without done/total
        for i in range(3):
            StageProgress("confirm", number=12, seed=5 + i, done=i, total=6, epochs=2,
                          recipe="proxy").deliver(progress)  # what nasl.search.confirm sends
        StageProgress("remeasure", number=12, done=1, total=4).deliver(progress)
    text = buf.getvalue()
    assert "confirmation: the designs that can change the answer" in text
    assert "confirm step 1 · #12 seed 5" in text
    assert re.search(r"confirm 3/6 · #12 seed 7 · 2 epochs · proxy · ~\d+ s left", text), text
    assert "re-timing:" in text and re.search(r"re-time 2/4 · #12 · ~\d+ s left", text), text


def test_a_second_recipe_has_its_own_pace(monkeypatch: pytest.MonkeyPatch) -> None:
    # 12 plain trainings of 60 s, then augmented ones of 60 s: the augmented count starts at
    # 1/12 again, and its time left must come from its own pace, not the plain stage's 12 min
    clock = [1000.0]
    monkeypatch.setattr("nasl.search.progress.time.monotonic", lambda: clock[0])
    progress, buf = _plain(total=1, heartbeat=None)
    with progress:
        for recipe in ("plain", "augmented"):
            for i in range(12):
                StageProgress("confirm", number=3, done=i, total=12, epochs=9,
                              recipe=recipe).deliver(progress)
                clock[0] += 60.0
    text = buf.getvalue()
    assert "confirm 2/12 · #3 · 9 epochs · augmented · ~11 min left" in text, text
    assert "confirm 12/12 · #3 · 9 epochs · augmented · ~1 min left" in text, text
    assert text.count("confirmation: the designs") == 1
    # the heartbeat counts the step that runs, not the stage
    clock[0] += 30.0
    progress.heartbeat = 15.0
    assert progress.beat(clock[0])
    assert buf.getvalue().splitlines()[-1].endswith("(1 min 30 s so far)"), buf.getvalue()[-200:]


def test_heartbeat_says_what_runs_after_a_silence() -> None:
    progress, buf = _plain(total=1, heartbeat=15.0)
    StageProgress("confirm", number=3, seed=9, done=0, total=2).deliver(progress)
    quiet = progress.last_line
    assert not progress.beat(quiet + 5)
    assert progress.beat(quiet + 16)
    assert buf.getvalue().splitlines()[-1].startswith("  … confirm 1/2 #3 seed 9 (")
    progress.enabled = False
    progress, buf = _plain(total=1, heartbeat=None)  # off: never prints
    StageProgress("confirm", number=3, seed=9).deliver(progress)
    assert not progress.beat(progress.last_line + 100)


@pytest.mark.slow
def test_main_job_log_piped_to_a_file(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    with log.open("w") as f:
        r = subprocess.run([sys.executable, "-m", "nasl.cli", "search", "shufflenet", "--budget",
                            "40MFLOPs", "--trials", "3", "--epochs", "1", "--data", "digits",
                            "--confirm-budget", "4", "--runs-dir", str(tmp_path / "runs"), "--name",
                            "p"],
                           stdout=f, stderr=subprocess.STDOUT, timeout=600)
    text = log.read_text()
    assert r.returncode == 0, text[-3000:]
    trial_lines = [ln for ln in text.splitlines() if ln.startswith("trial ")]
    assert len(trial_lines) == 3, text
    assert re.match(r"trial 1/3 · #0 ★shufflenet_0\.5x_g1 g=1 .*w=0\.5 .* · 38\.5 M MACs · "
                    r"\d+\.\d % in \d+ s · ~.+ left$", trial_lines[0]), trial_lines[0]
    assert "confirmation:" in text and "re-timing:" in text
    assert not re.search(r"\w+\.py:\d+", text) and "┏" not in text and "│" not in text
