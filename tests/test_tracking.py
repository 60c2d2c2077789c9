"""W&B tracking (nasl.tracking) in offline mode: drive the tracker with a synthetic search,
then read back what wandb wrote under ``<run_dir>/wandb/offline-run-*``."""

from __future__ import annotations

import json
import os
import struct
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from nasl.common.events import EpochEnded, FrontWritten, TrialEnded, TrialStarted
from nasl.run import results
from nasl.tracking import (
    WandbTracker,
    has_api_key,
    hypervolume_curve,
    normalised_hypervolume,
    resolve_mode,
)

OBJECTIVES = [("accuracy", "maximize"), ("macs", "minimize"), ("latency_ms", "minimize")]
BUDGETS = {"macs": 40e6}
CHOICES = ["groups", "width_mult", "stage_repeats"]
SPACE_YAML = "name: tiny\nfamily: shufflenet\nbudget:\n  macs: 40M\n"


@pytest.fixture
def wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Offline W&B with every wandb directory inside ``tmp_path``."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var, sub in (("WANDB_DIR", "wbdir"), ("WANDB_CONFIG_DIR", "config"),
                     ("WANDB_DATA_DIR", "data"), ("WANDB_CACHE_DIR", "cache"),
                     ("WANDB_ARTIFACT_DIR", "artifacts")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    return tmp_path


