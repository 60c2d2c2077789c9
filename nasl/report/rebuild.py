"""A run's human outputs written from its rows, and rebuilt from its storage (``nasl report``).

In: a run folder (its env.json and Optuna storage) or rows already loaded. Out:
trials.csv, pareto.csv/json, report.html and pareto.png.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nasl.run import results


def write_report(run: results.RunDir, rows: list[dict[str, Any]],
                 objectives: Sequence[tuple[str, str]], budgets: Mapping[str, float]) -> None:
    """report.html and pareto.png of a run."""
    from nasl.report.figures import write_png
    from nasl.report.tables import write_html

    title = f"nasl run {run.name}"
    write_html(run / "report.html", rows, list(objectives), dict(budgets), title,
               extra=run_sections(run))
    write_png(run / "pareto.png", rows, list(objectives), dict(budgets), title)


def run_sections(run: results.RunDir) -> list[str]:
    """HTML sections that come from the run folder besides the rows: the zero-cost pre-screen
    decision (env.json), when present."""
    import html
    import json

    out = []
    try:
        env = json.loads(run.env_json.read_text())
    except (OSError, ValueError):
        env = {}
    pre = env.get("prescreen") if isinstance(env, dict) else None
    if isinstance(pre, dict):
        rows = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{c.get('spearman')}</td>"
            f"<td>{c.get('kendall')}</td><td>{c.get('n')}</td></tr>"
            for k, c in (pre.get("correlations") or {}).items() if isinstance(c, dict))
        out.append(f"<h2>Zero-cost pre-screen</h2><p>{html.escape(str(pre.get('reason')))} "
                   f"({pre.get('picked', 0)} trials picked by the proxy from "
                   f"{pre.get('candidates')} candidates each)</p><table><thead><tr><th>metric"
                   "</th><th>Spearman</th><th>Kendall</th><th>n</th></tr></thead><tbody>"
                   f"{rows}</tbody></table>")
    with contextlib.suppress(OSError):  # written by `nasl fidelity` next to fidelity.json
        out.append((run.root / "fidelity.html").read_text(encoding="utf-8"))
    return out


def rebuild(path: Path | str) -> results.RunDir:
    """Rewrite trials.csv, pareto.csv/json, report.html and pareto.png from the storage."""
    run = results.RunDir(Path(path))
    rows, env = results.load_run(run)
    objectives = [(str(m), str(d)) for m, d in env["objectives"]]
    results.write_tables(run, rows, env.get("choice_names", []), objectives, env.get("answer"))
    write_report(run, rows, objectives, env.get("budgets", {}))
    return run
