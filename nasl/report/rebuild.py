"""A run's human outputs written from its rows, and rebuilt from its storage (``nasl report``).

In: a run folder (its env.json and Optuna storage) or rows already loaded. Out:
trials.csv, pareto.csv/json, report.html and pareto.png.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nasl import results


def write_report(run: results.RunDir, rows: list[dict[str, Any]],
                 objectives: Sequence[tuple[str, str]], budgets: Mapping[str, float]) -> None:
    """report.html and pareto.png of a run."""
    from nasl.report.figures import write_png
    from nasl.report.tables import write_html

    title = f"nasl run {run.name}"
    write_html(run / "report.html", rows, list(objectives), dict(budgets), title)
    write_png(run / "pareto.png", rows, list(objectives), dict(budgets), title)


def rebuild(path: Path | str) -> results.RunDir:
    """Rewrite trials.csv, pareto.csv/json, report.html and pareto.png from the storage."""
    run = results.RunDir(Path(path))
    rows, env = results.load_run(run)
    objectives = [(str(m), str(d)) for m, d in env["objectives"]]
    results.write_tables(run, rows, env.get("choice_names", []), objectives)
    write_report(run, rows, objectives, env.get("budgets", {}))
    return run
