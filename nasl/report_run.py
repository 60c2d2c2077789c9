"""A finished (or running) run folder → its rows, and its outputs rebuilt (``nasl report``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from nasl import results
from nasl.errors import NaslError


def open_run_study(run: results.RunDir) -> tuple[optuna.Study, dict[str, Any]]:
    """The run's Optuna study and env.json (``NaslError`` if either is missing)."""
    env = run.read_env()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=env["study"], storage=env["storage"])
    except KeyError:
        raise NaslError(f"{run.root}: study {env.get('study')!r} not found in "
                        f"{env.get('storage')}") from None
    return study, env


def load_run(run: results.RunDir | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows (with the front marked) and env.json of a run."""
    run = run if isinstance(run, results.RunDir) else results.RunDir(Path(run))
    study, env = open_run_study(run)
    rows = results.load_rows(study)
    results.mark_front(rows, [tuple(o) for o in env["objectives"]])
    return rows, env


def rebuild(path: Path) -> results.RunDir:
    """Rewrite trials.csv, pareto.csv/json, report.html and pareto.png from the storage."""
    from nasl.search.run import write_report

    run = results.RunDir(path)
    rows, env = load_run(run)
    objectives = [tuple(o) for o in env["objectives"]]
    results.write_tables(run, rows, env.get("choice_names", []), objectives)
    write_report(run, rows, objectives, env.get("budgets", {}))
    return run
