"""Human outputs of a run (report.html, pareto.png, terminal tables) from its trial rows.

A trial row is a dict as in ``trials.csv`` (see DESIGN.md): ``number, state, baseline,
<design choices...>, macs, params, size_mb, latency_ms, latency_p10_ms, latency_p90_ms,
accuracy, epochs, seconds, feasible, pareto, reason, device`` (read the file with
:func:`load_trials_csv`). Every column not in :data:`META_COLUMNS` is a design choice.
``objectives`` is a list of ``(column, "maximize" | "minimize")``; ``budgets`` maps columns
to limits, e.g. ``{"macs": 40e6, "latency_ms": 5.0}``.

The front is recomputed here with :func:`nasl.stats.pareto.non_dominated` over the feasible
COMPLETE trials that have every objective value (what ``pareto.csv`` holds), so the report
of a run still in progress is right too. Figures are built by small functions returning
plotly Figures; :func:`write_html` only assembles them. No torch import.
"""

from nasl.report.figures import (
    accuracy_figure,
    history_figure,
    macs_latency_figure,
    write_png,
)
from nasl.report.rebuild import rebuild, write_report
from nasl.report.rows import (
    BOOL_COLUMNS,
    COLORS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    LABELS,
    META_COLUMNS,
    TEXT_COLUMNS,
    Budgets,
    Objectives,
    Row,
    design_columns,
    device_warning,
    format_count,
    front_indices,
    front_rows,
    load_trials_csv,
    summary_line,
)
from nasl.report.tables import (
    HEADERS,
    front_html_table,
    front_table,
    write_html,
)

__all__ = [
    "BOOL_COLUMNS",
    "Budgets",
    "COLORS",
    "FLOAT_COLUMNS",
    "HEADERS",
    "INT_COLUMNS",
    "LABELS",
    "META_COLUMNS",
    "Objectives",
    "Row",
    "TEXT_COLUMNS",
    "accuracy_figure",
    "design_columns",
    "device_warning",
    "format_count",
    "front_html_table",
    "front_indices",
    "front_rows",
    "front_table",
    "history_figure",
    "load_trials_csv",
    "macs_latency_figure",
    "summary_line",
    "write_html",
    "write_png",
    "write_report",
    "rebuild",
]
