"""Trial rows of a run: loading trials.csv, formatting, the front and each trial's status."""

from __future__ import annotations

import csv
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasl.common import record
from nasl.common.errors import NaslError
from nasl.run import results
from nasl.stats import pareto

Row = dict[str, Any]
Objectives = Sequence[tuple[str, str]]
Budgets = Mapping[str, float] | None

INT_COLUMNS = record.INT_COLUMNS
FLOAT_COLUMNS = record.FLOAT_COLUMNS
BOOL_COLUMNS = record.BOOL_COLUMNS
TEXT_COLUMNS = record.TEXT_COLUMNS
#: Columns that are not design choices (extend when the search writes more bookkeeping).
META_COLUMNS = frozenset(
    (*INT_COLUMNS, *FLOAT_COLUMNS, *BOOL_COLUMNS, *TEXT_COLUMNS)
    + ("datetime_start", "datetime_complete")
)
#: Colour per status; "failed" trials show only in MACs-vs-latency, "running" nowhere.
COLORS = {
    "front": "#1f5fbf",
    "feasible": "#8fb8e8",
    "pruned": "#b0b0b0",
    "infeasible": "#e07b39",
    "failed": "#c03030",
}
LABELS = {"macs": "MACs", "latency_ms": "latency (ms)", "params": "params", "size_mb": "size (MB)"}
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}
SHOWN = ("pruned", "feasible", "infeasible", "front")  # drawing order in accuracy plots


# ----------------------------------------------------------------------------- loading
def _convert(column: str, text: str) -> Any:
    """One CSV cell -> None / int / float / bool / str; ValueError when a known column is bad."""
    text, low = text.strip(), text.strip().lower()
    if text == "" or (column in INT_COLUMNS + FLOAT_COLUMNS and low == "nan"):
        return None
    if column in INT_COLUMNS:
        return int(float(text))
    if column in FLOAT_COLUMNS:
        return float(text)
    if column in BOOL_COLUMNS:
        if low not in _TRUE | _FALSE:
            raise ValueError("expected true or false")
        return low in _TRUE
    if column in TEXT_COLUMNS:
        return text
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):  # design choices: numbers stay numbers, the rest text
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def load_trials_csv(path: str | Path) -> list[Row]:
    """Read ``trials.csv`` -> typed rows (ints, floats, bools; empty cells -> None)."""
    rows: list[Row] = []
    with open(path, newline="", encoding="utf-8") as fh:
        for line, raw in enumerate(csv.DictReader(fh), start=2):
            row: Row = {}
            for column, text in raw.items():
                try:
                    row[column] = _convert(column, text or "")
                except ValueError as exc:
                    raise NaslError(
                        f"{path}: line {line}, column {column!r}: bad value {text!r} ({exc})"
                    ) from None
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------- row helpers
def col(name: str) -> str:
    """Objective/budget name -> trials.csv column (``latency`` -> ``latency_ms``)."""
    return pareto.ALIASES.get(name, name)


def num(row: Row, key: str) -> float | None:
    """Finite numeric value of ``row[key]`` or None."""
    return pareto.finite(row.get(col(key)))


def row_state(row: Row) -> str:
    """Normalised state: COMPLETE, PRUNED, FAIL, RUNNING or WAITING."""
    return str(row.get("state") or "").rsplit(".", 1)[-1].upper()


def row_baseline(row: Row) -> str | None:
    return str(row["baseline"]) if row.get("baseline") not in (None, "") else None


def row_feasible(row: Row, budgets: Budgets = None) -> bool:
    """The row's ``feasible`` flag; when missing, whether its values are within ``budgets``."""
    if isinstance(row.get("feasible"), bool):
        return bool(row["feasible"])
    return all((num(row, k) or 0.0) <= limit for k, limit in (budgets or {}).items())


def design_columns(trials: Sequence[Row]) -> list[str]:
    """Design-choice columns in first-seen order (everything not in META_COLUMNS)."""
    return list(dict.fromkeys(k for row in trials for k in row if k not in META_COLUMNS))


