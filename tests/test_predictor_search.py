"""A search finds the latency predictor that `nasl latency calibrate` stored for its target
(the wall clock, what a search times with) and screens every candidate with it."""

from __future__ import annotations

import optuna
import pytest

from nasl.cli import main


@pytest.mark.slow
def test_search_finds_and_uses_a_stored_predictor(tiny_space, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NASL_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["latency", "calibrate", str(tiny_space), "--designs", "2", "--kernel-designs",
                 "0", "--repeats", "3", "--quiet"]) == 0
    report = capsys.readouterr().out
    assert "wall clock" in report and "CPU clock" in report  # the clock it was judged on
    stored = list((tmp_path / "cache" / "latency").glob("tiny-*.json"))
    assert len(stored) == 1
    assert main(["search", str(tiny_space), "--trials", "2", "--epochs", "1", "--quiet",
                 "--runs-dir", str(tmp_path), "--name", "p", "--confirm-seeds", "0",
                 "--budget", "1000ms"]) == 0
    study = optuna.load_study(study_name="p", storage=f"sqlite:///{tmp_path / 'p' / 'study.db'}")
    screened = [t.user_attrs.get("latency_predicted_ms") for t in study.trials]
    assert screened and all(ms is not None and ms > 0 for ms in screened)
