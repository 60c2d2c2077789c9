"""The backend contract: the same tiny search through every backend (Optuna in this process,
Optuna with a worker process, Ray with one worker: two Ray workers may propose the same design
while its first evaluation is in flight) writes the same run folder — same files, same columns,
the same front on a deterministic space — and Ray's private searcher state is read in one
adapter that fails loudly when Ray changes it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from nasl.search import SearchOptions, run_search
from nasl.space import load_space

pytestmark = pytest.mark.usefixtures("ray_down")  # Ray shut down after this module (conftest)

BACKENDS = {"optuna": {}, "optuna-workers": {"trials_per_device": 2}, "ray": {}}


def _table_space(tmp_path: Path) -> Path:
    """A deterministic tabular space of 5 designs (no noise): every backend that evaluates all
    of them must find the same front."""
    rows = [["a", "b", "acc", "lat"]]
    rows += [[a, b, 0.5 + 0.1 * a - 0.05 * (b == "y"), 10 * a + 3 * (b == "y")]
             for a in (1, 2, 3) for b in ("x", "y") if (a, b) != (3, "y")]
    with (tmp_path / "t.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    p = tmp_path / "s.yaml"
    p.write_text("name: contract\nfamily: table\ntable:\n  file: t.csv\n  choices: [a, b]\n"
                 "  metrics: {accuracy: acc, latency_ms: lat}\n"
                 "objectives: [{accuracy: max}, {latency_ms: min}]\n"
                 "search: {sampler: random, trials: 5, seed: 0}\n")
    return p


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames or []), list(r)


@pytest.mark.slow
def test_every_backend_writes_the_same_run(tmp_path: Path) -> None:
    space_file = _table_space(tmp_path)
    runs = {}
    for name, extra in BACKENDS.items():
        opts = SearchOptions(name=name, runs_dir=tmp_path / "runs", show_progress=False,
                             trials=5, confirm_seeds=0, **extra)
        out = run_search(load_space(space_file), opts, backend="ray" if name == "ray" else "optuna",
                         workers=1 if name == "ray" else None)
        assert out.trained == 5 and not out.interrupted, name
        runs[name] = tmp_path / "runs" / name
    files = {n: sorted(p.name for p in r.iterdir() if p.is_file()) for n, r in runs.items()}
    assert files["optuna"] == files["optuna-workers"] == files["ray"]
    fronts = {}
    for n, r in runs.items():
        header, rows = _read(r / "trials.csv")
        assert header == _read(runs["optuna"] / "trials.csv")[0], n
        done = sorted((x["a"], x["b"]) for x in rows if x["state"] == "COMPLETE")
        assert done == [("1", "x"), ("1", "y"), ("2", "x"), ("2", "y"), ("3", "x")], n
        fronts[n] = sorted((x["a"], x["b"], x["accuracy"], x["latency_ms"])
                           for x in _read(r / "pareto.csv")[1])
        keys = sorted(json.loads((r / "env.json").read_text()))
        assert keys == sorted(json.loads((runs["optuna"] / "env.json").read_text())), n
    assert fronts["optuna"] == fronts["optuna-workers"] == fronts["ray"]
    assert len(fronts["optuna"]) >= 2  # a real trade-off, not one point


@pytest.mark.slow
def test_ray_says_pick_is_not_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A table's default sampler (pick) proposes in the Optuna loop only: with Ray the run says
    so (stderr and env.json) instead of silently searching with TPE."""
    space_file = _table_space(tmp_path)
    space_file.write_text(space_file.read_text().replace("sampler: random, ", ""))
    space = load_space(space_file)
    assert space.search.sampler == "pick"
    opts = SearchOptions(name="r", runs_dir=tmp_path / "runs", show_progress=False, trials=3,
                         confirm_seeds=0)
    out = run_search(space, opts, backend="ray", workers=1)
    assert out.trained == 3
    env = json.loads((tmp_path / "runs" / "r" / "env.json").read_text())
    assert "pick" in env["sampler_note"] and "--backend ray" in env["sampler_note"]
    assert "--sampler pick proposes in the optuna backend's loop only" in capsys.readouterr().err


def test_ray_adapter_reads_optuna_search_state() -> None:
    """Ray's OptunaSearch still keeps the private state nasl reads (this test fails on a Ray
    upgrade that renames it, instead of the Ray backend failing silently)."""
    pytest.importorskip("ray.tune.search.optuna")
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from nasl.search.ray_backend import RayTrials

    def space(trial: optuna.Trial) -> None:
        trial.suggest_int("x", 0, 3)

    searcher = OptunaSearch(space=space, metric="y", mode="max",
                            sampler=optuna.samplers.RandomSampler(seed=0))
    trials = RayTrials(searcher)
    searcher.suggest("t1")
    ot = trials.trial("t1")
    assert isinstance(ot, optuna.Trial) and 0 <= ot.params["x"] <= 3
    assert trials.complete_once("t1") is ot and trials.complete_once("t1") is None
    searcher.suggest("t2")
    trials.forget("t2")
    assert trials.trial("t2") is None


def test_ray_adapter_fails_loudly_without_that_state() -> None:
    pytest.importorskip("ray")
    from nasl.search.ray_backend import RayTrials

    with pytest.raises(RuntimeError, match="_ot_trials.*must be updated"):
        RayTrials(object())