def fmt_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def row_choices(row: Row, columns: Sequence[str], sep: str = ", ") -> str:
    return sep.join(f"{c}={fmt_value(row[c])}" for c in columns if row.get(c) is not None)


def format_count(n: float | None) -> str:
    """Count in human units, 3 significant digits: 1234567 -> "1.23M", 40e6 -> "40.0M"."""
    if n is None:
        return "–"
    sign, v = ("-" if n < 0 else ""), abs(float(n))
    for scale, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= scale * 0.9995:
            x = v / scale
            text = f"{x:.0f}" if x >= 99.95 else f"{x:.1f}" if x >= 9.995 else f"{x:.2f}"
            return f"{sign}{text}{unit}"
    return f"{sign}{int(v)}" if v == int(v) else f"{sign}{v:.3g}"


def fmt_budget(column: str, value: float) -> str:
    return f"{value:g} ms" if col(column) == "latency_ms" else format_count(value)


def fmt_latency(row: Row) -> str:
    """Median and spread, "3.21 [2.9–3.6]" (median [p10–p90]), or "–"."""
    med, lo, hi = (num(row, k) for k in ("latency_ms", "latency_p10_ms", "latency_p90_ms"))
    if med is None:
        return "–"
    return f"{med:.3g} [{lo:.3g}–{hi:.3g}]" if lo is not None and hi is not None else f"{med:.3g}"


def fmt_acc(row: Row) -> str:
    """Mean accuracy with the half-width of its 95 % interval: "71.0% ±1.2" (or "71.0%")."""
    acc = num(row, "accuracy")
    if acc is None:
        return "–"
    lo, hi = num(row, "accuracy_low"), num(row, "accuracy_high")
    return f"{100 * acc:.1f}% ±{50 * (hi - lo):.1f}" if lo is not None and hi is not None \
        else f"{100 * acc:.1f}%"


def fmt_expected(row: Row) -> str:
    """The selection-corrected accuracy (``accuracy_expected``, nasl.stats.shrink): "70.4%",
    or "–" when the run has no seed std to shrink with."""
    v = num(row, "accuracy_expected")
    return "–" if v is None else f"{100 * v:.1f}%"


def fmt_noise(row: Row) -> str:
    """Front member's confidence: "✓" (not tied with a cheaper member), "≈#k" (tied with the
    cheaper member k), "" when unknown."""
    if row.get("confident") is True:
        return "✓"
    if row.get("tied_with") not in (None, ""):
        return f"≈#{row['tied_with']}"
    return ""


def hover(row: Row, columns: Sequence[str]) -> str:
    """Hover text: trial, baseline, design choices, costs, accuracy, device, reason."""
    head = f"trial {row.get('number')} · {row_state(row).lower()}"
    head += f" · ★ {row_baseline(row)}" if row_baseline(row) else ""
    lines = [f"<b>{html.escape(head)}</b>", html.escape(row_choices(row, columns, "\n"))]
    lines.append(
        f"MACs {format_count(num(row, 'macs'))} · params {format_count(num(row, 'params'))}"
        f" · latency {fmt_latency(row)} ms · accuracy {fmt_acc(row)}"
    )
    lines += [f"{k}: {html.escape(str(row[k]))}" for k in ("device", "reason") if row.get(k)]
    return "<br>".join(line for line in lines if line).replace("\n", "<br>")


# ----------------------------------------------------------------------------- front, status
def front_indices(
    trials: Sequence[Row], objectives: Objectives, budgets: Budgets = None
) -> list[int]:
    """Indices into ``trials`` of the front (:func:`nasl.run.results.front`, the one definition)."""
    return results.front(trials, objectives, budgets)


def front_rows(trials: Sequence[Row], objectives: Objectives, budgets: Budgets = None) -> list[Row]:
    """Front rows sorted by accuracy (desc), then MACs (asc)."""
    rows = [trials[i] for i in front_indices(trials, objectives, budgets)]
    return sorted(rows, key=lambda r: (-(num(r, "accuracy") or 0.0), num(r, "macs") or 0.0))