# ----------------------------------------------------------------------------- reading back
def _records(path: Path) -> list[Any]:
    """Records of a ``.wandb`` file (a LevelDB-style log of protobuf ``Record`` messages)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, chunks, buf = 7, 32768, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:  # block padding
            pos += left
            continue
        chunk = data[pos + 7:pos + 7 + length]
        if len(chunk) < length:  # the writer is still appending this record
            break
        pos += 7 + length
        if kind == 1:
            chunks.append(chunk)
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        elif kind == 4:
            chunks.append(buf + chunk)
            buf = b""
    out = []
    for c in chunks:
        rec = pb.Record()
        rec.ParseFromString(c)
        out.append(rec)
    return out


def _put(target: dict[str, Any], item: Any) -> None:
    path = [item.key] if item.key else list(item.nested_key)
    for k in path[:-1]:
        target = target.setdefault(k, {})
    target[path[-1]] = json.loads(item.value_json)


def read_run(run_dir: Path) -> dict[str, Any]:
    """One offline run folder → name, group, job_type, tags, config, summary, history, ..."""
    run: dict[str, Any] = {"dir": run_dir, "config": {}, "summary": {}, "history": [],
                           "artifacts": [], "files": [], "exit_code": None}
    for rec in _records(next(run_dir.glob("*.wandb"))):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            run.update(name=r.display_name, group=r.run_group, job_type=r.job_type,
                       tags=list(r.tags), project=r.project)
            for item in r.config.update:
                _put(run["config"], item)
        elif kind == "config":
            for item in rec.config.update:
                _put(run["config"], item)
        elif kind == "summary":
            for item in rec.summary.update:
                _put(run["summary"], item)
        elif kind == "history":
            step: dict[str, Any] = {}
            for item in rec.history.item:
                _put(step, item)
            run["history"].append(step)
        elif kind == "artifact":
            a = rec.artifact
            run["artifacts"].append({"name": a.name, "type": a.type,
                                     "files": {m.path: m.local_path for m in a.manifest.contents}})
        elif kind == "files":
            run["files"] += [f.path for f in rec.files.files]
        elif kind == "exit":
            run["exit_code"] = rec.exit.exit_code
    return run


def read_runs(root: Path, wait: float = 15.0) -> list[dict[str, Any]]:
    """Every offline run under ``root/wandb``; waits until each has its exit record (wandb-core
    may write a run's last records a moment after ``finish()`` returns)."""
    from google.protobuf.message import DecodeError

    deadline = time.monotonic() + wait
    while True:
        try:
            runs = [read_run(d) for d in sorted((root / "wandb").glob("offline-run-*"))]
        except DecodeError:  # read mid-write: a record not yet flushed whole
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
            continue
        if all(r["exit_code"] is not None for r in runs) or time.monotonic() > deadline:
            return runs
        time.sleep(0.1)


def media(run: dict[str, Any], key: str) -> Any:
    """The JSON file a media summary entry (table, plotly chart) points to."""
    return json.loads((run["dir"] / "files" / run["summary"][key]["path"]).read_text())


# ----------------------------------------------------------------------------- a synthetic search
TRIALS: list[dict[str, Any]] = [
    # number, end event, choices, costs, accuracy curve, baseline / reason
    {"number": 0, "event": "complete", "choices": {"groups": 3, "width_mult": 0.5,
     "stage_repeats": [4, 8, 4]}, "macs": 30e6, "lat": 5.0, "curve": [0.4, 0.6],
     "baseline": "shufflenet_g3_0.5x"},
    {"number": 1, "event": "complete", "choices": {"groups": 2, "width_mult": 0.6,
     "stage_repeats": [2, 6, 2]}, "macs": 38e6, "lat": 6.0, "curve": [0.5, 0.7]},
    {"number": 2, "event": "pruned", "choices": {"groups": 1, "width_mult": 0.4,
     "stage_repeats": [2, 4, 2]}, "macs": 20e6, "lat": 4.0, "curve": [0.3],
     "reason": "dominated at epoch 1"},
    {"number": 3, "event": "fail", "choices": {"groups": 4, "width_mult": 0.5,
     "stage_repeats": [4, 8, 4]}, "macs": 33e6, "lat": 5.5, "curve": [],
     "reason": "RuntimeError: boom"},
    {"number": 4, "event": "rejected", "choices": {"groups": 8, "width_mult": 1.0,
     "stage_repeats": [4, 8, 4]}, "macs": 60e6, "lat": None, "curve": [],
     "reason": "macs 60M > budget 40M"},
    {"number": 5, "event": "complete", "choices": {"groups": 3, "width_mult": 0.55,
     "stage_repeats": [4, 8, 4]}, "macs": 35e6, "lat": 7.0, "curve": [0.3, 0.5]},
]
STATE = {"complete": "COMPLETE", "pruned": "PRUNED", "fail": "FAIL", "rejected": "COMPLETE"}


def _row(t: dict[str, Any]) -> dict[str, Any]:
    lat = t["lat"]
    row = {"number": t["number"], "state": STATE[t["event"]], "baseline": t.get("baseline", ""),
           **t["choices"], "macs": t["macs"], "params": int(t["macs"] / 30), "size_mb": 1.5,
           "latency_ms": lat, "latency_p10_ms": lat and lat - 0.2,
           "latency_p90_ms": lat and lat + 0.3, "accuracy": t["curve"][-1] if t["curve"] else None,
           "best_accuracy": max(t["curve"]) if t["curve"] else None, "epochs": len(t["curve"]),
           "seconds": 1.0, "feasible": t["event"] != "rejected", "pareto": False,
           "reason": t.get("reason", ""), "device": "cpu", "device_name": "test cpu",
           "node": "", "arch_id": f"arch{t['number']}", "seed": 100 + t["number"]}
    return row


def drive(tracker: Any, run_dir: Path) -> None:
    """Send the events a Search sends for TRIALS, then the final front and ``finished``."""
    rows: list[dict[str, Any]] = []
    for t in TRIALS:
        row = _row(t)
        n = t["number"]
        if t["event"] != "rejected":
            rec = {k: row[k] for k in ("macs", "params", "size_mb", "latency_ms", "latency_p10_ms",
                                       "latency_p90_ms", "device", "device_name", "seed", "arch_id")}
            rec["latency"] = {"median_ms": row["latency_ms"], "std_ms": 0.1, "threads": 1,
                              "batch_size": 1, "dtype": "float32", "repeats": 10}
            TrialStarted(n, t["choices"], row["baseline"], 2, rec).deliver(tracker)
            for epoch, acc in enumerate(t["curve"], start=1):
                EpochEnded(n, epoch, acc, 2 - acc).deliver(tracker)
        rows.append(row)
        TrialEnded(n, t["event"], dict(row), reason=row["reason"],
                   accuracy=row["accuracy"] if t["event"] == "complete" else None).deliver(tracker)
        if t["event"] != "rejected":
            snap = [dict(r) for r in rows]
            results.mark_front(snap, OBJECTIVES)
            FrontWritten(0, snap).deliver(tracker)
    snap = [dict(r) for r in rows]
    results.mark_front(snap, OBJECTIVES)
    (run_dir / "report.html").write_text("<html><body>nasl report</body></html>")
    FrontWritten(0, snap, final=True, run=results.RunDir(run_dir)).deliver(tracker)


def make(run_dir: Path, **kw: Any) -> WandbTracker:
    return WandbTracker(run_dir, "tiny-run", OBJECTIVES, BUDGETS, SPACE_YAML, CHOICES,
                        project="nasl-test", space_name="tiny", table_interval=0.0, **kw)


# ----------------------------------------------------------------------------- tests
def test_offline_search_is_read_back(wandb_env: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_DATA_DIR")  # unset: artifacts are staged inside the run dir
    run_dir = wandb_env / "runs" / "tiny-run"
    run_dir.mkdir(parents=True)
    tracker = make(run_dir)
    assert tracker.mode == "offline"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "switched off" warning
        drive(tracker, run_dir)
    assert not tracker.warned
    assert "wandb sync" in capsys.readouterr().err

    runs = read_runs(run_dir)
    assert len(runs) == len(TRIALS) + 1  # one per trial (the infeasible one too) + the summary
    assert {r["group"] for r in runs} == {"tiny-run"}
    assert {r["project"] for r in runs} == {"nasl-test"}
    trials = {r["config"]["trial"]: r for r in runs if r["job_type"] == "trial"}
    (summary,) = [r for r in runs if r["job_type"] == "search"]
    assert sorted(trials) == [t["number"] for t in TRIALS]

    # per-trial runs: choices as config, costs/state/reason as summary, epochs as history
    states = {"complete": "COMPLETE", "pruned": "PRUNED", "fail": "FAIL", "rejected": "infeasible"}
    for t in TRIALS:
        run = trials[t["number"]]
        assert run["name"] == f"tiny-run-trial-{t['number']}"
        for k, v in t["choices"].items():
            assert run["config"][k] == v
        s = run["summary"]
        assert s["state"] == states[t["event"]] and states[t["event"]] in run["tags"]
        assert s["macs"] == t["macs"] and s["feasible"] == (t["event"] != "rejected")
        assert s["reason"] == t.get("reason", "")
        assert run["exit_code"] == (1 if t["event"] == "fail" else 0)
        history = [h for h in run["history"] if "accuracy" in h]
        assert [h["accuracy"] for h in history] == t["curve"]
        assert [h["_step"] for h in history] == list(range(1, len(t["curve"]) + 1))
        assert [h["loss"] for h in history] == pytest.approx([2 - a for a in t["curve"]])
        if t["lat"] is not None:
            assert s["latency_ms"] == t["lat"]
            assert s["latency_spread_ms"] == pytest.approx(0.5)
            assert run["config"]["latency_setup"]["threads"] == 1
    assert trials[0]["config"]["baseline"] == "shufflenet_g3_0.5x"
    assert "baseline" in trials[0]["tags"]
    assert trials[0]["summary"]["accuracy"] == 0.6

    # summary run: the table of all trials (pareto / feasible / baseline / status)
    s = summary["summary"]
    assert summary["name"] == "tiny-run" and summary["exit_code"] == 0
    assert summary["config"]["objectives"] == dict(OBJECTIVES)
    table = media(summary, "trials_table")
    cols = table["columns"]
    for c in ("number", "state", "baseline", *CHOICES, "macs", "latency_ms", "accuracy",
              "feasible", "pareto", "reason", "status"):
        assert c in cols
    rows = {r[cols.index("number")]: dict(zip(cols, r, strict=True)) for r in table["data"]}
    assert sorted(rows) == [t["number"] for t in TRIALS]
    assert {n for n, r in rows.items() if r["pareto"]} == {0, 1}
    assert {n for n, r in rows.items() if not r["feasible"]} == {4}
    assert rows[0]["baseline"] == "shufflenet_g3_0.5x" and rows[0]["stage_repeats"] == "4,8,4"
    assert {n: r["status"] for n, r in rows.items()} == {
        0: "front", 1: "front", 2: "pruned", 3: "failed", 4: "infeasible", 5: "feasible"}
    front = media(summary, "front")
    assert sorted(r[front["columns"].index("number")] for r in front["data"]) == [0, 1]

    # Pareto charts (plotly JSON): front, baselines with their names, the MACs budget line
    for key in ("pareto/accuracy_vs_macs", "pareto/accuracy_vs_latency", "pareto/macs_vs_latency"):
        assert s[key]["_type"] == "plotly-file"
    traces = {t.get("name"): t for t in media(summary, "pareto/accuracy_vs_macs")["data"]}
    assert sorted(traces["front"]["x"]) == [30e6, 38e6]
    assert "baselines" in traces  # named by an annotation placed apart from the others
    layout = media(summary, "pareto/accuracy_vs_macs")["layout"]
    assert [a["text"] for a in layout["annotations"]] == ["shufflenet_g3_0.5x"]
    budget = next(t for name, t in traces.items() if str(name).startswith("budget"))
    assert set(budget["x"]) == {40e6}
    # hypervolume over finished trials: a metric with step "trials" and the final line chart
    hv = [(h["trials"], h["hypervolume"]) for h in summary["history"] if "hypervolume" in h]
    # after each trial end with a front event (not the rejected one), then the final front
    assert [n for n, _ in hv] == [1, 2, 3, 4, 6, 6]
    assert all(0 < v <= 1 for _, v in hv)
    curve = media(summary, "hypervolume_curve_table")
    assert curve["columns"] == ["trials", "hypervolume"] and len(curve["data"]) == len(TRIALS)
    values = [v for _, v in curve["data"]]
    assert values == sorted(values) and values[-1] == pytest.approx(s["hypervolume"])
    # the resolved space as an artifact, report.html in the files and as an HTML panel
    (space_art,) = [a for a in summary["artifacts"] if a["type"] == "search-space"]
    assert space_art["name"] == "tiny-run-space"
    assert Path(space_art["files"]["space.yaml"]).read_text() == SPACE_YAML
    assert Path(space_art["files"]["space.yaml"]).is_relative_to(run_dir / "wandb" / "data")
    assert "report.html" in summary["files"]
    assert (summary["dir"] / "files" / "report.html").read_text().endswith("nasl report</body></html>")
    assert s["report"]["_type"] == "html-file"
    assert "WANDB_DATA_DIR" not in os.environ  # set for the tracker's runs only, then restored
    assert os.environ["WANDB_CACHE_DIR"] == str(wandb_env / "cache")  # the user's value is kept


def test_disabled_writes_nothing(wandb_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run_dir = wandb_env / "run"
    run_dir.mkdir()
    tracker = make(run_dir)
    drive(tracker, run_dir)
    assert tracker.mode == "disabled" and tracker._thread is None
    assert sorted(p.name for p in run_dir.iterdir()) == ["report.html"]
    assert not (wandb_env / "wbdir").exists() and not (wandb_env / "data").exists()


def test_wandb_failure_warns_once_and_never_raises(wandb_env: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import wandb

    calls = []

    def broken_init(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        raise RuntimeError("no W&B today\nsecond line")

    monkeypatch.setattr(wandb, "init", broken_init)
    run_dir = wandb_env / "run"
    run_dir.mkdir()
    tracker = make(run_dir)
    with pytest.warns(RuntimeWarning) as caught:
        drive(tracker, run_dir)  # every event goes through; none raises
    messages = [str(w.message) for w in caught if "W&B" in str(w.message)]
    assert len(messages) == 1 and "no W&B today" in messages[0] and "\n" not in messages[0]
    assert len(calls) == 1 and not tracker.enabled
    TrialStarted(99, {}).deliver(tracker)  # switched off: ignored
    assert not list((run_dir / "wandb").glob("offline-run-*"))


def test_search_listener_wrapper_survives_a_broken_tracker(wandb_env: Path) -> None:
    """Even a tracker whose event handling itself blows up never raises into the caller."""
    tracker = make(wandb_env / "run")
    tracker._queue = None  # type: ignore[assignment]
    with pytest.warns(RuntimeWarning, match="switched off"):
        TrialStarted(0, {}).deliver(tracker)
    EpochEnded(0, 1, 0.5).deliver(tracker)
    tracker.close()


def test_mode_without_api_key_is_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert not has_api_key() and resolve_mode() == "offline"
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    assert has_api_key() and resolve_mode() == "online"
    assert resolve_mode("offline") == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode() == "disabled"
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("WANDB_MODE", "online")
    assert resolve_mode() == "offline"  # online without a key would prompt mid-search
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert resolve_mode() == "online"


def test_hypervolume_curve_is_monotone_and_normalised() -> None:
    rows = [_row(t) for t in TRIALS]
    curve = hypervolume_curve(rows, OBJECTIVES[:2], BUDGETS)
    assert [n for n, _ in curve] == [1, 2, 3, 4, 5, 6]
    # accuracy 0.6 at 30M of a 40M budget -> 0.6 * (1 - 0.75); then 0.7 at 38M adds 0.7 * 0.05 - overlap
    assert curve[0][1] == pytest.approx(0.6 * 0.25)
    assert curve[1][1] == pytest.approx(0.6 * 0.25 + (0.7 - 0.6) * (1 - 0.95))
    assert curve[-1][1] == curve[1][1]
    assert normalised_hypervolume([], ["maximize"], [0.0]) == 0.0


def test_for_run_takes_what_the_search_recorded(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run = results.RunDir(tmp_path / "r")
    run.root.mkdir()
    run.space_yaml.write_text(SPACE_YAML)
    run.env_json.write_text(json.dumps({"choice_names": CHOICES}))
    with pytest.warns(UserWarning, match="not known"):
        tracker = WandbTracker.for_run(run.root, tuple(OBJECTIVES), BUDGETS, project="p",
                                       entity="e", mode="offline", colour="blue",
                                       space_name="tiny")
    assert (tracker.run_dir, tracker.run_name, tracker.choice_names) == (run.root, "r", CHOICES)
    assert (tracker.project, tracker.entity, tracker.space_yaml) == ("p", "e", SPACE_YAML)
    assert tracker.objectives == OBJECTIVES and tracker.budgets == BUDGETS
    assert tracker.mode == "offline"  # the argument wins over WANDB_MODE


@pytest.mark.slow
def test_real_search_with_wandb_offline(wandb_env: Path, tiny_space: Path) -> None:
    """`nasl search … --wandb` end to end: one run per trial plus the summary run."""
    from nasl.cli import main

    runs = wandb_env / "runs"
    rc = main(["search", str(tiny_space), "--trials", "2", "--budget", "2.1M", "--runs-dir",
               str(runs), "--name", "w", "--quiet", "--wandb", "--wandb-project", "nasl-test",
               "--no-early-stop"])
    assert rc == 0
    import csv

    with open(runs / "w" / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    got = read_runs(runs / "w")
    summary = [r for r in got if r["job_type"] == "search"]
    trials = [r for r in got if r["job_type"] == "trial"]
    assert len(summary) == 1 and len(trials) == len(rows)
    assert all(r["group"] == "w" and r["project"] == "nasl-test" for r in got)
    table = media(summary[0], "trials_table")
    assert len(table["data"]) == len(rows) and "pareto" in table["columns"]
    trained = [r for r in trials if r["summary"].get("state") == "COMPLETE"]
    assert len(trained) == 2 and all(len(r["history"]) == 2 for r in trained)  # 2 epochs each
