"""The trial record: one typed definition (nasl.common.record.TrialRecord) from which trials.csv,
pareto.* and the docs take their columns; no module builds a trial dict by hand."""

from __future__ import annotations

import ast
import csv
from dataclasses import fields
from pathlib import Path

import optuna
import pytest

from nasl.common import record
from nasl.common.record import NAMES, Outcome, TrialRecord
from nasl.run import results

REPO = Path(__file__).resolve().parents[1]
#: Names that also key dicts that are not trial records (cost tables, cards, configs).
SHARED = {"macs", "params", "size_mb", "size_int8_mb", "latency_ms", "accuracy", "epochs", "seconds",
          "arch_id", "batch_size", "precision", "device", "device_name", "choices", "seed",
          "cpu_ratio", "latency", "threads", "baseline", "feasible", "reason"}


def _trial_dicts(path: Path) -> list[tuple[int, list[str]]]:
    """Dict displays / dict(...) calls in ``path`` keyed by two or more record-only fields."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        keys: list[str] = []
        if isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
            keys = [k.arg for k in node.keywords if k.arg]
        own = sorted(set(keys) & set(NAMES) - SHARED)
        if len(own) >= 2:
            out.append((node.lineno, own))
    return out


def test_no_module_builds_a_trial_dict_by_hand() -> None:
    found = {str(p.relative_to(REPO)): hits for p in sorted((REPO / "nasl").rglob("*.py"))
             if p.name != "record.py" and (hits := _trial_dicts(p))}
    assert found == {}, f"build these through nasl.common.record.TrialRecord: {found}"


def test_the_grep_finds_a_hand_built_trial_dict(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('row = {"accuracy_seeds": [0.5], "best_accuracy": 0.6, "macs": 1}\n'
                   'ok = {"macs": 1, "params": 2, "size_mb": 0.1}\n')
    assert _trial_dicts(bad) == [(1, ["accuracy_seeds", "best_accuracy"])]


def _full_record() -> TrialRecord:
    """A record with every stored field set to a value of its kind."""
    values = {"int": 3, "float": 0.25, "bool": True, "text": "x", "choices": {"width": 0.5},
              "detail": {"threads": 1}}
    rec = TrialRecord()
    for f in fields(TrialRecord):
        if f.metadata["stored"]:
            v = values[f.metadata["kind"]]
            setattr(rec, f.name, [0.5, 0.75] if f.name in ("accuracy_seeds", "curve") else v)
    return rec.update(baseline="", feasible=True)


def test_every_stored_field_reaches_trials_csv(tmp_path: Path) -> None:
    """A real study trial carrying every stored field → trials.csv has each one (a column of its
    own with the value, or, where the field says so, the design columns)."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    rec = _full_record()
    for k, v in rec.to_attrs().items():
        trial.set_user_attr(k, v)
    study.tell(trial, [0.5, 3.0])
    run = results.RunDir(tmp_path)
    rows = results.load_rows(study)
    results.write_tables(run, rows, ["width"], [("accuracy", "maximize"), ("macs", "minimize")])
    with open(tmp_path / "trials.csv", newline="") as f:
        reader = csv.DictReader(f)
        header, row = list(reader.fieldnames or []), next(reader)
    assert header == [*record.BEFORE, "width", *record.AFTER]
    for f in fields(TrialRecord):
        if not f.metadata["stored"] or f.name == "baseline":
            continue
        if f.metadata["csv"] is None:
            assert row[f.name] not in ("", None), f.name
        else:  # the two that are not columns of their own say where they go
            assert f.name in ("choices", "latency")
    assert row["width"] == "0.5" and row["curve"] == "0.5,0.75"
    assert row["size_int8_mb"] == "0.25" and row["images_per_second"] == "0.25"


def test_update_refuses_a_name_that_is_not_a_field() -> None:
    rec = TrialRecord(macs=1)
    with pytest.raises(TypeError, match="accuracy_seed"):
        rec.update(accuracy_seed=[0.5])
    with pytest.raises(TypeError):
        TrialRecord.columns(n_seed=2)
    assert rec.merged(params=4).params == 4 and rec.params is None


def test_attrs_round_trip_and_derived_fields_are_not_stored() -> None:
    rec = _full_record().update(accuracy_low=0.1, pareto=True)
    attrs = rec.to_attrs()
    assert "accuracy_low" not in attrs and "pareto" not in attrs
    back = TrialRecord.from_attrs({**attrs, "owner": "pid", "heartbeat": 1.0})
    assert back.to_attrs() == attrs


class _Result:
    final_accuracy, best_accuracy, epochs = 0.5, 0.6, 2
    images_per_second, threads, device = 900.0, 2, "cpu"


def test_outcome_of_a_training_result() -> None:
    out = Outcome.of(_Result(), [0.5, 0.7], 1.23456)
    assert out.accuracy == pytest.approx(0.6) and out.accuracy_seeds == [0.5, 0.7]
    assert out.seconds == 1.235 and out.train_device == "cpu" and out.threads == 2
    assert Outcome.from_attrs({**out.to_attrs(), "nasl_state": "COMPLETE"}) == out
    assert set(out.to_attrs()) <= set(NAMES)  # every outcome field is a record field


def test_one_front_for_tables_report_and_confirmation() -> None:
    """results.front is the front of trials.csv (mark_front), of the report (front_indices, rows
    read back from a CSV: state text, no feasible flag → judged against the budgets)."""
    from nasl.report.rows import front_indices

    objectives = [("accuracy", "maximize"), ("macs", "minimize")]
    rows = [{"state": "COMPLETE", "feasible": True, "accuracy": 0.8, "macs": 10},
            {"state": "COMPLETE", "feasible": True, "accuracy": 0.7, "macs": 5},
            {"state": "COMPLETE", "feasible": True, "accuracy": 0.6, "macs": 8},  # dominated
            {"state": "PRUNED", "feasible": True, "accuracy": 0.9, "macs": 1},
            {"state": "TrialState.COMPLETE", "accuracy": 0.95, "macs": 50}]  # no flag: over budget
    assert results.front(rows, objectives, {"macs": 40}) == [0, 1]
    assert front_indices(rows, objectives, {"macs": 40}) == [0, 1]
    assert results.front(rows, objectives) == [0, 1, 4]
    marked = [dict(r) for r in rows[:4]]
    assert results.mark_front(marked, objectives) == [0, 1]
    assert [r.get("pareto", False) for r in marked] == [True, True, False, False]
