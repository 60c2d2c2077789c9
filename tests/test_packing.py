"""--trials-per-device auto: K from free memory and a throughput probe (nasl.search.packing)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from nasl.cli import main
from nasl.search.packing import GAIN_NEEDED, ProbeRow, _limit, choose_k, probe_design
from nasl.space import load_space


def test_k_is_the_smallest_within_the_gain_needed_of_the_best() -> None:
    rows = [ProbeRow(1, aggregate=100.0), ProbeRow(2, aggregate=180.0), ProbeRow(4, aggregate=190.0),
            ProbeRow(8, aggregate=150.0)]
    assert choose_k(GAIN_NEEDED, rows) == 2  # 4 gains 5.6 % over 2: not worth packing more
    rows[2].aggregate = 210.0
    assert choose_k(GAIN_NEEDED, rows) == 4  # 16.7 % more: worth it
    assert choose_k(GAIN_NEEDED, [ProbeRow(1, aggregate=100.0), ProbeRow(2, aggregate=80.0)]) == 1
    assert choose_k(GAIN_NEEDED, [ProbeRow(1, note="out of memory")]) == 1  # nothing measured
    assert choose_k(GAIN_NEEDED, [ProbeRow(1, aggregate=100.0), ProbeRow(2, note="out of memory")]) == 1


def test_memory_and_cores_limit_k() -> None:
    assert _limit(1000.0, 10_000.0, None, 8) == 8
    assert _limit(1000.0, 3_000.0, None, 8) == 2  # 90 % of 3 GB holds two 1-GB trials
    assert _limit(1000.0, 500.0, None, 8) == 1  # never below one
    assert _limit(100.0, 10_000.0, 2, 8) == 2  # the CPU: one core per trial at least
    assert _limit(None, None, None, 8) == 8  # unknown memory: the throughput decides


def test_probe_design_is_the_largest_within_the_budget() -> None:
    from nasl.search.objective import static_costs

    space = load_space("shufflenet")
    name, params, macs = probe_design(space, {"macs": 40e6})
    assert macs <= 40e6
    assert static_costs(space.to_arch(params))["macs"] == macs
    baseline_macs = [static_costs(space.to_arch(p))["macs"] for p in space.baselines.values()]
    assert macs >= max(m for m in baseline_macs if m <= 40e6)  # no baseline within it is larger
    _, _, unbounded = probe_design(space, {})
    assert unbounded > macs
    with pytest.raises(ValueError, match="no design"):
        probe_design(space, {"macs": 1.0})


def test_bad_trials_per_device_is_one_line(tiny_space: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    rc = main(["search", str(tiny_space), "--trials-per-device", "many", "--runs-dir", str(runs), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "--trials-per-device many: expected auto or an integer" in err
    assert len(err.strip().splitlines()) == 1
    assert not runs.exists() or not any(runs.iterdir())  # nothing written


def test_auto_on_a_table_space_is_one_process(tmp_path: Path) -> None:
    rc = main(["search", "nb201", "--trials", "3", "--runs-dir", str(tmp_path), "--name", "t", "--quiet",
               "--trials-per-device", "auto", "--confirm-seeds", "0"])
    assert rc == 0
    pack = json.loads((tmp_path / "t" / "env.json").read_text())["trials_per_device_auto"]
    assert pack["k"] == 1 and "tabular" in pack["reason"] and not pack["rows"]


@pytest.mark.slow
def test_auto_probes_then_trains_k_trials_at_once(tiny_space: Path, tmp_path: Path) -> None:
    rc = main(["search", str(tiny_space), "--trials", "3", "--runs-dir", str(tmp_path), "--name", "auto",
               "--quiet", "--no-early-stop", "--confirm-seeds", "0", "--trials-per-device", "auto",
               "--devices", "cpu"])
    assert rc == 0
    env = json.loads((tmp_path / "auto" / "env.json").read_text())
    pack = env["trials_per_device_auto"]
    measured = [r for r in pack["rows"] if "aggregate" in r]
    assert pack["device"] == "cpu" and measured and measured[0]["k"] == 1
    assert all(r["aggregate"] > 0 and r["footprint_mb"] > 0 for r in measured)
    assert 1 <= pack["k"] <= pack["limit"] and pack["k"] in [r["k"] for r in measured]
    assert env["trials_per_device"] == "auto"
    study = optuna.load_study(study_name="auto", storage=f"sqlite:///{tmp_path / 'auto' / 'study.db'}")
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) >= 3 and not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    owners = {t.user_attrs["owner"] for t in done}
    assert 1 <= len(owners) <= pack["k"]  # no more training processes than K