def row_groups(
    trials: Sequence[Row], objectives: Objectives, budgets: Budgets
) -> dict[str, list[Row]]:
    """Rows by status: front, feasible, pruned, infeasible, failed, running."""
    front = set(front_indices(trials, objectives, budgets))
    groups: dict[str, list[Row]] = {k: [] for k in (*COLORS, "running")}
    for i, row in enumerate(trials):
        state = row_state(row)
        if state in ("RUNNING", "WAITING"):
            groups["running"].append(row)
        elif not row_feasible(row, budgets):
            groups["infeasible"].append(row)
        elif state == "COMPLETE":
            groups["front" if i in front else "feasible"].append(row)
        else:
            groups[{"PRUNED": "pruned", "FAIL": "failed"}.get(state, "running")].append(row)
    return groups


def device_warning(
    trials: Sequence[Row], objectives: Objectives, budgets: Budgets = None
) -> str | None:
    """ "front mixes devices: a, b" when front members were measured on different devices."""
    devices = {str(r["device"]) for r in front_rows(trials, objectives, budgets) if r.get("device")}
    return f"front mixes devices: {', '.join(sorted(devices))}" if len(devices) > 1 else None


def summary_line(
    trials: Sequence[Row], objectives: Objectives | None = None, budgets: Budgets = None
) -> str:
    """ "12 trained (3 pruned, 1 failed), 7 infeasible rejected, front 4".

    The front is recomputed when ``objectives`` are given, else the ``pareto`` flags count.
    """
    groups = row_groups(trials, objectives or [], budgets)
    done = [row_state(r) for k in ("front", "feasible", "pruned", "failed") for r in groups[k]]
    flags = sum(r.get("pareto") is True for r in trials)
    front = len(groups["front"]) if objectives else flags
    states = [row_state(r) for r in groups["running"]]
    running, queued = states.count("RUNNING"), states.count("WAITING")
    contended = sum(1 for r in trials if r.get("contended") is True)
    return (
        f"{len(done)} trained ({done.count('PRUNED')} pruned, {done.count('FAIL')} failed), "
        f"{len(groups['infeasible'])} infeasible rejected, front {front}"
    ) + (f", {running} running" if running else "") + (
        f", {queued} queued (not run; --resume runs them)" if queued else "") + (
        f"; {contended} trained on a contended CPU (timings inflated)" if contended else "")


@dataclass
class Panel:
    """What one accuracy-vs-x picture shows (shared by the plotly and matplotlib views)."""

    x: str
    placed: dict[str, list[Row]]  # status -> rows with x and accuracy
    rug: dict[str, list[Row]]  # status -> rows with x but never trained (no accuracy)
    step: list[tuple[float, float]]  # 2-D front of (x, accuracy), x ascending
    baselines: list[Row]
    budget: float | None
    log: bool


def panel(trials: Sequence[Row], objectives: Objectives, budgets: Budgets, x: str) -> Panel:
    """Sort the rows of an accuracy-vs-``x`` picture into its layers."""
    x = col(x)
    groups = row_groups(trials, objectives, budgets)
    has_x = {k: [r for r in groups[k] if num(r, x) is not None] for k in SHOWN}
    placed = {k: [r for r in v if num(r, "accuracy") is not None] for k, v in has_x.items()}
    rug = {k: [r for r in v if num(r, "accuracy") is None] for k, v in has_x.items()}
    ok = [
        (num(r, x) or 0.0, num(r, "accuracy") or 0.0)
        for r in placed["front"] + placed["feasible"]
    ]
    step = sorted(ok[i] for i in pareto.non_dominated(ok, ["minimize", "maximize"]))
    budget = next((v for k, v in (budgets or {}).items() if col(k) == x), None)
    values = [v for r in trials if (v := num(r, x)) is not None]
    log = bool(values) and min(values) > 0 and max(values) / min(values) > 30
    bases = [r for k in SHOWN for r in placed[k] if row_baseline(r)]
    return Panel(x, placed, rug, step, bases, budget, log)


